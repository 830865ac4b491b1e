// Benchmark sections "cpu" and "idle" (issue 16): what a lab costs the host in CPU-seconds, split by who spent
// them, measured on the real CLI (this checkout's, and with --before an earlier one's, alternating).
//
//   cpu:  one lab run (`lab grade 2`, `lab grade 2 --submission right.yaml`): host-wide from /proc/stat, minus
//         the rate the host had in an idle window just before, and its split: inside the run's containers
//         (their cgroups, sampled while they exist), tcplab's own process and children (rusage), dockerd and
//         containerd (their /proc/PID/stat, minus their idle rate), the containers' shims, and the rest (the
//         kernel's work outside the containers: namespaces, veths, netfilter; and other users' noise).
//   idle: a kept lab (`lab start 2 --keep --yes`) where nothing changes, first with nobody looking, then with
//         `lab ui` serving a page that is open: the difference, per machine, in % of a core.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { LABEL } from '../plan/plan.js';
import type { Runtime } from '../runtime/runtime.js';
import { removeInstance } from '../engine/teardown.js';
import { newInstanceId } from '../engine/provision.js';
import { ContainerMeter, daemons, hostBusy, ownSeconds, procSeconds, runMeasured } from './cpu.js';
import { run } from './shell.js';

export interface Version {
  /** "now" (this checkout) or "before" (--before DIR). */
  label: string;
  /** Its bin/lab.js. */
  bin: string;
}

/** CPU-seconds of one lab run and where they went. */
export interface RunCpu {
  version: string;
  case: string;
  exitCode: number;
  wallS: number;
  /** The host's busy time during the run, minus the benchmark's own and the idle rate measured just before. */
  host: number;
  containers: number;
  tcplab: number;
  daemons: number;
  shims: number;
  /** host minus every part above: the kernel outside the containers, and whatever else ran meanwhile. */
  rest: number;
  /** The idle host's rate in the window before, in cores (what was subtracted, per second). */
  idleCores: number;
  containerCount: number;
  load: string;
}

function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return '?';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Point {
  host: number;
  daemons: number;
  own: number;
  t: number;
}

function point(d: ReturnType<typeof daemons>): Point {
  return { host: hostBusy(), daemons: d.seconds(), own: ownSeconds(), t: performance.now() };
}

/** The host's and the daemons' busy rates (cores) over a quiet window, the benchmark's own time left out. */
async function idleRates(d: ReturnType<typeof daemons>, ms: number): Promise<{ host: number; daemons: number }> {
  const a = point(d);
  await sleep(ms);
  const b = point(d);
  const s = (b.t - a.t) / 1000;
  return { host: (b.host - a.host - (b.own - a.own)) / s, daemons: (b.daemons - a.daemons) / s };
}

/** Remove whatever containers an owner still has (a run that failed halfway). */
async function removeOwned(runtime: Runtime, owner: string): Promise<void> {
  const left = await runtime.listContainers({ [LABEL.managed]: 'true', [LABEL.owner]: owner });
  for (const id of new Set(left.map((c) => c.labels[LABEL.instance]).filter((x): x is string => !!x))) await removeInstance(runtime, id);
}

