// The formats a class's grades go out in: the CSV gradebook, JUnit, Gradescope and PrairieLearn results. Their
// counts add up, JUnit validates against the schema Jenkins reads, partial credit says which checks, and text
// that came from a student (file names, keys, what answers printed) reaches none of them with a control
// character in it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveLab } from '../../src/lab/catalogue.js';
import type { Lab } from '../../src/lab/schema.js';
import { describeExpectation, type Check, type LabResult, type StepResult } from '../../src/grade/grade.js';
import { UNFILLED } from '../../src/lab/templates.js';
import { maxScoreOf, scoreLab } from '../../src/grade/score.js';
import type { SubmissionResult } from '../../src/submit/batch.js';
import { renderGradebook } from '../../src/report/csv.js';
import { renderJunit, renderSubmissionsJunit } from '../../src/report/junit.js';
import { gradescopeResults } from '../../src/report/gradescope.js';
import { prairieLearnResults } from '../../src/report/prairielearn.js';
import { hasUnsafe, printable, printableDeep } from '../../src/printable.js';
import { renderLabResult } from '../../src/report/text.js';
import { makeStyle } from '../../src/report/style.js';
import {
  gradescopeProblems,
  junitCountProblems,
  junitSchemaProblems,
  parseCsv,
  parseJunit,
  prairieLearnProblems,
} from '../helpers/formats.js';

const lab = resolveLab('2').lab;
const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/formats/${name}`, import.meta.url), 'utf8')) as unknown;

/** What a hostile student makes a machine print, or names a file: an OSC title change, colours, a cursor
 *  move, NUL, CR that overwrites a line, DEL, a C1 CSI, a right-to-left override. */
const HOSTILE = '\u001b]0;pwned\u0007\u001b[31mred\u001b[0m\u001b[2J\u0000nul\rover\u007f\u009b1m\u202eevil';

/** A run in which the listed checks fail (step id -> indexes over task+expect; 'all' for every one). */
function run(l: Lab, failing: Record<string, number[] | 'all'>, subnet: number, seen = `seen on 198.19.${subnet}.3`): StepResult[] {
  const vars = { 'client.ip': `198.19.${subnet}.2`, 'server.ip': `198.19.${subnet}.3` };
  return l.steps.map((s) => {
    const checks: Check[] = [
      ...(s.task?.expect ?? []).map((e) => [e, true] as const),
      ...(s.expect ?? []).map((e) => [e, false] as const),
    ].map(([e, task], i) => ({
      step: s.id,
      node: e.on,
      kind: 'socket',
      expected: describeExpectation(e, vars),
      name: describeExpectation(e, UNFILLED),
      seen: [seen],
      passed: !(failing[s.id] === 'all' || (failing[s.id] as number[] | undefined)?.includes(i)),
      elapsedMs: 5,
      ...(task ? { task } : {}),
    }));
    return { id: s.id, title: s.title, checks, passed: checks.every((c) => c.passed) };
  });
}

function result(
  student: string | null,
  file: string,
  failing: Record<string, number[] | 'all'> | undefined,
  subnet = 1,
  extra: Partial<SubmissionResult> = {},
): SubmissionResult {
  if (!failing)
    return {
      student,
      file,
      gradable: false,
      reason: `${file}:3:5: unknown key 'x'`,
      passed: false,
      score: 0,
      maxScore: maxScoreOf(lab),
      tasks: [],
      durationMs: 0,
      ...extra,
    };
  const s = scoreLab(lab, run(lab, failing, subnet, extra.error ? `${HOSTILE} seen` : undefined), extra.error);
  return {
    student,
    file,
    gradable: true,
    passed: s.passed,
    score: s.score,
    maxScore: s.maxScore,
    tasks: s.sections,
    durationMs: 12_345,
    ...extra,
  };
}

/** A REJECT: the server never sees the SYN (6 points of its own), the client is refused. */
const bobFails = { 'drop-syn': [0, 1], 'connect-dropped': [0], retransmits: [0, 1] };
const results = [
  result('alice', 'subs/alice.yaml', {}, 11),
  result('bob', 'subs/bob.yaml', bobFails, 12),
  result('carol', 'subs/carol.yaml', { 'drop-syn': 'all', 'connect-dropped': 'all' }, 13),
  result(null, '=HYPERLINK("x").yaml', undefined),
];
/** Everything a student controls, raw, as if nothing upstream had escaped it: each format must. */
const hostile = [
  result('mallory', `subs/${HOSTILE}.yaml`, { release: 'all' }, 14, {
    error: `the lab stopped: ${HOSTILE}`,
    warnings: [`note ${HOSTILE}`],
    answers: [{ step: 'drop-syn', node: 'client', running: false, exit: 0, output: `${HOSTILE}\nsecond line` }],
  }),
  result(null, `subs/${HOSTILE}.yaml`, undefined, 1, { reason: `subs/x.yaml:4:3: answers: unknown key '${HOSTILE}'` }),
];

describe('the CSV gradebook', () => {
  it('has a header and a row per submission: a column per task, the total, the maximum, and why a task scored less', () => {
    const rows = parseCsv(renderGradebook(lab, results));
    expect(rows[0]).toEqual(['student', 'drop-syn', 'total', 'max', 'passed', 'gradable', 'file', 'why', 'note']);
    expect(rows[1]).toEqual(['alice', '20', '20', '20', 'true', 'true', 'subs/alice.yaml', '', '']);
    // Partial credit, and which check earned it; then the first check not met.
    expect(rows[2]!.slice(0, 6)).toEqual(['bob', '6', '6', '20', 'false', 'true']);
    expect(rows[2]![7]).toBe(
      "drop-syn: 6/20, earned 6 for 'server: no SYN segments to *:5555 on the wire for 1s (within 5s)'; not met: 'client: socket SYN_SENT, peer {{server.ip}}:5555 for 1s (within 5s)' (+4 more)",
    );
    expect(rows[3]!.slice(0, 6)).toEqual(['carol', '0', '0', '20', 'false', 'true']);
    expect(rows[3]![7]).toMatch(/^drop-syn: 0\/20, not met: 'client: socket SYN_SENT/);
    // Not gradable: no task points, the reason in the note; a file name a spreadsheet would run is defused.
    expect(rows[4]!.slice(0, 8)).toEqual(['', '', '0', '20', 'false', 'false', `'=HYPERLINK("x").yaml`, '']);
    expect(rows[4]![8]).toMatch(/unknown key 'x'/);
    expect(rows).toHaveLength(5);
  });

  it('says when a met check paid nothing because the null answer meets it too', () => {
    const s = scoreLab(lab, run(lab, bobFails, 12), undefined, { nullMet: new Set(['drop-syn#2']) });
    const r: SubmissionResult = { ...results[1]!, score: s.score, tasks: s.sections };
    const why = parseCsv(renderGradebook(lab, [r]))[1]![7];
    expect(why).toMatch(
      /^drop-syn: 0\/20, nothing for 'server: no SYN segments to \*:5555 on the wire for 1s \(within 5s\)': the null answer meets it too; not met: /,
    );
  });

  it('shows control characters escaped, in every cell', () => {
    const text = renderGradebook(lab, hostile);
    expect(hasUnsafe(text.replace(/\r\n/g, '\n'))).toBe(false);
    const rows = parseCsv(text);
    expect(rows[1]![6]).toBe(`subs/${printable(HOSTILE)}.yaml`);
    expect(rows[1]![6]).toContain('\\x1b]0;pwned\\x07');
    expect(rows[1]![8]).toContain('\\x00nul\\x0dover');
    expect(rows[2]![8]).toContain(`unknown key '\\x1b]0;pwned`);
  });
});

