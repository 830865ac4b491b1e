// A class, graded in one batch by the real CLI against the real engine: Lab 1, whose task uses a per-student
// port. Seven submissions: right, wrong, empty, hostile (a fork bomb, an endless loop, 100 MB of output, tries at
// the host), a broken file, one student's right answer copied by another, and an answer written with the
// variant's template (which would fit everyone if it were filled in). Every output format is read back
// and checked; the hostile one must cost only its own task; nothing may be left behind.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { gradescopeProblems, parseCsv, parseJunit, prairieLearnProblems } from '../helpers/formats.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { variantValues } from '../../src/lab/variants.js';
import { LABEL } from '../../src/plan/plan.js';
import type { SubmissionResult } from '../../src/submit/batch.js';

const run = promisify(execFile);
const bin = new URL('../../bin/lab.js', import.meta.url).pathname;
const lab1 = resolveLab('1').lab;
const portOf = (student: string) => variantValues(lab1, student)['variant.port']!;

const dir = mkdtempSync(join(tmpdir(), 'tcplab-class-'));
const subs = join(dir, 'submissions');
const out = (name: string) => join(dir, name);
// If a hostile line ever ran on the host, this file would appear.
const hostMarker = join(tmpdir(), `tcplab-hostile-${process.pid}`);

const answer = (student: string, server: string | undefined, client: string | undefined) =>
  `student: ${student}\nlab: 1\nanswers:\n  your-turn:\n` +
  (server !== undefined ? `    server: |\n${indent(server)}` : '') +
  (client !== undefined ? `    client: |\n${indent(client)}` : '');
const indent = (text: string) =>
  text
    .split('\n')
    .map((l) => `      ${l}\n`)
    .join('');

// Someone whose port is not alice's, to copy her answer.
const copier = ['eve', 'erin', 'eli', 'ezra', 'emma'].find((s) => portOf(s) !== portOf('alice'))!;

function writeClass(): void {
  rmSync(subs, { recursive: true, force: true });
  const files: Record<string, string> = {
    'alice.yaml': answer('alice', `nc -l ${portOf('alice')}`, `echo hi | nc -q0 {{server.ip}} ${portOf('alice')}`),
    // Wrong: no listener, so the connection is refused and nothing is left in TIME_WAIT.
    'bob.yaml': answer('bob', undefined, `echo hi | nc -q0 {{server.ip}} ${portOf('bob')}`),
    'carol.yaml': 'student: carol\nlab: 1\n',
    'mallory.yaml': answer(
      'mallory',
      // A fork bomb on the server (its pids limit holds it), then tries to reach out of the container.
      [`f() { f | f & }; f`, `touch ${hostMarker}`, `cat /var/run/docker.sock`, `nc -w 1 -z 192.0.2.1 80`].join('\n'),
      // 100 MB of output, then an endless loop, on the client.
      [`touch ${hostMarker}; echo '$(touch ${hostMarker})'`, 'head -c 100000000 /dev/zero', 'while :; do :; done'].join('\n'),
    ),
    'dave.yaml': 'student: dave\nlab: 1\nanswers: [not, closed\n',
    [`${copier}.yaml`]: answer(copier, `nc -l ${portOf('alice')}`, `echo hi | nc -q0 {{server.ip}} ${portOf('alice')}`),
    // A template answer, which would fit every student if it were filled in: answers are literal, so it fails.
    'tina.yaml': answer('tina', 'nc -l {{variant.port}}', 'echo hi | nc -q0 {{server.ip}} {{variant.port}}'),
  };
  mkdirSync(subs, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(subs, name), text);
}

