// A class, graded in one batch by the real CLI against the real engine: Lab 1, whose task uses a per-student
// port. Seven submissions: right, wrong, empty, hostile (a fork bomb, an endless loop, 100 MB of output, tries at
// the host), a broken file, one student's right answer copied whole by another, and an answer written with the
// variant's template (which would fit everyone if it were filled in). Every output format is read back
// and checked; the hostile one must cost only its own task; nothing may be left behind (describeDocker compares
// the engine's labelled containers and networks with those before the file, so a retried run counts too).
// Then empty answers of several kinds to Lab 2, whose task gives partial credit: each scores 0.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { gradescopeProblems, parseCsv, parseJunit, prairieLearnProblems } from '../helpers/formats.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { variantValues } from '../../src/lab/variants.js';
import type { NullAnswer, SubmissionResult } from '../../src/submit/batch.js';
import { renderSubmission } from '../../src/submit/render.js';
import { labHash } from '../../src/submit/submission.js';
import { resultFolder } from '../../src/report/gradescope.js';
import { VERSION } from '../../src/version.js';

const run = promisify(execFile);
const bin = new URL('../../bin/lab.js', import.meta.url).pathname;
const { lab: lab1, file: lab1File } = resolveLab('1');
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

/** Alice's right answer, as `lab submit` writes it: her own port typed in, the lab's hash, the version. */
const aliceFile = renderSubmission(
  {
    student: 'alice',
    lab: 1,
    answers: { 'your-turn': { server: `nc -l ${portOf('alice')}`, client: `echo hi | nc -q0 {{server.ip}} ${portOf('alice')}` } },
    tcplab: VERSION,
    labHash: labHash(readFileSync(lab1File!, 'utf8')),
    submittedAt: new Date().toISOString(),
  },
  [{ step: 'your-turn', title: 'Your task', status: 'lab check passed at attempt 1' }],
);
/** The copy: her file, every byte, with only the name changed. */
const copiedFile = aliceFile.replace(/^student: alice$/m, `student: ${copier}`);

function writeClass(): void {
  rmSync(subs, { recursive: true, force: true });
  const files: Record<string, string> = {
    'alice.yaml': aliceFile,
    // Wrong: no listener, so the connection is refused and nothing is left in TIME_WAIT.
    'bob.yaml': answer('bob', undefined, `echo hi | nc -q0 {{server.ip}} ${portOf('bob')}`),
    'carol.yaml': 'student: carol\nlab: 1\n',
    'mallory.yaml': answer(
      'mallory',
      // A fork bomb on the server (its pids limit holds it).
      `f() { f | f & }; f`,
      // On the client, tries to reach out of the container, each saying what it found (there, where no fork bomb
      // stops a look from reading them): outside the lab nothing is routable, so nc fails at once with "Network
      // is unreachable", not after a timeout; the engine's socket is not there to talk to; a command
      // substitution is not run by the host. Then 100 MB of output, then an endless loop.
      [
        `test -e /var/run/docker.sock && echo "docker.sock: there" || echo "docker.sock: none"`,
        `nc -v -w 2 -z 192.0.2.1 80 2>&1; echo "outside: exit $?"`,
        `touch ${hostMarker}; echo '$(touch ${hostMarker})'`,
        'head -c 100000000 /dev/zero',
        'while :; do :; done',
      ].join('\n'),
    ),
    'dave.yaml': 'student: dave\nlab: 1\nanswers: [not, closed\n',
    [`${copier}.yaml`]: copiedFile,
    // A template answer, which would fit every student if it were filled in: answers are literal, so it fails.
    'tina.yaml': answer('tina', 'nc -l {{variant.port}}', 'echo hi | nc -q0 {{server.ip}} {{variant.port}}'),
  };
  mkdirSync(subs, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(subs, name), text);
  // A link to alice's file (which would make two submissions of hers), and a broken file whose name is too long
  // for a folder with a "_" before it (it once failed every --gradescope folder after the class was graded).
  symlinkSync(join(subs, 'alice.yaml'), join(subs, 'mallet.yaml'));
  writeFileSync(join(subs, longName), 'student: [\n');
}
const longName = `${'L'.repeat(250)}.yaml`;