describe('JUnit', () => {
  const schema = (xml: string) => {
    const p = junitSchemaProblems(xml);
    // xmllint is libxml2-utils: CI installs it (.ci/run); elsewhere it may be missing, and says so.
    if (p === undefined && process.env.LAB_REQUIRE_DOCKER === '1') throw new Error('xmllint missing: apt-get install libxml2-utils');
    return p ?? [];
  };

  it('the schema check is real: it refuses what Jenkins would refuse', () => {
    if (junitSchemaProblems('<testsuites/>') === undefined && process.env.LAB_REQUIRE_DOCKER !== '1') return;
    expect(schema('<testsuites><testsuite name="a" tests="1"><testcase/></testsuite></testsuites>').join('\n')).toMatch(/name.*required/);
    expect(schema('<testsuites><testsuite tests="0"/></testsuites>').join('\n')).toMatch(/name.*required/);
    expect(schema('<testsuites><testsuite name="a" tests="0"/></testsuites>')).toEqual([]);
    expect(
      junitCountProblems('<testsuites tests="2"><testsuite name="a" tests="2" failures="1"><testcase name="x"/></testsuite></testsuites>'),
    ).toEqual(['suite a: tests=2, has 1', 'suite a: failures=1, has 0', 'testsuites: failures=0, its suites have 1']);
  });

  it('a suite per student, the same test names for every student, counts that add up, valid against the schema', () => {
    const xml = renderSubmissionsJunit(lab, results);
    expect(schema(xml)).toEqual([]);
    expect(junitCountProblems(xml)).toEqual([]);
    const j = parseJunit(xml);
    expect(j.suites.map((s) => s.name)).toEqual(['alice', 'bob', 'carol', '=HYPERLINK("x").yaml']);
    const [a, b, , d] = j.suites;
    expect(a!.cases.map((x) => x.name)).toEqual(b!.cases.map((x) => x.name));
    expect(a!.cases.map((x) => x.name).join('\n')).not.toMatch(/198\.19\./);
    expect(a!.cases.some((x) => x.name.includes('{{server.ip}}'))).toBe(true);
    expect(a).toMatchObject({ failures: 0, errors: 0, properties: { score: '20' } });
    // Bob: the whole task, and each of its checks that failed (the task's two, and the later ones).
    expect(b!.failures).toBe(1 + 5);
    expect(b!.cases.filter((x) => x.failure).every((x) => x.failure!.text!.includes('198.19.12.3'))).toBe(true);
    expect(d).toMatchObject({ errors: 1, cases: [{ name: 'the submission can be graded' }] });
    expect(j.errors).toBe(1);
  });

  it('a run that stopped with an error: its error is a test case and is counted, in the suite and at the root', () => {
    const xml = renderSubmissionsJunit(lab, hostile);
    expect(schema(xml)).toEqual([]);
    expect(junitCountProblems(xml)).toEqual([]);
    const m = parseJunit(xml).suites[0]!;
    expect(m.errors).toBe(1);
    expect(m.cases.at(-1)).toMatchObject({ name: 'lab ran to the end', error: { message: `the lab stopped: ${printable(HOSTILE)}` } });
  });

  it('shows control characters escaped (XML 1.0 would refuse most of them)', () => {
    const xml = renderSubmissionsJunit(lab, hostile);
    expect(hasUnsafe(xml)).toBe(false);
    expect(xml).toContain('\\x1b]0;pwned\\x07');
    expect(parseJunit(xml).suites[1]!.name).toBe(`subs/${printable(HOSTILE)}.yaml`);
  });

  it('lab grade of the labs themselves: stable names, two runs of a lab are two suites, an error is counted', () => {
    const one: LabResult = {
      lab: { id: 2, slug: lab.slug, title: lab.title },
      instance: 'aaaa',
      passed: true,
      steps: run(lab, {}, 7),
      score: { passed: 20, total: 20 },
      durationMs: 1,
    };
    const two: LabResult = { ...one, instance: 'bbbb', steps: run(lab, { release: [1] }, 8, HOSTILE), passed: false, error: HOSTILE };
    const xml = renderJunit([one, two]);
    expect(schema(xml)).toEqual([]);
    expect(junitCountProblems(xml)).toEqual([]);
    expect(hasUnsafe(xml)).toBe(false);
    const j = parseJunit(xml);
    expect(j.suites.map((s) => s.name)).toEqual(['lab 2 incomplete-handshake', 'lab 2 incomplete-handshake (2)']);
    expect(j.suites[0]!.cases.map((c) => c.name)).toEqual(j.suites[1]!.cases.slice(0, -1).map((c) => c.name));
    expect(j.suites[1]).toMatchObject({ tests: 21, failures: 1, errors: 1 });
    expect(j).toMatchObject({ tests: 41, failures: 1, errors: 1 });
  });
  it("lab grade's run that stopped part-way: one <error> case for it, with the lab's error as its message, the checks it reached as they were", () => {
    const error = `the Docker engine failed: container tcplab-cccc-client was removed <&> "by hand" ${HOSTILE}`;
    const reached = run(lab, { 'drop-syn': [0] }, 9).slice(0, 2);
    const stopped: LabResult = {
      lab: { id: 2, slug: lab.slug, title: lab.title },
      instance: 'cccc',
      passed: false,
      steps: reached,
      score: { passed: 0, total: 0 },
      durationMs: 1,
      error,
    };
    const xml = renderJunit([stopped]);
    expect(schema(xml)).toEqual([]);
    expect(junitCountProblems(xml)).toEqual([]);
    expect(hasUnsafe(xml)).toBe(false);
    const [suite] = parseJunit(xml).suites;
    const checks = reached.flatMap((s) => s.checks);
    // Every check the run reached, as it was, and then the run itself, as an error (not a failure).
    expect(suite!.cases.slice(0, -1).map((c) => [c.name, !!c.failure])).toEqual(checks.map((c) => [c.name, !c.passed]));
    expect(suite!.cases.at(-1)).toEqual({ classname: lab.slug, name: 'lab ran to the end', error: { message: printable(error) } });
    expect(suite!.cases.filter((c) => c.error)).toHaveLength(1);
    expect(suite).toMatchObject({ tests: checks.length + 1, failures: checks.filter((c) => !c.passed).length, errors: 1 });
    expect(xml).toContain('&lt;&amp;&gt; &quot;by hand&quot;');

    // Stopped before its first step: a suite of the error alone, still valid. Ran to its end: no error case.
    const early = renderJunit([{ ...stopped, steps: [] }]);
    expect(schema(early)).toEqual([]);
    expect(parseJunit(early).suites[0]).toMatchObject({ tests: 1, failures: 0, errors: 1, cases: [{ name: 'lab ran to the end' }] });
    const { error: _, ...finished } = stopped;
    expect(parseJunit(renderJunit([finished])).suites[0]!.cases.some((c) => c.error)).toBe(false);
  });
});