describeDocker('lab grade --submissions: a class in one batch', (env) => {
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(hostMarker, { force: true });
  });

  it('grades right, wrong, empty, hostile, broken, copied and template submissions, in every format, and leaves nothing', async () => {
    expect(portOf(copier)).not.toBe(portOf('alice'));
    writeClass();
    const args = [
      'grade',
      '1',
      '--submissions',
      subs,
      '--parallel',
      '6',
      '--task-timeout',
      '5s',
      '--json',
      '--gradebook',
      out('grades.csv'),
      '--junit',
      out('junit.xml'),
      '--gradescope',
      out('gradescope'),
      '--prairielearn',
      out('prairielearn'),
    ];
    const started = performance.now();
    let stdout = '';
    let code = 0;
    try {
      stdout = (await run('node', [bin, ...args], { env: { ...process.env, TCPLAB_STATE_DIR: dir }, maxBuffer: 64 << 20 })).stdout;
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      stdout = x.stdout;
      code = x.code;
      console.log(x.stderr);
    }
    const seconds = (performance.now() - started) / 1000;
    const doc = JSON.parse(stdout) as { submissions: SubmissionResult[]; counts: Record<string, number> };
    for (const r of doc.submissions) if (r.instance) env.track(r.instance);
    expect(code).toBe(0);
    const by = Object.fromEntries(doc.submissions.map((r) => [r.student ?? r.file, r]));

    // Right: full marks. Wrong and empty: the task's points lost.
    expect(by.alice, JSON.stringify(by.alice!.tasks[0]?.items.flatMap((i) => i.checks.filter((c) => !c.passed)))).toMatchObject({
      gradable: true,
      passed: true,
      score: 2,
      maxScore: 2,
      variants: { 'variant.port': portOf('alice') },
    });
    // Not passed: graded once more (--retries 1 by default), still not passed.
    expect(by.bob).toMatchObject({ gradable: true, passed: false, score: 0, attempts: 2 });
    expect(by.alice!.attempts).toBeUndefined();
    expect(by.carol).toMatchObject({ gradable: true, passed: false, score: 0 });
    // Copied: the same lines that pass for alice fail for a student whose port is another.
    expect(by[copier]).toMatchObject({ gradable: true, passed: false, score: 0 });
    expect(by[copier]!.tasks[0]!.items[0]!.checks[0]!.expected).toContain(`:${portOf(copier)}`);
    // The template answer: graded as written (nc is given the text {{variant.port}}), and the result says why.
    expect(by.tina).toMatchObject({ gradable: true, passed: false, score: 0 });
    expect(by.tina!.warnings!.join('\n')).toMatch(/contain \{\{variant\.port\}\}, which is not filled in/);
    expect(by.tina!.answers!.map((a) => a.output).join('\n')).toMatch(/\{\{variant\.port\}\}/);
    // Broken: not gradable, with the file:line of the problem, and the batch went on.
    const broken = doc.submissions.find((r) => r.file.endsWith('dave.yaml'))!;
    expect(broken).toMatchObject({ gradable: false, student: null });
    expect(broken.reason).toMatch(/dave\.yaml:\d+:\d+: .*indented and end with a \]/);
    // Hostile: its own task lost, bounded output, bounded time, nothing on the host.
    const m = by.mallory!;
    expect(m).toMatchObject({ gradable: true, passed: false, score: 0 });
    for (const a of m.answers ?? []) expect(a.output.length).toBeLessThanOrEqual(64 * 1024);
    expect(m.durationMs).toBeLessThan(120_000);
    expect(existsSync(hostMarker)).toBe(false);
    expect(doc.counts).toEqual({ passed: 1, failed: 5, ungradable: 1 });
    console.log(`class of ${doc.submissions.length} graded in ${seconds.toFixed(1)} s`);

    // The gradebook: a header, a row per submission, a column for the task, the total.
    const rows = parseCsv(readFileSync(out('grades.csv'), 'utf8'));
    expect(rows[0]).toEqual(['student', 'your-turn', 'total', 'max', 'passed', 'gradable', 'file', 'why', 'note']);
    expect(rows).toHaveLength(8);
    const row = (s: string) => rows.find((r) => r[0] === s)!;
    expect(row('alice').slice(1, 6)).toEqual(['2', '2', '2', 'true', 'true']);
    expect(row(copier).slice(1, 6)).toEqual(['0', '0', '2', 'false', 'true']);
    expect(rows.find((r) => r[6]!.endsWith('dave.yaml'))!.slice(0, 6)).toEqual(['', '', '0', '2', 'false', 'false']);

    // JUnit: a suite per student, the same test names for everyone (the port as {{variant.port}}).
    const junit = parseJunit(readFileSync(out('junit.xml'), 'utf8'));
    expect(junit.suites).toHaveLength(7);
    const suite = (s: string) => junit.suites.find((x) => x.name === s)!;
    expect(suite('alice').failures).toBe(0);
    // The task as a whole, and its TIME_WAIT check (nothing is left on the copier's own port).
    expect(suite(copier).failures).toBe(2);
    expect(suite('alice').cases.map((c) => c.name)).toEqual(suite(copier).cases.map((c) => c.name));
    expect(
      suite('alice')
        .cases.map((c) => c.name)
        .join('\n'),
    ).not.toMatch(/198\.1[89]\.|:56\d\d/);
    expect(junit.suites.find((x) => x.name.endsWith('dave.yaml'))!.errors).toBe(1);

    // Gradescope and PrairieLearn: a results.json per student, with the documented fields only.
    for (const r of doc.submissions) {
      const name = r.student ?? '_dave.yaml';
      const gs = JSON.parse(readFileSync(join(out('gradescope'), name, 'results.json'), 'utf8')) as { score: number };
      expect(gradescopeProblems(gs), name).toEqual([]);
      expect(gs.score).toBe(r.score);
      const pl = JSON.parse(readFileSync(join(out('prairielearn'), name, 'results.json'), 'utf8')) as { gradable: boolean; score?: number };
      expect(prairieLearnProblems(pl), name).toEqual([]);
      expect(pl.gradable).toBe(r.gradable);
      if (r.gradable) expect(pl.score).toBe(r.score / r.maxScore);
    }

    // Nothing left: no container or network of any instance this batch made.
    expect(await env.leftovers()).toEqual([]);
    const mine = await env.runtime.listContainers({ [LABEL.managed]: 'true', [LABEL.lab]: 'basic-states' });
    expect(mine.filter((c) => doc.submissions.some((r) => r.instance === c.labels[LABEL.instance]))).toEqual([]);
  });

  it('an answer that keeps running (a client left connected) is graded while it runs, and each machine waits for the one before', async () => {
    // Lab 3's task: the client drops pure ACKs to 5556 and connects; nc stays connected (it never finishes), so
    // the checks must start once it is waiting, not once it is done.
    const file = join(dir, 'lab3.yaml');
    writeFileSync(
      file,
      'student: frank\nlab: 3\nanswers:\n  your-turn:\n    client: |\n' +
        '      iptables -A OUTPUT -p tcp --dport 5556 --tcp-flags SYN,ACK,FIN,RST,PSH ACK -j DROP\n' +
        '      nc {{server.ip}} 5556\n',
    );
    let stdout = '';
    let code = 0;
    try {
      stdout = (await run('node', [bin, 'grade', '3', '--submission', file, '--json'], { env: { ...process.env, TCPLAB_STATE_DIR: dir } }))
        .stdout;
    } catch (e) {
      const x = e as { code: number; stdout: string };
      stdout = x.stdout;
      code = x.code;
    }
    const r = (JSON.parse(stdout) as { submissions: SubmissionResult[] }).submissions[0]!;
    if (r.instance) env.track(r.instance);
    expect(r).toMatchObject({ student: 'frank', gradable: true, passed: true, score: 2, maxScore: 2 });
    expect(r.answers).toEqual([{ step: 'your-turn', node: 'client', running: true, output: '' }]);
    expect(code).toBe(0);
    expect(await env.leftovers()).toEqual([]);
  });
});
