// `npm run bench -- --only classroom`: a class of simulated students against a real `lab serve` (the built CLI,
// as an instructor runs it). Per class size N: all N join and press Start at once (time until every lab is
// ready); each opens their page (its event stream and live view) and a terminal, and types keys with a
// student's pauses (echo latency through the server, the engine and the shell); then everybody sits idle with
// the page open (CPU of the server, of the engine's processes and inside the labs); the server's memory; and
// every student's task graded right (one in five writes a wrong rule, which must fail).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassClient } from './class-client.js';
import { LABEL } from '../plan/plan.js';
import type { Runtime } from '../runtime/runtime.js';
import { removeInstance } from '../engine/teardown.js';

const TICKS = 100;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** CPU seconds a process has used (user + system). */
function cpuOf(pid: number): number {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return 0;
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS;
}

function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(read(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) * 1024 : NaN;
}

/** dockerd, containerd and every containerd shim: the engine's share of the work. */
function enginePids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = read(`/proc/${name}/cmdline`)?.split('\0')[0] ?? '';
    if (/(^|\/)(dockerd|containerd|containerd-shim[\w-]*)$/.test(cmd)) out.push(Number(name));
  }
  return out;
}

/** CPU seconds used inside a container (cgroup v1 cpuacct, else v2). */
function containerCpu(id: string): number {
  for (const p of [`/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`, `/sys/fs/cgroup/cpu,cpuacct/docker/${id}/cpuacct.usage`]) {
    const v = read(p);
    if (v) return Number(v) / 1e9;
  }
  for (const p of [`/sys/fs/cgroup/system.slice/docker-${id}.scope/cpu.stat`, `/sys/fs/cgroup/docker/${id}/cpu.stat`]) {
    const m = /^usage_usec (\d+)$/m.exec(read(p) ?? '');
    if (m) return Number(m[1]) / 1e6;
  }
  return 0;
}

function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  return s[lo]! + (s[Math.ceil(pos)]! - s[lo]!) * (pos - lo);
}

export interface ClassRound {
  n: number;
  /** From the moment all pressed Start to the moment the last lab was ready (ms), and each one's. */
  allReadyMs: number;
  readyMs: number[];
  echo: { p50: number; p95: number; max: number; samples: number };
  /** The server's resident memory with N students connected, and before any student (bytes). */
  rss: number;
  rssBefore: number;
  /** Cores used while every student sat idle with their page open: the server, the engine, inside the labs. */
  idleCores: { server: number; engine: number; labs: number; seconds: number };
  graded: { right: number; total: number; wrong: string[] };
  /** The round could not finish (a student's lab never became ready, a check never came back): why. */
  error?: string;
}

interface Options {
  bin: string;
  runtime: Runtime;
  counts: number[];
  keys: number;
  idleSeconds: number;
  log: (s: string) => void;
  /** Each round as soon as it is done (a later round that fails does not lose the earlier ones). */
  onRound: (r: ClassRound) => void;
}