describe('Gradescope results.json', () => {
  it('the checker accepts the documented fields and refuses others', () => {
    expect(gradescopeProblems(fixture('gradescope.json'))).toEqual([]);
    expect(gradescopeProblems({ tests: [{ name: 'x', status: 'ok', points: 1 }] })).toEqual([
      'results.score: missing',
      'tests[0].points: not a documented field',
      'tests[0].status: passed or failed',
    ]);
  });

  it('has the documented fields only: a score, and a test per graded item whose scores add up to it', () => {
    for (const r of [...results, ...hostile]) expect(gradescopeProblems(gradescopeResults(lab, r)), r.file).toEqual([]);
    const bob = gradescopeResults(lab, results[1]!);
    expect(bob.score).toBe(6);
    expect(bob.tests.reduce((n, t) => n + t.score, 0)).toBe(bob.score);
    expect(bob.tests.reduce((n, t) => n + t.max_score, 0)).toBe(maxScoreOf(lab));
    expect(bob.tests.filter((t) => t.status === 'failed')).toHaveLength(6);
    expect(bob.tests.map((t) => t.name)).toEqual(gradescopeResults(lab, results[0]!).tests.map((t) => t.name));
    const broken = gradescopeResults(lab, results[3]!);
    expect(broken).toMatchObject({ score: 0, tests: [{ status: 'failed' }] });
    expect(broken.output).toMatch(/could not be graded/);
  });

  it('shows control characters escaped in every string', () => {
    for (const r of hostile) {
      const text = JSON.stringify(gradescopeResults(lab, r));
      expect(strings(JSON.parse(text)).some(hasUnsafe)).toBe(false);
      expect(text).toContain('\\\\x1b]0;pwned');
    }
  });
});

