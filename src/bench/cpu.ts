// CPU accounting for the benchmark, Linux only: the host's busy time (/proc/stat), a process's (/proc/PID/stat),
// a container's (its cgroup: v1 cpuacct, or v2 cpu.stat), and a meter that follows the containers of one owner
// (the io.tcplab.owner label, set through TCPLAB_USER) and their containerd shims while a run creates and
// removes them. Everything is in CPU-seconds. Docker's own daemons are shared with other users of the engine:
// their figure is a delta minus the rate they had just before, like the host's.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { LABEL } from '../plan/plan.js';

/** USER_HZ: the unit of /proc/stat and /proc/PID/stat (100 on every Linux build that matters here). */
const HZ = 100;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** CPU-seconds the whole host has spent busy since boot, every core: user, nice, system, irq and softirq
 *  (not idle, not iowait, not steal: steal is the hypervisor's, not ours; guest time is inside user). */
export function hostBusy(): number {
  const f = (read('/proc/stat') ?? '').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = f;
  return (user + nice + system + irq + softirq) / HZ;
}

/** CPU-seconds of one process: its own (user + system), plus (children) that of the children it has waited for. */
export function procSeconds(pid: number, children = true): number | undefined {
  const text = read(`/proc/${pid}/stat`);
  if (!text) return undefined;
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
  return (Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0)) / HZ;
}

/** This process (the benchmark's own sampling), in CPU-seconds. */
export function ownSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function pidsByName(name: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) if (/^\d+$/.test(p) && read(`/proc/${p}/comm`)?.trim() === name) out.push(Number(p));
  return out;
}

/** dockerd and containerd: their CPU-seconds so far (0 when neither is visible, as on Docker Desktop). */
export function daemons(): { pids: number[]; seconds: () => number } {
  const pids = [...pidsByName('dockerd'), ...pidsByName('containerd')];
  return { pids, seconds: () => pids.reduce((a, p) => a + (procSeconds(p) ?? 0), 0) };
}

function containerSeconds(id: string): number | undefined {
  const v1 = read(`/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`);
  if (v1 !== undefined) return Number(v1) / 1e9;
  for (const dir of [`/sys/fs/cgroup/system.slice/docker-${id}.scope`, `/sys/fs/cgroup/docker/${id}`]) {
    const m = /^usage_usec (\d+)$/m.exec(read(`${dir}/cpu.stat`) ?? '');
    if (m) return Number(m[1]) / 1e6;
  }
  return undefined;
}

function containerIds(): string[] {
  for (const dir of ['/sys/fs/cgroup/cpuacct/docker', '/sys/fs/cgroup/docker']) {
    try {
      return readdirSync(dir).filter((x) => /^[0-9a-f]{64}$/.test(x));
    } catch {
      /* the next layout */
    }
  }
  try {
    return readdirSync('/sys/fs/cgroup/system.slice').flatMap((x) => /^docker-([0-9a-f]{64})\.scope$/.exec(x)?.[1] ?? []);
  } catch {
    return [];
  }
}

/** Is this cgroup layout readable here at all (cgroup v1 cpuacct or v2, and the engine's files)? */
export function canMeter(dockerRoot = '/var/lib/docker'): boolean {
  try {
    readdirSync(`${dockerRoot}/containers`);
  } catch {
    return false;
  }
  return (
    read('/proc/stat') !== undefined && (read('/sys/fs/cgroup/cpuacct/docker/cpuacct.usage') !== undefined || containerIds().length > 0)
  );
}

interface Metered {
  /** CPU-seconds inside the owner's containers (every process in them: agents, relays, lab commands). */
  containers: number;
  /** CPU-seconds of their containerd shims, their own only: a shim reaps its container's main process and
   *  every `docker exec`'s process (runc's too), so its children's time is mostly the containers' again. */
  shims: number;
  /** How many of the owner's containers and shims were seen. */
  containerCount: number;
  shimCount: number;
}

/**
 * Follows the containers whose owner label is `owner`, sampling their cgroups and their shims every periodMs,
 * so that containers removed before stop() still count (up to their last sample). Containers and shims that
 * exist when the meter starts count from then on; those that appear later, from zero.
 */
