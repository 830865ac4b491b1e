// Spawning the real built CLI (node bin/lab.js) and finding what one run of it left on the engine, by the
// owner label io.tcplab.pid = "host:pid" that every container and network of its instances carries.
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerRuntime } from '../../src/runtime/docker.js';
import { LABEL } from '../../src/plan/plan.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'lab.js');

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export class LabRun {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  private readonly started = performance.now();
  private waiters: (() => void)[] = [];

  constructor(args: string[], opts: { env?: Record<string, string | undefined>; stdio?: 'pipe' } = {}) {
    const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', ...opts.env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
      this.poke();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      this.poke();
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.poke();
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr, ms: performance.now() - this.started });
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The owner label value of this run's instances. */
  get owner(): string {
    return `${hostname()}:${this.pid}`;
  }

  private poke() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Wait until the output (stdout + stderr) matches, or fail after timeoutMs with what was seen. */
  async waitForOutput(re: RegExp, timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    while (!re.test(this.stdout + this.stderr)) {
      if (exited) throw new Error(`the process exited before ${re} appeared:\n${tail(this.stdout)}\n--- stderr\n${tail(this.stderr)}`);
      const left = deadline - performance.now();
      if (left <= 0)
        throw new Error(`${re} did not appear within ${timeoutMs} ms:\n${tail(this.stdout)}\n--- stderr\n${tail(this.stderr)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  kill(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }
}

function tail(s: string): string {
  return s.split('\n').slice(-25).join('\n');
}

export const docker = new DockerRuntime();

/** Containers and networks whose owner label names this run. */
export async function leftoversOf(owner: string): Promise<string[]> {
  const labels = { [LABEL.managed]: 'true', [LABEL.pid]: owner };
  const [cs, ns] = await Promise.all([docker.listContainers(labels), docker.listNetworks(labels)]);
  return [...cs.map((c) => `container ${c.name}`), ...ns.map((n) => `network ${n.name}`)];
}

/** Instance ids of this run's instances that still exist. */
export async function instancesOf(owner: string): Promise<string[]> {
  const labels = { [LABEL.managed]: 'true', [LABEL.pid]: owner };
  const [cs, ns] = await Promise.all([docker.listContainers(labels), docker.listNetworks(labels)]);
  return [...new Set([...cs, ...ns].map((r) => r.labels[LABEL.instance]!).filter(Boolean))];
}

/** Remove what a run left (only ever our own runs, by owner label); returns how much there was. */
export async function removeOwnedBy(owner: string): Promise<number> {
  const labels = { [LABEL.managed]: 'true', [LABEL.pid]: owner };
  const cs = await docker.listContainers(labels);
  await Promise.all(cs.map((c) => docker.removeContainer(c.name)));
  const ns = await docker.listNetworks(labels);
  await Promise.all(ns.map((n) => docker.removeNetwork(n.name)));
  return cs.length + ns.length;
}

/** Poll fn until it returns true, with a deadline (no fixed sleeps). */
export async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `tcplab-rel-${prefix}-`));
}

/** Write a lab file into a temp dir and return its path. */
export function writeLab(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** A minimal valid lab whose steps are `steps` (YAML text of the steps list), followed by one step that checks
 *  something (a lab that expects nothing at all is refused). */
export function labYaml(steps: string, extra = ''): string {
  return `id: 900
slug: reliability
title: reliability probe
summary: used by the reliability tests
intro: probe
topology: direct
${extra}steps:
${steps}  - { id: end, title: end, explain: end, expect: [{ on: client, absent: { local: "*:1" } }] }
`;
}

/** No stack trace: no "    at fn (file:line)" frames and no "internal error". */
export function expectNoStack(text: string): void {
  if (/^\s+at .+[:(].*\d+:\d+\)?$/m.test(text) || /internal error/.test(text)) {
    throw new Error(`output has a stack trace or an internal error:\n${text}`);
  }
}
