// Scores an instructor can defend, from the real CLI against the real engine: a class of Lab 2 answers gets the
// points the lab declares (20 for a right answer however it is written, 6 for a REJECT or the wrong chain, 0
// for nothing), the null answer is graded with the batch and scores 0, and text a student controls (keys, a
// file name, what an answer prints: ESC sequences, an OSC title change, NUL, CR) reaches no output raw.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import {
  gradescopeProblems,
  junitCountProblems,
  junitSchemaProblems,
  parseCsv,
  parseJunit,
  prairieLearnProblems,
} from '../helpers/formats.js';
import { hasUnsafe } from '../../src/printable.js';
import type { NullAnswer, SubmissionResult } from '../../src/submit/batch.js';

const run = promisify(execFile);
const bin = new URL('../../bin/lab.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'tcplab-scores-'));
const subs = join(dir, 'submissions');
const out = (name: string) => join(dir, name);

const answer = (student: string, client: string) =>
  `student: ${student}\nlab: 2\nanswers:\n  drop-syn:\n    client: |\n${client
    .split('\n')
    .map((l) => `      ${l}\n`)
    .join('')}`;
/** What a hostile answer prints: an OSC title change, colours, a screen clear, CR over the line, NUL. */
const PRINTS = String.raw`printf '\033]0;pwned\007\033[31mred\033[0m\033[2J\rover\000nul\n'`;
const HOSTILE_NAME = '\u001b]0;name\u0007.yaml';

function writeClass(): void {
  rmSync(subs, { recursive: true, force: true });
  mkdirSync(subs, { recursive: true });
  const files: Record<string, string> = {
    // Right, three ways: the article's rule; every segment to the server dropped; a REJECT tried, tested with
    // nc (which counts on the rule), taken out and replaced by a DROP of SYNs written with --tcp-flags.
    'ann.yaml': answer('ann', 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP'),
    'ben.yaml': answer('ben', 'iptables -A OUTPUT -d {{server.ip}} -j DROP'),
    'cat.yaml': answer(
      'cat',
      [
        'iptables -I OUTPUT -p tcp --dport 5555 -j REJECT',
        'nc -v -w 1 {{server.ip}} 5555 || true',
        'iptables -D OUTPUT -p tcp --dport 5555 -j REJECT',
        'iptables -I OUTPUT -p tcp --dport 5555 --tcp-flags SYN,ACK SYN -j DROP',
        // And prints what would take over an instructor's terminal.
        PRINTS,
      ].join('\n'),
    ),
    // Half right: REJECT instead of DROP; DROP in the wrong chain (the client's INPUT, the server's answers).
    'rob.yaml': answer('rob', 'iptables -I OUTPUT -p tcp --dport 5555 -j REJECT'),
    'wes.yaml': answer('wes', 'iptables -I INPUT -p tcp --sport 5555 -j DROP'),
    // Nothing.
    'eve.yaml': 'student: eve\nlab: 2\n',
    // Keys a student wrote with ESC and BEL in them: not gradable, and the reason names them.
    'kim.yaml': 'student: kim\nlab: 2\nanswers:\n  "\\e]0;pwned\\a":\n    client: "true"\n  drop-syn:\n    "\\e[2Jclient": "true"\n',
    // A file name with an OSC sequence in it (the batch reads every *.yaml of the folder), and a broken file.
    [HOSTILE_NAME]: 'student: zed\nlab: 2\nanswers: [drop-syn]\n',
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(subs, name), text);
}

describeDocker('lab grade --submissions: the scores Lab 2 declares, and nothing raw from a student', (env) => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('right answers written three ways get 20, REJECT and the wrong chain 6, nothing 0; no control character in any output', async () => {
    writeClass();
    const args = ['grade', '2', '--submissions', subs, '--parallel', '4', '--json'];
    args.push('--gradebook', out('grades.csv'), '--junit', out('junit.xml'), '--gradescope', out('gs'), '--prairielearn', out('pl'));
    let stdout = '';
    let stderr = '';
    let code = 0;
    const started = performance.now();
    try {
      ({ stdout, stderr } = await run('node', [bin, ...args], { env: { ...process.env, TCPLAB_STATE_DIR: dir }, maxBuffer: 64 << 20 }));
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      ({ stdout, stderr, code } = x);
    }
    console.log(`class of 8 Lab 2 files (and the null answer) graded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const doc = JSON.parse(stdout) as { submissions: SubmissionResult[]; nullAnswer: NullAnswer };
    for (const r of doc.submissions) if (r.instance) env.track(r.instance);
    expect(code, stderr).toBe(0);
    const by = Object.fromEntries(doc.submissions.map((r) => [r.student ?? r.file, r]));
    const score = (s: string) => [by[s]!.score, by[s]!.passed];

    // The scores the lab declares.
    for (const s of ['ann', 'ben', 'cat'])
      expect(score(s), `${s}: ${JSON.stringify(by[s]!.tasks[0]!.items.filter((i) => !i.passed))}`).toEqual([20, true]);
    expect(score('rob')).toEqual([6, false]);
    expect(score('wes')).toEqual([6, false]);
    expect(score('eve')).toEqual([0, false]);
    // Each partial score comes from the check the lab says: the SYN kept from the server, the client waiting.
    const earned = (s: string) => by[s]!.tasks[0]!.items.filter((i) => i.points > 0).map((i) => i.name);
    expect(earned('rob')).toEqual(['server: no SYN segments to *:5555 on the wire for 1s (within 5s)']);
    expect(earned('wes')).toEqual(['client: socket SYN_SENT, peer {{server.ip}}:5555 for 1s (within 5s)']);

    // The null answer was graded with the batch: it scores 0 and meets no check that has points of its own.
    expect(doc.nullAnswer).toMatchObject({ score: 0, passed: false, warnings: [] });
    expect(doc.nullAnswer.met.length).toBeGreaterThan(0);
    expect(doc.nullAnswer.met.filter((c) => c.points > 0)).toEqual([]);
    // It stops after the task it fails (nothing after it could pay): one check met there, nc still running.
    expect(stderr).toMatch(/the null answer \(no answer at all\) scored 0 and met \d+ checks? from the first task on/);

    // The gradebook says why a partial score is what it is.
    const rows = parseCsv(readFileSync(out('grades.csv'), 'utf8'));
    const row = (s: string) => rows.find((r) => r[0] === s)!;
    expect(rows[0]).toEqual(['student', 'drop-syn', 'total', 'max', 'passed', 'gradable', 'file', 'why', 'note']);
    expect(row('rob')[7]).toMatch(/^drop-syn: 6\/20, earned 6 for 'server: no SYN segments to \*:5555 on the wire/);
    expect(row('wes')[7]).toMatch(/^drop-syn: 6\/20, earned 6 for 'client: socket SYN_SENT/);
    expect(row('ann')[7]).toBe('');

    // Hostile text: the answer's output, the keys and the file name arrive escaped, everywhere.
    const cat = by.cat!.answers!.find((a) => a.node === 'client')!;
    expect(cat.output).toContain('\\x1b]0;pwned\\x07\\x1b[31mred');
    expect(cat.output).toContain('\\x0dover\\x00nul');
    expect(by.kim).toMatchObject({ gradable: false });
    expect(by.kim!.reason).toContain('\\x1b]0;pwned\\x07');
    expect(by.kim!.reason).toContain('\\x1b[2Jclient');
    const zed = doc.submissions.find((r) => r.student === 'zed')!;
    expect(zed).toMatchObject({ gradable: false });
    expect(zed.file).toContain('\\x1b]0;name\\x07.yaml');
    expect(zed.reason).toContain('\\x1b]0;name\\x07.yaml:3:');
    expect(hasUnsafe(stdout)).toBe(false);
    expect(hasUnsafe(stderr)).toBe(false);
    expect(hasUnsafe(JSON.stringify(JSON.parse(stdout)))).toBe(false);
    expect(strings(JSON.parse(stdout)).filter(hasUnsafe)).toEqual([]);
    const csv = readFileSync(out('grades.csv'), 'utf8');
    expect(hasUnsafe(csv.replace(/\r\n/g, '\n'))).toBe(false);
    const xml = readFileSync(out('junit.xml'), 'utf8');
    expect(hasUnsafe(xml)).toBe(false);
    for (const d of ['gs', 'pl'])
      for (const student of readdirSync(out(d))) {
        const text = readFileSync(join(out(d), student, 'results.json'), 'utf8');
        expect(strings(JSON.parse(text)).filter(hasUnsafe), `${d}/${student}`).toEqual([]);
        if (d === 'gs') expect(gradescopeProblems(JSON.parse(text)), student).toEqual([]);
        else expect(prairieLearnProblems(JSON.parse(text)), student).toEqual([]);
      }
    expect(readFileSync(join(out('gs'), 'cat', 'results.json'), 'utf8')).toContain('\\\\x1b]0;pwned');

    // JUnit: valid against the Jenkins schema, counts that add up, a failure for each answer not right.
    const schema = junitSchemaProblems(xml);
    if (schema !== undefined || process.env.LAB_REQUIRE_DOCKER === '1') expect(schema ?? ['xmllint missing']).toEqual([]);
    expect(junitCountProblems(xml)).toEqual([]);
    const suites = parseJunit(xml).suites;
    expect(suites.find((s) => s.name === 'ann')!.failures).toBe(0);
    expect(suites.find((s) => s.name === 'rob')!.failures).toBeGreaterThan(0);
    expect(suites.find((s) => s.name === 'kim')!.errors).toBe(1);

    expect(await env.leftovers()).toEqual([]);
  }, 400_000);
});

/** Every string in a JSON value, keys included. */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => [k, ...strings(x)]);
  return [];
}
