// The built CLI, end to end, as a user runs it.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import stripAnsi from 'strip-ansi';
import { afterAll, describe, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { lab1Port } from '../helpers/answers.js';
import { describeOrigin, imageOrigin } from '../../src/engine/image.js';

const run = promisify(execFile);
const bin = new URL('../../bin/lab.js', import.meta.url).pathname;

/** stdout as the JSON document it must be; when it is not, the failure shows what the command said. */
function json<T>(r: { code: number; stdout: string; stderr: string }): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`exit ${r.code}, stdout is not JSON:\n${r.stdout.slice(-2000)}\n--- stderr\n${r.stderr.slice(-4000)}`);
  }
}

/** One temp folder for this file's lab files and reports, removed at the end. */
const dir = mkdtempSync(join(tmpdir(), 'tcplab-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function lab(args: string[], env: Record<string, string> = {}) {
  try {
    const r = await run('node', [bin, ...args], { env: { ...process.env, ...env }, maxBuffer: 16 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe('lab without an engine', () => {
  it('list and validate work offline', async () => {
    const list = await lab(['list', '--json']);
    expect(list.code).toBe(0);
    const labs = JSON.parse(list.stdout) as { id: number; states: string[] }[];
    expect(labs.map((l) => l.id)).toEqual(expect.arrayContaining([1, 2]));
    const v = await lab(['validate', 'labs/01-basic-states.yaml']);
    expect(v.code).toBe(0);
  });

  it("lab help start prints start's help (as lab start --help does), not the general usage", async () => {
    const help = await lab(['help', 'start']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: lab start <number\|slug\|file>/);
    expect(help.stdout).toContain('the start of one (`lab start basic`)');
    expect(help.stdout).toBe((await lab(['start', '--help'])).stdout);
    const unknown = await lab(['help', 'frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no command 'frobnicate'/);
  });

  it('a bad lab file is reported with file:line and exit 2 (validate and grade alike), no stack trace', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      readFileSync('labs/01-basic-states.yaml', 'utf8').replace('title: The server listens on port 5555', 'title: x\n    bogus: 1'),
    );
    const v = await lab(['validate', file]);
    expect(v.code).toBe(2);
    expect(v.stdout).toMatch(new RegExp(`${file}:\\d+:\\d+: steps\\[0\\]: unknown key 'bogus'`));
    const g = await lab(['grade', file]);
    expect(g.code).toBe(2);
    expect(g.stderr).toMatch(/unknown key 'bogus'/);
    expect(g.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unreachable engine gets a clear message and exit 3', async () => {
    const r = await lab(['grade', '1'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    expect(r.code).toBe(3);
    expect(stripAnsi(r.stderr)).toMatch(/cannot reach the Docker engine/);
    expect(r.stderr).toMatch(/hint:/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('plan shows the machines and commands of a lab without an engine', async () => {
    const r = await lab(['plan', '2', '--json'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    expect(r.code).toBe(0);
    const p = JSON.parse(r.stdout) as {
      plan: { networks: { internal: boolean }[]; nodes: { key: string }[] };
      steps: { actions: string[] }[];
    };
    expect(p.plan.networks.every((n) => n.internal)).toBe(true);
    expect(p.plan.nodes.map((n) => n.key)).toEqual(['client', 'server']);
    expect(p.steps[0]!.actions[0]).toBe('client$ iptables -I OUTPUT -p tcp --dport 5555 --tcp-flags SYN SYN -j DROP');
  });

  it('unknown commands and labs are usage errors', async () => {
    expect((await lab(['frobnicate'])).code).toBe(2);
    const r = await lab(['start', '42']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no lab 42/);
  });
});

describe('the commands lab names are the ones that work where the student is', () => {
  // `npx lab start 7` in a clone: npm links the clone into its npx cache and puts the cache's node_modules/.bin
  // (with a `lab` that is this very tcplab) first on the PATH of that one run; a terminal opened later has no
  // `lab`. Offline (--no-verify: no try in a fresh instance): lab submit reads a walk's record and names the command
  // that grades it.
  const state = join(dir, 'npx-state');
  const cache = join(dir, '_npx', '3513fdd5', 'node_modules', '.bin');
  const labFile = new URL('../../labs/02-incomplete-handshake.yaml', import.meta.url).pathname;
  mkdirSync(join(state, 'work'), { recursive: true });
  mkdirSync(cache, { recursive: true });
  symlinkSync(bin, join(cache, 'lab'));
  const at = new Date().toISOString();
  writeFileSync(
    join(state, 'work', 'incomplete-handshake.json'),
    JSON.stringify({
      student: 'alice',
      lab: { id: 2, slug: 'incomplete-handshake', title: 'A firewall breaks the handshake', file: labFile, hash: '' },
      tcplab: '0.1.0',
      instance: 'abcd1234',
      updatedAt: at,
      tasks: {
        'drop-syn': {
          title: 'Your task',
          startedAt: at,
          endedAt: at,
          passed: true,
          attempts: 1,
          answer: [{ node: 'client', lines: ['iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP'] }],
        },
      },
    }),
  );
  const out = join(dir, 'npx-submission.yaml');
  // PATH as the tests run with it, minus any `lab` of this clone's own node_modules/.bin (there is none).
  const basePath = process.env.PATH ?? '';

  it('under npx: `npx lab ...`, not the `lab` npx put on the PATH for its one run', async () => {
    const r = await lab(['submit', '-o', out, '--no-verify'], {
      TCPLAB_STATE_DIR: state,
      PATH: `${cache}:${basePath}`,
      npm_command: 'exec',
      npm_lifecycle_event: 'npx',
    });
    expect(r.code, r.stderr).toBe(0);
    expect(stripAnsi(r.stdout)).toContain(`check it again as your instructor will: npx lab grade 2 --submission ${out}`);
  });

  it('started as node bin/lab.js: that, as typed', async () => {
    const r = await lab(['submit', '-o', out, '--no-verify'], { TCPLAB_STATE_DIR: state, npm_command: '', npm_lifecycle_event: '' });
    expect(r.code, r.stderr).toBe(0);
    expect(stripAnsi(r.stdout)).toContain(`check it again as your instructor will: node bin/lab.js grade 2 --submission ${out}`);
  });
});

describeDocker('lab grade, the CLI', (env) => {
  it('grade 1 2 --json passes and reports every check, and whose variants Lab 1 used; nothing is left', async () => {
    const r = await lab(['grade', '1', '2', '--json', '--junit', join(dir, 'j.xml'), '--student', 'bob']);
    const report = json<{
      passed: boolean;
      labs: { instance: string; passed: boolean; student?: string; variants?: Record<string, string> }[];
    }>(r);
    for (const l of report.labs) env.track(l.instance);
    expect(report.labs.map((l) => l.passed)).toEqual([true, true]);
    // Lab 1 has a port per student: the run says whose, and which; Lab 2 has no variants.
    expect(report.labs[0]).toMatchObject({ student: 'bob', variants: { 'variant.port': lab1Port('bob') } });
    expect(report.labs[1]!.variants).toBeUndefined();
    expect(report.passed).toBe(true);
    expect(r.code).toBe(0);
    expect(await env.leftovers()).toEqual([]);
  });

  it('grade --parallel 6 of 12 labs on one run: every lab passes, no MaxListenersExceededWarning', async () => {
    const quick = join(dir, 'quick.yaml');
    writeFileSync(
      quick,
      `id: 903
slug: quick
title: quick
summary: one listener
intro: i
topology: direct
steps:
  - id: listen
    title: the server listens
    explain: one socket
    run:
      - { on: server, run: [nc, -l, "5555"], name: srv, background: true }
    expect:
      - { on: server, socket: { state: LISTEN, local: "*:5555" } }
`,
    );
    // Twelve instances in one process: enough that listeners left on the run's signal by each would pass
    // Node's limit of 10 whatever the timing.
    const r = await lab(['grade', ...Array<string>(12).fill(quick), '--parallel', '6', '--json']);
    const report = json<{ passed: boolean; labs: { instance: string; passed: boolean }[] }>(r);
    for (const l of report.labs) env.track(l.instance);
    expect(report.labs.map((l) => l.passed)).toEqual(Array(12).fill(true));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/MaxListenersExceededWarning|memory leak/);
    expect(await env.leftovers()).toEqual([]);
  });

  it('doctor checks the engine, the image and iptables in a container, and says what it found on each line', async () => {
    const r = await lab(['doctor', '--json']);
    const report = json<{ ok: boolean; checks: { name: string; ok: boolean; detail: string; fix?: string }[] }>(r);
    expect(report.checks.map((c) => c.name)).toEqual([
      'engine',
      'leftovers',
      'image',
      'lab network',
      'iptables',
      'per-node sysctls',
      'agent',
      'isolation',
    ]);
    const line = (name: string) => report.checks.find((c) => c.name === name)!;
    // The engine line says what the engine itself reports.
    const info = await env.runtime.info();
    expect(line('engine').detail).toBe(
      `${info.product ?? 'Docker'} ${info.version}, API ${info.apiVersion}, ${info.os}, kernel ${info.kernel}` +
        `${info.cgroupVersion ? `, cgroup v${info.cgroupVersion}` : ''}${info.endpoint ? `, at ${info.endpoint}` : ''}`,
    );
    // Other people's killed runs may be listed; either way the line says which, and how to remove them.
    const leftovers = line('leftovers');
    if (leftovers.detail === 'no instance of a dead process') expect(leftovers.fix).toBeUndefined();
    else {
      expect(leftovers.detail).toMatch(/^\d+ instance\(s\) whose process is gone: [0-9a-f]{8} \(/);
      expect(leftovers.fix).toBe('`lab clean --stale` removes them');
    }
    // The image this run uses, and what the engine says of it (its id, size and who built it).
    expect(line('image').detail).toBe(`${env.image}: ${describeOrigin((await imageOrigin(env.runtime, env.image))!)}`);
    expect(line('lab network').detail).toMatch(/^internal bridge 198\.(18|19)\.\d{1,3}\.0\/24, two containers, ready in \d+(\.\d+)? m?s$/);
    expect(line('iptables').detail).toBe('a student can add a rule inside a container');
    expect(line('per-node sysctls').detail).toBe('net.ipv4.tcp_syn_retries=2 (asked for 2)');
    expect(line('agent').detail).toMatch(
      /^every node's agent answers \(\d+ socket\(s\) read, segments recorded\); a student's processes have NET_ADMIN and NET_RAW only$/,
    );
    // Isolation is checked, not assumed: no route out of the lab, and no answer from the host at the probe
    // network's own gateway (the bridge named on the lab network line).
    const subnet = /internal bridge (\d+\.\d+\.\d+)\.0\/24/.exec(line('lab network').detail)![1];
    expect(line('isolation').detail).toMatch(
      new RegExp(
        `^no route from a lab node to \\d+\\.\\d+\\.\\d+\\.\\d+, and the host does not answer at ${subnet!.replace(/\./g, '\\.')}\\.1$`,
      ),
    );
    for (const c of report.checks) expect(c.ok, `${c.name}: ${c.detail}`).toBe(true);
    expect(report.ok).toBe(true);
    expect(r.code).toBe(0);
  });

  it('start walks the steps off a TTY and shows both sides', async () => {
    const r = await lab(['start', '1', '--yes']);
    const out = stripAnsi(r.stdout);
    const instance = /lab instance ([0-9a-f]+) ready/.exec(out)?.[1];
    if (instance) env.track(instance);
    expect(r.code).toBe(0);
    expect(out).toMatch(/Step 1\/\d+: The server listens on port 5555/);
    expect(out).toMatch(/server\$ nc -l 5555 &/);
    expect(out).toMatch(/✓ met\s+client: socket TIME_WAIT/);
    expect(out).toMatch(/TIME_WAIT\s+198\.\d+\.\d+\.\d+:\d+ -> 198\.\d+\.\d+\.\d+:5555/);
    expect(out).toMatch(/PASS Lab 1/);
    expect(r.stdout).not.toMatch(/\u001b\[/); // no colour off a TTY
  });
});
