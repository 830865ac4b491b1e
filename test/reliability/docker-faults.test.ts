// Faults and bad input against the real CLI: no engine, no permission, the engine going away mid-lab (a socket
// proxy that is cut, not the shared dockerd), dropped connections (the proxy resets some), a failed image
// build, hostile lab files, a command that never returns. Each: a clear message, a non-zero exit, no stack
// trace, nothing left behind.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, symlinkSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { describeDocker } from '../helpers/docker.js';
import { expectNoStack, instancesOf, LabRun, labYaml, leftoversOf, PeakRss, removeOwnedBy, tempDir, writeLab, type Exit } from './cli.js';

interface FloodReport {
  labs: { steps: { checks: { passed: boolean; seen: string[] }[] }[] }[];
}

const owners = new Set<string>();
const dirs: string[] = [];
const tally = { faults: 0, badInputs: 0 };

function run(args: string[], env: Record<string, string | undefined> = {}): LabRun {
  const r = new LabRun(args, { env });
  owners.add(r.owner);
  return r;
}

/** A unix-socket proxy in front of the real engine, which a test can cut or make drop connections. */
class EngineProxy {
  readonly path: string;
  private server: Server;
  private sockets = new Set<Socket>();
  /** Reset a client connection whose bytes match this, this many times. */
  resetWhen?: { pattern: string; times: number };
  resets = 0;

  constructor(dir: string) {
    this.path = join(dir, 'engine.sock');
    this.server = createServer((client) => {
      const upstream = createConnection('/var/run/docker.sock');
      this.sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', drop).on('error', drop);
      upstream.on('close', drop).on('error', drop);
      client.on('data', (chunk: Buffer) => {
        const r = this.resetWhen;
        if (r && this.resets < r.times && chunk.toString('latin1').includes(r.pattern)) {
          this.resets++;
          client.destroy();
          upstream.destroy();
          return;
        }
        upstream.write(chunk);
      });
      upstream.pipe(client);
    });
  }

  listen(): Promise<void> {
    return new Promise((r) => this.server.listen(this.path, r));
  }

  get host(): string {
    return `unix://${this.path}`;
  }

  /** The engine "stops": every connection drops, and the socket is gone. */
  cut(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
    rmSync(this.path, { force: true });
  }
}

function expectClearFailure(
  exit: { code: number | null; stdout: string; stderr: string },
  code: number | 'nonzero',
  message: RegExp,
): void {
  const all = exit.stdout + exit.stderr.replace(/^.*lab:(exec|docker).*\n/gm, '');
  if (code === 'nonzero') expect(exit.code, all).not.toBe(0);
  else expect(exit.code, all).toBe(code);
  expect(all).toMatch(message);
  expectNoStack(all);
}