/** One `lab serve`, one round per class size; everything it made is removed at the end. */
export async function classroomBench(o: Options): Promise<ClassRound[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tcplab-bench-class-'));
  const max = Math.max(...o.counts);
  writeFileSync(
    join(dir, 'class.yaml'),
    `title: bench\nlabs: [2]\njoin: { code: true }\nlimits: { runningLabs: ${max + 5} }\nstate: ./state\n`,
  );
  const child = spawn(process.execPath, [o.bin, 'serve', '--class', join(dir, 'class.yaml'), '--port', '0'], {
    env: { ...process.env, NO_COLOR: '1', TCPLAB_STATE_DIR: join(dir, 'cli') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const rounds: ClassRound[] = [];
  let classId = '';
  try {
    const deadline = Date.now() + 300_000;
    while (!/Ctrl-C stops the server/.test(out)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`lab serve did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const base = /on (http:\/\/\S+\/)/.exec(out)![1]!;
    const code = /type the code ([A-Z2-9]+)/.exec(out)![1]!;
    const teacher = /Instructor \(keep it secret\): (\S+)/.exec(out)![1]!;
    classId = (JSON.parse(readFileSync(join(dir, 'state', 'class.json'), 'utf8')) as { id: string }).id;
    await new Promise((r) => setTimeout(r, 2000));
    const rssBefore = rssOf(child.pid!);
    for (const n of o.counts) {
      const r = await round(o, child, base, code, teacher, n, rssBefore).catch((e: unknown): ClassRound => ({
        n,
        allReadyMs: NaN,
        readyMs: [],
        echo: { p50: NaN, p95: NaN, max: NaN, samples: 0 },
        rss: rssOf(child.pid!),
        rssBefore,
        idleCores: { server: NaN, engine: NaN, labs: NaN, seconds: 0 },
        graded: { right: 0, total: n, wrong: [] },
        error: (e as Error).message.slice(0, 400),
      }));
      rounds.push(r);
      o.onRound(r);
    }
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('close', r)));
    // The class's labs outlive the server on purpose: the benchmark removes whatever is left of its own.
    const cs = await o.runtime.listContainers({ [LABEL.managed]: 'true' }).catch(() => []);
    const ids = new Set(
      cs.filter((c) => classId && c.labels[LABEL.owner]?.startsWith(`tcplab-serve/${classId}/`)).map((c) => c.labels[LABEL.instance]!),
    );
    for (const id of ids) await removeInstance(o.runtime, id).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  return rounds;
}

async function round(
  o: Options,
  child: ChildProcess,
  base: string,
  code: string,
  teacherLink: string,
  n: number,
  rssBefore: number,
): Promise<ClassRound> {
  o.log(`  ${n} student${n === 1 ? '' : 's'}: joining, pressing Start together`);
  const students = Array.from({ length: n }, () => new ClassClient(base));
  const terms: Awaited<ReturnType<ClassClient['terminal']>>[] = [];
  try {
    await Promise.all(students.map((s, i) => s.join(code, `bench ${n}-${i + 1}`)));
    for (const s of students) s.follow();
    const t0 = performance.now();
    await Promise.all(students.map((s) => s.must('/api/me/start', { slug: 'incomplete-handshake' })));
    const readyMs = await Promise.all(
      students.map(async (s) => {
        await s.until('a ready lab', (x) => x.current?.status === 'running' && x.current.walk?.phase === 'task', 600_000);
        return performance.now() - t0;
      }),
    );
    const allReadyMs = Math.max(...readyMs);
    // Each page as a browser has it: the event stream (followed above, with the live view on it), a terminal.
    for (const s of students) terms.push(await s.terminal('client'));
    await Promise.all(terms.map((t) => t.until(/# $/, 60_000)));
    // Keys typed with a student's pauses (100-300 ms), everyone at once.
    const echo: number[] = [];
    await Promise.all(
      terms.map(async (t) => {
        for (let k = 0; k < o.keys; k++) {
          await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
          echo.push(await t.echo(String.fromCharCode(97 + (k % 26))));
        }
        t.type('\x15');
      }),
    );
    // Idle, pages open.
    await new Promise((r) => setTimeout(r, 3000));
    const ids = (await o.runtime.listContainers({ [LABEL.managed]: 'true' }))
      .filter((c) => c.labels[LABEL.owner]?.includes('/bench-'))
      .map((c) => c.id);
    const engine = enginePids();
    const before = {
      server: cpuOf(child.pid!),
      engine: engine.reduce((x, p) => x + cpuOf(p), 0),
      labs: ids.reduce((x, id) => x + containerCpu(id), 0),
    };
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, o.idleSeconds * 1000));
    const secs = (performance.now() - w0) / 1000;
    const idleCores = {
      server: (cpuOf(child.pid!) - before.server) / secs,
      engine: (engine.reduce((x, p) => x + cpuOf(p), 0) - before.engine) / secs,
      labs: (ids.reduce((x, id) => x + containerCpu(id), 0) - before.labs) / secs,
      seconds: secs,
    };
    const rss = rssOf(child.pid!);
    // Every student's task graded: four in five write the right rule, one a REJECT (which must not pass). They
    // press Check within the same 10 s, as a class does when told "now check"; a check that never comes back
    // counts as graded wrong, with why.
    const wrong: string[] = [];
    let right = 0;
    await Promise.all(
      students.map(async (s, i) => {
        const t = terms[i]!;
        const bad = i % 5 === 4;
        try {
          t.type(`iptables -I OUTPUT -p tcp --dport 5555 --syn -j ${bad ? 'REJECT' : 'DROP'}; echo rule-set-$?\r`);
          await t.until(/rule-set-0/, 60_000);
          await new Promise((r) => setTimeout(r, Math.random() * 10_000));
          await s.must('/api/me/walk', { type: 'check' });
          const st = await s.until(
            'the check',
            (x) => (x.current?.walk?.step?.task?.attempts ?? 0) >= 1 && x.current?.walk?.phase !== 'busy',
            300_000,
          );
          const passed = st.current?.walk?.step?.task?.lastCheck?.passed === true;
          if (passed === !bad) right++;
          else wrong.push(`${s.state?.student.id}: ${bad ? 'a wrong rule passed' : 'a right rule failed'}`);
        } catch (e) {
          wrong.push(`${s.state?.student.id}: ${(e as Error).message.slice(0, 120)}`);
        }
      }),
    );
    return {
      n,
      allReadyMs,
      readyMs,
      echo: { p50: quantile(echo, 0.5), p95: quantile(echo, 0.95), max: Math.max(...echo), samples: echo.length },
      rss,
      rssBefore,
      idleCores,
      graded: { right, total: n, wrong },
    };
  } finally {
    for (const t of terms) t.close();
    // Every lab of the round stopped from the dashboard, as an instructor would.
    const teacher = new ClassClient(base);
    const r = await fetch(teacherLink, { redirect: 'manual' });
    teacher.cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
    const cls = (await (await fetch(new URL('/api/class', base), { headers: { Cookie: teacher.cookie } })).json()) as { csrf: string };
    teacher.csrf = cls.csrf;
    await teacher.must('/api/class/stop-all');
    for (const s of students) s.close();
  }
}