describe('PrairieLearn results.json', () => {
  it('the checker accepts the documented examples and refuses a score out of range', () => {
    expect(prairieLearnProblems(fixture('prairielearn.json'))).toEqual([]);
    expect(prairieLearnProblems(fixture('prairielearn-ungradable.json'))).toEqual([]);
    expect(prairieLearnProblems({ gradable: true, score: 3, tests: [{ name: 'x' }] })).toEqual([
      'results.score: outside 0..1',
      'tests[0].points: missing',
      'tests[0].max_points: missing',
    ]);
  });

  it('gradable with a score from 0 to 1 and tests with points, or not gradable with format_errors', () => {
    for (const r of [...results, ...hostile]) expect(prairieLearnProblems(prairieLearnResults(lab, r)), r.file).toEqual([]);
    const bob = prairieLearnResults(lab, results[1]!);
    expect(bob.gradable && bob.score).toBeCloseTo(6 / 20);
    expect(bob.gradable && bob.tests.reduce((n, t) => n + t.points, 0)).toBe(6);
    const broken = prairieLearnResults(lab, results[3]!);
    expect(broken).toMatchObject({ gradable: false, format_errors: [expect.stringMatching(/unknown key 'x'/)] });
  });

  it('shows control characters escaped in every string', () => {
    for (const r of hostile) expect(strings(prairieLearnResults(lab, r)).some(hasUnsafe)).toBe(false);
    expect(JSON.stringify(prairieLearnResults(lab, hostile[1]!))).toContain("unknown key '\\\\x1b]0;pwned");
  });
});

describe('the terminal', () => {
  it("a check's output reaches a terminal escaped, with tcplab's own colours intact", () => {
    const r: LabResult = {
      lab: { id: 2, slug: lab.slug, title: lab.title },
      instance: 'cccc',
      passed: false,
      steps: run(lab, { listen: [0] }, 9, HOSTILE),
      score: { passed: 19, total: 20 },
      durationMs: 1,
      error: `stopped: ${HOSTILE}`,
    };
    const text = renderLabResult(r, makeStyle(true));
    expect(hasUnsafe(text.replace(/\u001b\[\d+m/g, ''))).toBe(false);
    expect(text).toContain('\\x1b]0;pwned\\x07');
    expect(text).toContain('\u001b[31mFAIL\u001b[39m');
  });

  it('printable is idempotent, and keeps tabs, newlines and ordinary text (accents, emoji) as they are', () => {
    const once = printable(HOSTILE);
    expect(printable(once)).toBe(once);
    expect(printable('a\tb\nc é ✓ 😀')).toBe('a\tb\nc é ✓ 😀');
    expect(printableDeep({ [HOSTILE]: [HOSTILE, 1, null] })).toEqual({ [once]: [once, 1, null] });
  });
});

/** Every string in a JSON value. */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => [k, ...strings(x)]);
  return [];
}