describeDocker('lab grade --submissions: a class in one batch', (env) => {
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(hostMarker, { force: true });
  });

  it('grades right, wrong, empty, hostile, broken, copied and template submissions, in every format, and leaves nothing', async () => {
    expect(portOf(copier)).not.toBe(portOf('alice'));
    // A copy of the whole file, not a retyped answer: only the student differs.
    expect(copiedFile.split('\n').filter((l, i) => l !== aliceFile.split('\n')[i])).toEqual([`student: ${copier}`]);
    writeClass();
    const args = [
      'grade',
      '1',
      '--submissions',
      subs,
      '--parallel',
      '6',
      // The task's time limit counts from an answer's first command: mallory's client part starts when the
      // server's fork bomb has had its 5 s to settle, and needs time left to say what it found.
      '--task-timeout',
      '10s',
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
    // Copied: the file that passes for alice fails for a student whose port is another, and for that reason
    // alone: the copy did what it does for alice (her port in TIME_WAIT on the client), which is not the
    // copier's task.
    expect(by[copier]).toMatchObject({ gradable: true, passed: false, score: 0 });
    expect(by[copier]!.warnings).toBeUndefined();
    const timeWait = by[copier]!.tasks[0]!.items[0]!.checks[0]!;
    expect(timeWait).toMatchObject({ passed: false, ran: true });
    expect(timeWait.expected).toContain(`:${portOf(copier)}`);
    expect(timeWait.seen.join('\n')).toMatch(new RegExp(`TIME_WAIT .*:${portOf('alice')}\\b`));
    // The template answer: graded as written (nc is given the text {{variant.port}}), and the result says why.
    expect(by.tina).toMatchObject({ gradable: true, passed: false, score: 0 });
    expect(by.tina!.warnings!.join('\n')).toMatch(/contain \{\{variant\.port\}\}, which is not filled in/);
    expect(by.tina!.answers!.map((a) => a.output).join('\n')).toMatch(/\{\{variant\.port\}\}/);
    // Broken: not gradable, with the file:line of the problem, and the batch went on.
    const broken = doc.submissions.find((r) => r.file.endsWith('dave.yaml'))!;
    expect(broken).toMatchObject({ gradable: false, student: null });
    expect(broken.reason).toMatch(/dave\.yaml:\d+:\d+: .*indented and end with a \]/);
    // Hostile: its own task lost, bounded output, bounded time, nothing on the host, nothing outside reached.
    const m = by.mallory!;
    expect(m).toMatchObject({ gradable: true, passed: false, score: 0 });
    for (const a of m.answers ?? []) expect(a.output.length).toBeLessThanOrEqual(64 * 1024);
    expect(m.durationMs).toBeLessThan(120_000);
    expect(existsSync(hostMarker)).toBe(false);
    const tries = m.answers!.find((a) => a.node === 'client')!.output;
    expect(tries).toMatch(/^docker\.sock: none$/m);
    // Line by line: a line another process wrote (the touch's error) can land between bash's own echoes.
    expect(tries).toMatch(/192\.0\.2\.1.*Network is unreachable$/m);
    expect(tries).toMatch(/^outside: exit 1$/m);
    expect(doc.counts).toEqual({ passed: 1, failed: 5, ungradable: 3 });
    expect(doc.submissions.find((r) => r.file.endsWith('mallet.yaml'))!.reason).toMatch(/a symbolic link, not a file/);
    console.log(`class of ${doc.submissions.length} graded in ${seconds.toFixed(1)} s`);

    // The gradebook: a header, a row per submission, a column for the task, the total.
    const rows = parseCsv(readFileSync(out('grades.csv'), 'utf8'));
    expect(rows[0]).toEqual(['student', 'your-turn', 'total', 'max', 'passed', 'gradable', 'file', 'why', 'note']);
    expect(rows).toHaveLength(10);
    const row = (s: string) => rows.find((r) => r[0] === s)!;
    expect(row('alice').slice(1, 6)).toEqual(['2', '2', '2', 'true', 'true']);
    expect(row(copier).slice(1, 6)).toEqual(['0', '0', '2', 'false', 'true']);
    expect(rows.find((r) => r[6]!.endsWith('dave.yaml'))!.slice(0, 6)).toEqual(['', '', '0', '2', 'false', 'false']);

    // JUnit: a suite per student, the same test names for everyone (the port as {{variant.port}}).
    const junit = parseJunit(readFileSync(out('junit.xml'), 'utf8'));
    expect(junit.suites).toHaveLength(9);
    const suite = (s: string) => junit.suites.find((x) => x.name === s)!;
    expect(suite('alice').failures).toBe(0);
    // The task as a whole, its TIME_WAIT check, and the client's SYN and FIN on the server's wire (nothing was
    // sent to the copier's own port).
    expect(suite(copier).failures).toBe(4);
    expect(suite('alice').cases.map((c) => c.name)).toEqual(suite(copier).cases.map((c) => c.name));
    expect(
      suite('alice')
        .cases.map((c) => c.name)
        .join('\n'),
    ).not.toMatch(/198\.1[89]\.|:56\d\d(?!-5699)/); // no address or student's port (the variants' range is the lab's)
    expect(junit.suites.find((x) => x.name.endsWith('dave.yaml'))!.errors).toBe(1);

    // Gradescope and PrairieLearn: a results.json per student, with the documented fields only.
    for (const r of doc.submissions) {
      const name = resultFolder(r);
      const gs = JSON.parse(readFileSync(join(out('gradescope'), name, 'results.json'), 'utf8')) as { score: number };
      expect(gradescopeProblems(gs), name).toEqual([]);
      expect(gs.score).toBe(r.score);
      const pl = JSON.parse(readFileSync(join(out('prairielearn'), name, 'results.json'), 'utf8')) as { gradable: boolean; score?: number };
      expect(prairieLearnProblems(pl), name).toEqual([]);
      expect(pl.gradable).toBe(r.gradable);
      if (r.gradable) expect(pl.score).toBe(r.score / r.maxScore);
    }

    // Nothing left: no labelled container or network that was not on the engine before this file began, those
    // of the runs it reports, of bob's first run (retried, so not the one reported) and of the null answer alike.
    expect(await env.leftovers()).toEqual([]);
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
    expect(r).toMatchObject({ student: 'frank', gradable: true, passed: true, score: 3, maxScore: 3 });
    expect(r.answers).toEqual([
      { step: 'your-turn', node: 'client', command: expect.stringContaining('iptables -A OUTPUT'), running: true, output: '' },
    ]);
    expect(code).toBe(0);
    expect(await env.leftovers()).toEqual([]);
  });

  it('empty answers score 0 on a lab whose task gives partial credit too (Lab 2: 6 + 6 + 8), however they are empty', async () => {
    // Lab 1's task is all or nothing; Lab 2's gives points to single checks, and an empty answer must earn none
    // of them: no answers at all, the task named with no machine, a machine with no lines.
    const empty = join(dir, 'empty');
    mkdirSync(empty, { recursive: true });
    writeFileSync(join(empty, 'nadia.yaml'), 'student: nadia\nlab: 2\n');
    writeFileSync(join(empty, 'omar.yaml'), 'student: omar\nlab: 2\nanswers:\n  drop-syn: {}\n');
    writeFileSync(join(empty, 'pia.yaml'), 'student: pia\nlab: 2\nanswers:\n  drop-syn:\n    client: ""\n');
    let stdout = '';
    let code = 0;
    try {
      ({ stdout } = await run('node', [bin, 'grade', '2', '--submissions', empty, '--parallel', '4', '--retries', '0', '--json'], {
        env: { ...process.env, TCPLAB_STATE_DIR: dir },
      }));
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      ({ stdout, code } = x);
      console.log(x.stderr);
    }
    const doc = JSON.parse(stdout) as { submissions: SubmissionResult[]; nullAnswer: NullAnswer };
    for (const r of doc.submissions) if (r.instance) env.track(r.instance);
    expect(code).toBe(0);
    expect(doc.nullAnswer).toMatchObject({ score: 0, passed: false });
    expect(doc.submissions.map((r) => r.student)).toEqual(['nadia', 'omar', 'pia']);
    for (const r of doc.submissions) {
      expect(r, r.student!).toMatchObject({ gradable: true, passed: false, score: 0, maxScore: 20 });
      const items = r.tasks.flatMap((t) => t.items);
      // The checks that carry points of their own are there, and each was looked at and not met.
      const partial = items.filter((i) => i.partial);
      expect(
        partial.map((i) => i.maxPoints),
        r.student!,
      ).toEqual([6, 6]);
      for (const i of partial) expect(i, `${r.student}: ${i.name}`).toMatchObject({ passed: false, points: 0 });
      expect(items.find((i) => i.whole)).toMatchObject({ passed: false, points: 0, maxPoints: 8 });
      expect(items.reduce((n, i) => n + i.points, 0)).toBe(0);
    }
    expect(await env.leftovers()).toEqual([]);
  });
});