/** A right answer to Lab 2's task, as `lab submit` writes it, in a new folder. */
export function rightAnswer(): { file: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tcplab-bench-cpu-'));
  const file = join(dir, 'right.yaml');
  writeFileSync(
    file,
    'student: s001\nlab: 2\nanswers:\n  drop-syn:\n    client: |\n      iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP\n',
  );
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** One measured run of `lab ARGS...`, preceded by an idle window of idleMs. */
export async function measureRun(runtime: Runtime, v: Version, name: string, args: string[], idleMs: number): Promise<RunCpu> {
  const d = daemons();
  const idle = await idleRates(d, idleMs);
  const owner = `bench-cpu-${newInstanceId()}`;
  const stateDir = mkdtempSync(join(tmpdir(), 'tcplab-bench-state-'));
  const meter = new ContainerMeter(owner);
  const load = loadavg();
  try {
    meter.start(100);
    const a = point(d);
    const res = await runMeasured([process.execPath, v.bin, ...args, '--no-color'], {
      env: { ...process.env, TCPLAB_USER: owner, TCPLAB_STATE_DIR: stateDir },
    });
    const b = point(d);
    const m = meter.stop();
    const wallS = (b.t - a.t) / 1000;
    const host = b.host - a.host - (b.own - a.own) - idle.host * wallS;
    const dd = b.daemons - a.daemons - idle.daemons * wallS;
    return {
      version: v.label,
      case: name,
      exitCode: res.code,
      wallS,
      host,
      containers: m.containers,
      tcplab: res.cpu,
      daemons: dd,
      shims: m.shims,
      rest: host - m.containers - res.cpu - dd - m.shims,
      idleCores: idle.host,
      containerCount: m.containerCount,
      load,
    };
  } finally {
    await removeOwned(runtime, owner).catch(() => {});
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** CPU-seconds over one window of a kept lab: its containers, their shims, the daemons, the host. */
interface Window {
  seconds: number;
  host: number;
  containers: number;
  shims: number;
  daemons: number;
  /** The `lab ui` process (0 when none runs). */
  ui: number;
}

async function window(owner: string, ms: number, uiPid?: number): Promise<Window> {
  const d = daemons();
  const meter = new ContainerMeter(owner);
  meter.start(1000);
  const u0 = uiPid ? (procSeconds(uiPid) ?? 0) : 0;
  const a = point(d);
  await sleep(ms);
  const b = point(d);
  const u1 = uiPid ? (procSeconds(uiPid) ?? u0) : 0;
  const m = meter.stop();
  return {
    seconds: (b.t - a.t) / 1000,
    host: b.host - a.host - (b.own - a.own),
    containers: m.containers,
    shims: m.shims,
    daemons: b.daemons - a.daemons,
    ui: u1 - u0,
  };
}

/** A kept lab with nothing changing: nobody looking, then `lab ui` with a page open. */
export interface IdleRound {
  version: string;
  nodes: number;
  nobody: Window;
  page: Window;
  /** Bytes the open page received during its window (what the page was sent while nothing changed). */
  pageBytes: number;
  load: string;
}

function waitForLine(child: ChildProcessByStdio<null, Readable, Readable>, re: RegExp, ms: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`lab ui printed no address within ${ms / 1000} s: ${text}`)), ms);
    const on = (b: Buffer) => {
      text += b.toString('utf8');
      const m = re.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`lab ui exited (${code}): ${text}`));
    });
  });
}

export async function idleRound(runtime: Runtime, v: Version, ms: number): Promise<IdleRound> {
  const owner = `bench-idle-${newInstanceId()}`;
  const stateDir = mkdtempSync(join(tmpdir(), 'tcplab-bench-state-'));
  const env = { ...process.env, TCPLAB_USER: owner, TCPLAB_STATE_DIR: stateDir };
  let instance: string | undefined;
  let ui: ChildProcessByStdio<null, Readable, Readable> | undefined;
  let page: ClientRequest | undefined;
  try {
    const started = await run([process.execPath, v.bin, 'start', '2', '--keep', '--yes', '--no-color'], { env, timeoutMs: 300_000 });
    const containers = await runtime.listContainers({ [LABEL.managed]: 'true', [LABEL.owner]: owner });
    instance = containers[0]?.labels[LABEL.instance];
    if (started.code !== 0 || !instance)
      throw new Error(`lab start 2 --keep failed (exit ${started.code}): ${started.stderr.slice(-2000)}`);
    await sleep(3000);
    const load = loadavg();
    const nobody = await window(owner, ms);
    ui = spawn(process.execPath, [v.bin, 'ui', instance, '--no-open', '--no-color'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const url = (await waitForLine(ui, /(http:\/\/[^\s]+?)\/?(\s|$)/, 60_000))[1]!;
    let pageBytes = 0;
    let counting = false;
    page = get(`${url}/events`, (res) => res.on('data', (b: Buffer) => counting && (pageBytes += b.length)));
    page.on('error', () => {});
    // The page's first views, then its session goes idle (5 s without a change).
    await sleep(8000);
    counting = true;
    const open = await window(owner, ms, ui.pid);
    counting = false;
    return { version: v.label, nodes: containers.length, nobody, page: open, pageBytes, load };
  } finally {
    page?.destroy();
    if (ui && ui.exitCode === null) {
      const exited = new Promise((r) => ui!.once('exit', r));
      ui.kill('SIGINT');
      await Promise.race([exited, sleep(5000)]);
      if (ui.exitCode === null) ui.kill('SIGKILL');
    }
    if (instance) await run([process.execPath, v.bin, 'stop', instance, '--no-color'], { env, timeoutMs: 120_000 });
    await removeOwned(runtime, owner).catch(() => {});
    rmSync(stateDir, { recursive: true, force: true });
  }
}