describeDocker('reliability: faults and bad input', () => {
  let dir = '';
  let slowLab = '';

  beforeAll(() => {
    dir = tempDir('faults');
    dirs.push(dir);
    slowLab = writeLab(
      dir,
      'slow.yaml',
      labYaml(`  - id: wait
    title: a long step
    explain: waits
    run:
      - { on: client, run: [sleep, "60"], timeout: 90s }
`),
    );
  });

  afterAll(async () => {
    for (const o of owners) await removeOwnedBy(o);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    console.log(`reliability: ${tally.faults} faults injected, ${tally.badInputs} bad inputs tried`);
  });

  // -- The engine ----------------------------------------------------------------------------------------

  for (const [args, code] of [
    [['grade', '1'], 3],
    [['start', '1'], 3],
    [['grade', '1', '--json'], 3],
    [['clean'], 3],
    [['stop'], 3],
    [['doctor'], 1],
  ] as const) {
    it(`no engine (DOCKER_HOST=unix:///nonexistent.sock): lab ${args.join(' ')} exits ${code} and says what to do`, async () => {
      tally.faults++;
      const exit = await run([...args], { DOCKER_HOST: 'unix:///nonexistent.sock' }).exited;
      expectClearFailure(exit, code, /cannot reach the Docker engine at unix:\/\/\/nonexistent\.sock/);
      expect(exit.stdout + exit.stderr).toMatch(/start Docker/);
    });
  }

  it('nothing listening (DOCKER_HOST=tcp://127.0.0.1:1): exit 3', async () => {
    tally.faults++;
    const exit = await run(['grade', '1'], { DOCKER_HOST: 'tcp://127.0.0.1:1' }).exited;
    expectClearFailure(exit, 3, /cannot reach the Docker engine/);
  });

  it('permission denied on the socket (a user outside the docker group): exit 3, how to get access', async () => {
    tally.faults++;
    // As root the socket's mode is no obstacle, so run the CLI as nobody.
    let exit: { code: number | null; stdout: string; stderr: string };
    try {
      const out = execFileSync(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, 'bin/lab.js', 'grade', '1'],
        {
          cwd: join(import.meta.dirname, '../..'),
          env: { ...process.env, NO_COLOR: '1', HOME: '/nonexistent' },
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      exit = { code: 0, stdout: out, stderr: '' };
    } catch (e) {
      const err = e as { status: number | null; stdout: string; stderr: string };
      exit = { code: err.status, stdout: err.stdout, stderr: err.stderr };
    }
    expectClearFailure(exit, 3, /permission denied on the Docker socket/);
    expect(exit.stderr).toMatch(/docker group/);
  });

  it('the engine going away mid-lab (its socket cut): exit 3, a clear message; `lab clean --stale` removes the rest', async () => {
    tally.faults++;
    const proxyDir = tempDir('proxy');
    dirs.push(proxyDir);
    const proxy = new EngineProxy(proxyDir);
    await proxy.listen();
    const r = run(['grade', slowLab], { DOCKER_HOST: proxy.host, DEBUG: 'lab:agent' });
    await r.waitForOutput(/sleep/);
    proxy.cut();
    const exit = await r.exited;
    expectClearFailure(exit, 3, /cannot reach the Docker engine|dropped the connection/);
    // The engine is fine; only this run's way to it was cut. What it could not remove is stale now.
    const ids = await instancesOf(r.owner);
    expect(ids).toHaveLength(1);
    const clean = await run(['clean', '--stale', '--json', ids[0]!]).exited;
    expect(JSON.parse(clean.stdout)).toMatchObject({ instances: ids });
    expect(await leftoversOf(r.owner)).toEqual([]);
  });

  it("dropped connections while a session with a node's agent opens (the proxy resets two): retried, and lab 1 still passes", async () => {
    const proxyDir = tempDir('proxy');
    dirs.push(proxyDir);
    const proxy = new EngineProxy(proxyDir);
    // The request that creates the relay's exec names it: tcplab-agent connect.
    proxy.resetWhen = { pattern: '"connect"', times: 2 };
    await proxy.listen();
    const exit = await run(['grade', '1'], { DOCKER_HOST: proxy.host, DEBUG: 'lab' }).exited;
    proxy.cut();
    tally.faults += proxy.resets;
    expect(proxy.resets).toBe(2);
    expect(exit.code, exit.stdout + exit.stderr).toBe(0);
    // The session was opened again (src/engine/agent-client.ts).
    expect(exit.stderr).toMatch(/agent of \w+: opening the session again \(1\)/);
  });

  // -- The image -----------------------------------------------------------------------------------------

  for (const [what, dockerfile, message] of [
    ['a failing RUN', 'FROM debian:bookworm-slim\nRUN echo building && exit 7\n', /image build failed/],
    ['a Dockerfile syntax error', 'FROMM debian:bookworm-slim\n', /image build failed|Docker could not build/],
  ] as const) {
    it(`an image build failure (${what}): exit 4, a clear message, nothing left`, async () => {
      tally.faults++;
      const img = tempDir('img');
      dirs.push(img);
      writeFileSync(join(img, 'Dockerfile'), dockerfile + `# ${randomBytes(4).toString('hex')}\n`);
      const r = run(['grade', '1'], { TCPLAB_IMAGE_DIR: img });
      const exit = await r.exited;
      expectClearFailure(exit, 4, message);
      expect(await leftoversOf(r.owner)).toEqual([]);
    });
  }

  // -- Commands that never return ------------------------------------------------------------------------

  it('a foreground command that never returns (sleep 1000, timeout 2s): killed, the step fails, the lab goes on', async () => {
    tally.faults++;
    const lab = writeLab(
      dir,
      'hang.yaml',
      labYaml(`  - id: hang
    title: hangs
    explain: never returns
    run:
      - { on: client, run: [sh, -c, "echo started; sleep 1000"], timeout: 2s }
  - id: after
    title: still runs
    explain: the next step
    run:
      - { on: server, run: [nc, -l, "5555"], name: srv, background: true }
    expect:
      - { on: server, socket: { state: LISTEN, local: "*:5555" } }
`),
    );
    const r = run(['grade', lab, '--json']);
    const exit = await r.exited;
    // What it printed before it was stopped is part of why (a lab author's only clue to where it hung).
    expectClearFailure(exit, 1, /did not finish within 2 s; it printed: started/);
    const report = JSON.parse(exit.stdout) as { labs: { steps: { id: string; passed: boolean }[] }[] };
    expect(report.labs[0]!.steps.map((s) => [s.id, s.passed])).toEqual([
      ['hang', false],
      ['after', true],
      ['end', true],
    ]);
    expect(exit.ms).toBeLessThan(30_000);
    expect(await leftoversOf(r.owner)).toEqual([]);
  });

  // -- Hostile lab files ---------------------------------------------------------------------------------

  // Each: what the file is, its text, and the one problem expected: where (line:column) and what it says.
  const hostile: [string, () => string, string, RegExp][] = [
    [
      'an unknown top-level key',
      () => labYaml(`  - { id: a, title: a, explain: a }\n`, 'privileged: true\n'),
      '7:1',
      /^unknown key 'privileged'$/,
    ],
    [
      'an unknown action key',
      () => labYaml(`  - id: a\n    title: a\n    explain: a\n    run:\n      - { on: client, run: [id], privileged: true }\n`),
      '12:34',
      /^steps\[0\]\.run\[0\]: unknown key 'privileged'$/,
    ],
    [
      'a volume mount asked for',
      () => labYaml(`  - { id: a, title: a, explain: a }\n`, 'volumes: ["/:/host"]\n'),
      '7:1',
      /^unknown key 'volumes'$/,
    ],
    [
      'a host sysctl (kernel.core_pattern)',
      () => labYaml(`  - { id: a, title: a, explain: a }\n`, 'nodes:\n  client:\n    sysctls: { kernel.core_pattern: "|/tmp/x" }\n'),
      '9:16',
      /^nodes\.client\.sysctls\.kernel\.core_pattern: only net\.ipv4\.\*, net\.ipv6\.\* and net\.core\.\* sysctls/,
    ],
    [
      'a template reaching the host ({{env.HOME}})',
      () => labYaml(`  - id: a\n    title: a\n    explain: a\n    run:\n      - { on: client, run: [echo, "{{env.HOME}}"] }\n`),
      '12:35',
      /^steps\[0\]\.run\[0\]\.run\[1\]: unknown template \{\{env\.HOME\}\}; a direct lab knows \{\{client\.ip\}\}/,
    ],
    [
      'a template naming a prototype ({{constructor}})',
      () => labYaml(`  - id: a\n    title: a\n    explain: a\n    run:\n      - { on: client, run: [echo, "{{constructor}}"] }\n`),
      '12:35',
      /^steps\[0\]\.run\[0\]\.run\[1\]: unknown template \{\{constructor\}\}; a direct lab knows \{\{client\.ip\}\}/,
    ],
    [
      'a template in an address with extra text',
      () =>
        labYaml(
          `  - id: a\n    title: a\n    explain: a\n    expect:\n      - { on: client, socket: { peer: "{{server.ip}};rm -rf /:5555" } }\n`,
        ),
      '12:33',
      /^steps\[0\]\.expect\[0\]\.socket\.peer: an address such as \*:5555/,
    ],
    [
      'a node that does not exist in the topology',
      () => labYaml(`  - id: a\n    title: a\n    explain: a\n    run:\n      - { on: firewall, run: [id] }\n`),
      '12:11',
      /^steps\[0\]\.run\[0\]\.on: this lab's direct topology has no firewall \(it has client, server\)$/,
    ],
    [
      'a name with shell characters',
      () =>
        labYaml(
          `  - id: a\n    title: a\n    explain: a\n    run:\n      - { on: client, run: [id], name: "x;reboot", background: true }\n`,
        ),
      '12:34',
      /^steps\[0\]\.run\[0\]\.name: use lower-case letters, digits and dashes/,
    ],
    [
      'a NUL in an argument',
      () => labYaml(`  - id: a\n    title: a\n    explain: a\n    run:\n      - { on: client, run: ["id\\0"] }\n`),
      '12:29',
      /^steps\[0\]\.run\[0\]\.run\[0\]: no NUL characters$/,
    ],
    [
      'a timeout of 11 days',
      () => labYaml(`  - id: a\n    title: a\n    explain: a\n    run:\n      - { on: client, run: [id], timeout: 999999s }\n`),
      '12:34',
      /^steps\[0\]\.run\[0\]\.timeout: at most 10m$/,
    ],
    [
      'a 200-argument command',
      () =>
        labYaml(`  - id: a\n    title: a\n    explain: a\n    run:\n      - { on: client, run: [${Array(200).fill('x').join(',')}] }\n`),
      '12:23',
      /^steps\[0\]\.run\[0\]\.run: at most 128 arguments$/,
    ],
    [
      'duplicate keys',
      () => 'id: 1\nid: 2\n' + labYaml(`  - { id: a, title: a, explain: a }\n`).replace(/^id: 900\n/, ''),
      '2:1',
      /^Map keys must be unique$/,
    ],
    [
      'YAML aliases (billion laughs)',
      () => {
        let t = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
        let prev = 'a';
        for (let i = 1; i < 10; i++) {
          t += `b${i}: &b${i} [${Array(9).fill(`*${prev}`).join(',')}]\n`;
          prev = `b${i}`;
        }
        return t;
      },
      '1:1',
      /^YAML anchors and aliases \(&name, \*name\) are not allowed in lab files/,
    ],
    // Where the parser gives up depends on the stack it has: the line is sure, the column is not.
    ['deep nesting (60000 levels)', () => `a: ${'['.repeat(60000)}${']'.repeat(60000)}\n`, '1', /^nested too deeply/],
    [
      'a 300 KB file',
      () => `id: 1\nintro: "${'x'.repeat(300_000)}"\n`,
      '1:1',
      /^the file has 300016 bytes; a lab file may have at most 262144$/,
    ],
    [
      'binary garbage',
      () => Buffer.from(Array.from({ length: 2048 }, (_, i) => i % 256)).toString('latin1'),
      '1:1',
      /^a lab file is a mapping with id, slug, title, intro and steps$/,
    ],
    ['an empty file', () => '', '1:1', /^a lab file is a mapping with id, slug, title, intro and steps$/],
    ['a list instead of a mapping', () => '- 1\n- 2\n', '1:1', /^a lab file is a mapping with id, slug, title, intro and steps$/],
    ['a tab-indented mess', () => 'id: 1\n\tslug: x\n', '2:1', /^Tabs are not allowed as indentation$/],
  ];

  /** The problems a command reported for `file`, as [line:column, message]. */
  const problemsOf = (text: string, file: string): [string, string][] =>
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith(`${file}:`))
      .map((l) => {
        const m = /^:(\d+:\d+): (.*)$/.exec(l.slice(file.length))!;
        return [m[1]!, m[2]!];
      });

  for (const [what, text, where, message] of hostile) {
    it(`hostile lab file: ${what} -> validate and grade refuse it at ${where}, nothing started`, async () => {
      tally.badInputs++;
      const file = join(dir, `bad-${tally.badInputs}.yaml`);
      writeFileSync(file, text());
      const anywhere = new RegExp(message.source.replace(/^\^/, '').replace(/\$$/, ''));
      const at = new RegExp(`^${where}${where.includes(':') ? '' : ':\\d+'}$`);
      const v = await run(['validate', file]).exited;
      expectClearFailure(v, 2, anywhere);
      const seen = problemsOf(v.stdout, file);
      expect(seen, v.stdout).toHaveLength(1);
      expect(seen[0]![0]).toMatch(at);
      expect(seen[0]![1]).toMatch(message);
      const g = run(['grade', file]);
      const ge = await g.exited;
      expectClearFailure(ge, 2, anywhere);
      const graded = problemsOf(ge.stderr, file);
      expect(graded, ge.stderr).toHaveLength(1);
      expect(graded[0]![0]).toMatch(at);
      expect(graded[0]![1]).toMatch(message);
      expect(await leftoversOf(g.owner)).toEqual([]);
    });
  }

  it('special files: /dev/zero, a FIFO, a symlink to /dev/zero, a directory, a missing file: refused at once', async () => {
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    const link = join(dir, 'zero.yaml');
    symlinkSync('/dev/zero', link);
    const sub = join(dir, 'adir.yaml');
    mkdirSync(sub);
    for (const f of ['/dev/zero', fifo, link, sub]) {
      tally.badInputs++;
      const v = await run(['validate', f]).exited;
      expectClearFailure(v, 2, /not a regular file/);
      const g = await run(['grade', f]).exited;
      expectClearFailure(g, 2, /not a regular file/);
      expect(g.ms).toBeLessThan(10_000);
    }
    tally.badInputs++;
    const missing = await run(['grade', join(dir, 'missing.yaml')]).exited;
    expectClearFailure(missing, 2, /no lab file at/);
    tally.badInputs++;
    const unreadable = join(dir, 'unreadable.yaml');
    writeFileSync(unreadable, 'id: 1\n');
    chmodSync(unreadable, 0o000);
    // (root reads it anyway; either way the answer is a clear problem, not a crash)
    const u = await run(['validate', unreadable]).exited;
    expectClearFailure(u, 2, /:1:1:/);
  });

  it('bad usage: unknown command, unknown option, --parallel 0, no lab: exit 2 with usage', async () => {
    for (const [args, message] of [
      [['frobnicate'], /unknown command/],
      [['grade', '1', '--bogus'], /Unknown option/i],
      [['grade', '1', '--parallel', '0'], /--parallel takes/],
      [['grade'], /needs labs/],
      [['start', '99'], /no lab 99\b/],
    ] as const) {
      tally.badInputs++;
      const exit = await run([...args]).exited;
      expectClearFailure(exit, 2, message);
    }
  });

  it('commands that try to break out of quoting run as argv: nothing is shell-parsed on the host or in the container', async () => {
    tally.badInputs++;
    const marker = `/tmp/tcplab-pwned-${randomBytes(4).toString('hex')}`;
    const payloads = [
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      `; touch ${marker}`,
      `&& touch ${marker}`,
      `| touch ${marker}`,
      `'"; touch ${marker}; "'`,
      `\n touch ${marker}`,
    ];
    const lab = writeLab(
      dir,
      'quoting.yaml',
      labYaml(`  - id: quoting
    title: hostile arguments
    explain: every argument reaches the program as it is
    run:
${payloads.map((p, i) => `      - { on: client, run: [echo, ${JSON.stringify(p)}], name: p${i} }`).join('\n')}
      - { on: client, run: [cat], name: stdin, stdin: ${JSON.stringify(`$(touch ${marker})`)} }
      - { on: client, run: [test, "!", -e, ${JSON.stringify(marker)}], name: nofile }
    expect:
${payloads
  .map(
    (p, i) =>
      `      - { on: client, command: { name: p${i}, exit: 0, output: ${JSON.stringify('^' + p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$')} } }`,
  )
  .join('\n')}
      - { on: client, command: { name: stdin, exit: 0, output: ${JSON.stringify('^\\$\\(touch ')} } }
      - { on: client, command: { name: nofile, exit: 0 } }
`),
    );
    const r = run(['grade', lab, '--json']);
    const exit = await r.exited;
    expect(exit.code, exit.stdout + exit.stderr).toBe(0);
    const report = JSON.parse(exit.stdout) as { labs: { passed: boolean; steps: { checks: unknown[] }[] }[] };
    expect(report.labs[0]!.passed).toBe(true);
    expect(report.labs[0]!.steps[0]!.checks).toHaveLength(payloads.length + 2);
    expect(existsSync(marker)).toBe(false);
    expect(await leftoversOf(r.owner)).toEqual([]);
  });

  // 100 MB on stdout, then one more line. Kept: the first 32 KiB, the last 32 KiB (the end of the x's, then
  // "the-end"), and between them a marker with what was cut: 100000009 - 2 * 32768 bytes.
  const FLOOD = `"head -c 100000000 /dev/zero | tr '\\\\0' x; echo; echo the-end"`;
  const CUT = `[... ${100_000_009 - 2 * 32_768} bytes cut ...]`;
  const MAX_RSS = 250 * 1024 * 1024;

  /** Grade a lab through the CLI (--json) while following its peak memory, which must have been read more than
   *  once: a peak of no readings is 0 and would pass any limit. */
  async function gradeWatched(file: string): Promise<{ exit: Exit; peak: number; report: FloodReport }> {
    const r = run(['grade', file, '--json']);
    const rss = new PeakRss(r.pid);
    const exit = await r.exited;
    const peak = rss.stop();
    expect(rss.readings, `the memory of lab grade (pid ${r.pid}) was read ${rss.readings} times`).toBeGreaterThan(1);
    expect(peak).toBeGreaterThan(0);
    expect(await leftoversOf(r.owner)).toEqual([]);
    return { exit, peak, report: JSON.parse(exit.stdout) as FloodReport };
  }

  it('a foreground command that prints 100 MB: lab grade stays under 250 MB resident; its output is kept bounded and says what was cut', async () => {
    tally.badInputs++;
    const lab = writeLab(
      dir,
      'flood.yaml',
      labYaml(`  - id: flood
    title: floods
    explain: lots of output
    run:
      - { on: client, run: [sh, -c, ${FLOOD}], name: flood, timeout: 60s }
    expect:
      - { on: client, command: { name: flood, exit: 0, output: "^the-end$" } }
`),
    );
    const { exit, peak, report } = await gradeWatched(lab);
    expect(exit.code, exit.stderr.slice(-2000)).toBe(0);
    expectNoStack(exit.stdout + exit.stderr);
    expect(peak, `peak RSS ${Math.round(peak / 2 ** 20)} MB`).toBeLessThan(MAX_RSS);
    const check = report.labs[0]!.steps[0]!.checks[0]!;
    expect(check.passed).toBe(true);
    // What the report keeps of the output: the last lines of the head, the marker, the tail, the last line.
    expect(check.seen[0]).toBe('flood: exited 0');
    expect(check.seen.slice(1).map((l) => l.trim().replace(/^x+$/, 'x...'))).toEqual(['x...', CUT, 'x...', 'the-end']);
    expect(check.seen[1]!.trim()).toHaveLength(32_768);
    expect(exit.stdout.length).toBeLessThan(200_000);
  });

  it("a background command that prints 100 MB: the node's 16 MB /tmp does not fill, its exit and bounded output are read, the next command still runs", async () => {
    tally.badInputs++;
    const lab = writeLab(
      dir,
      'flood-bg.yaml',
      labYaml(`  - id: flood
    title: floods in the background
    explain: lots of output
    run:
      - { on: client, run: [sh, -c, ${FLOOD}], name: flood, background: true }
    expect:
      - { on: client, command: { name: flood, exit: 0, output: "^the-end$" }, within: 60s }
  - id: after
    title: the node still works
    explain: another background command, and its output
    run:
      - { on: client, run: [sh, -c, "echo hello; echo world >&2"], name: later, background: true }
    expect:
      - { on: client, command: { name: later, exit: 0, output: "^hello\\nworld$" }, within: 10s }
`),
    );
    const { exit, peak, report } = await gradeWatched(lab);
    expect(exit.code, exit.stdout.slice(-3000) + exit.stderr.slice(-2000)).toBe(0);
    expect(peak, `peak RSS ${Math.round(peak / 2 ** 20)} MB`).toBeLessThan(MAX_RSS);
    const [flood, after] = report.labs[0]!.steps;
    expect(flood!.checks[0]!.seen.slice(1).map((l) => l.trim().replace(/^x+$/, 'x...'))).toEqual(['x...', CUT, 'x...', 'the-end']);
    expect(after!.checks[0]!.seen).toEqual(['later: exited 0', '  hello', '  world']);
    expect(exit.stdout.length).toBeLessThan(200_000);
  });
});