export class ContainerMeter {
  private readonly ours = new Map<string, boolean>();
  private readonly first = new Map<string, number>();
  private readonly last = new Map<string, number>();
  private readonly shimOf = new Map<number, string>();
  private readonly notShim = new Set<number>();
  private readonly shimFirst = new Map<number, number>();
  private readonly shimLast = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private starting = true;

  constructor(
    private readonly owner: string,
    private readonly dockerRoot = '/var/lib/docker',
  ) {}

  start(periodMs = 100): void {
    this.sample();
    this.starting = false;
    this.timer = setInterval(() => this.sample(), periodMs);
  }

  stop(): Metered {
    clearInterval(this.timer);
    this.sample();
    let containers = 0;
    let containerCount = 0;
    for (const [id, v] of this.last) {
      if (!this.ours.get(id)) continue;
      containers += v - (this.first.get(id) ?? 0);
      containerCount++;
    }
    let shims = 0;
    let shimCount = 0;
    for (const [pid, v] of this.shimLast) {
      if (!this.ours.get(this.shimOf.get(pid)!)) continue;
      shims += v - (this.shimFirst.get(pid) ?? 0);
      shimCount++;
    }
    return { containers, shims, containerCount, shimCount };
  }

  private isOurs(id: string): boolean {
    let v = this.ours.get(id);
    if (v === undefined) {
      const config = read(`${this.dockerRoot}/containers/${id}/config.v2.json`);
      if (config === undefined) return false; // not written yet: asked again at the next sample
      try {
        const labels = (JSON.parse(config) as { Config?: { Labels?: Record<string, string> } }).Config?.Labels ?? {};
        v = labels[LABEL.owner] === this.owner;
      } catch {
        return false;
      }
      this.ours.set(id, v);
    }
    return v;
  }

  private sample(): void {
    for (const id of containerIds()) {
      if (!this.isOurs(id)) continue;
      const s = containerSeconds(id);
      if (s === undefined) continue;
      if (!this.last.has(id)) this.first.set(id, this.starting ? s : 0);
      this.last.set(id, s);
    }
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      if (this.notShim.has(pid)) continue;
      let id = this.shimOf.get(pid);
      if (id === undefined) {
        if (!read(`/proc/${pid}/comm`)?.startsWith('containerd-shim')) {
          this.notShim.add(pid);
          continue;
        }
        const argv = (read(`/proc/${pid}/cmdline`) ?? '').split('\0');
        const i = argv.indexOf('-id');
        // `containerd-shim-runc-v2 ... start` forks the shim and exits: containerd's own time, counted there.
        if (i < 0 || argv.includes('start')) {
          this.notShim.add(pid);
          continue;
        }
        id = argv[i + 1]!;
        this.shimOf.set(pid, id);
      }
      if (!this.isOurs(id)) continue;
      const s = procSeconds(pid, false);
      if (s === undefined) continue;
      if (!this.shimLast.has(pid)) this.shimFirst.set(pid, this.starting ? s : 0);
      this.shimLast.set(pid, s);
    }
  }
}

interface Measured {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  /** CPU-seconds of the program and every child it waited for (its rusage, through bash's `times`). */
  cpu: number;
}

/** Run a program and take its CPU time with its children's: `bash -c 'prog...; times >&3'`. */
export function runMeasured(argv: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Measured> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', '"$@"; rc=$?; times >&3; exit $rc', 'bash', ...argv], {
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const times: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (b: Buffer) => times.push(b));
    const timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs ?? 600_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      // Two lines: the shell's own user and system time, then its children's ("0m1.234s 0m0.456s").
      const line = Buffer.concat(times).toString('utf8').trim().split('\n')[1] ?? '';
      const cpu = [...line.matchAll(/(\d+)m([\d.]+)s/g)].reduce((a, m) => a + Number(m[1]) * 60 + Number(m[2]), 0);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: performance.now() - t0,
        cpu,
      });
    });
  });
}
