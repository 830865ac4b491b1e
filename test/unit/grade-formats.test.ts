// The formats a class's grades go out in: the CSV gradebook, JUnit, Gradescope and PrairieLearn results.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveLab } from '../../src/lab/catalogue.js';
import type { Lab } from '../../src/lab/schema.js';
import { describeExpectation, type Check, type StepResult } from '../../src/grade/grade.js';
import { UNFILLED } from '../../src/lab/templates.js';
import { maxScoreOf, scoreLab } from '../../src/grade/score.js';
import type { SubmissionResult } from '../../src/submit/batch.js';
import { renderGradebook } from '../../src/report/csv.js';
import { renderJunit, renderSubmissionsJunit } from '../../src/report/junit.js';
import { gradescopeResults } from '../../src/report/gradescope.js';
import { prairieLearnResults } from '../../src/report/prairielearn.js';
import { gradescopeProblems, parseCsv, parseJunit, prairieLearnProblems } from '../helpers/formats.js';

const lab = resolveLab('2').lab;
const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/formats/${name}`, import.meta.url), 'utf8')) as unknown;

/** A run in which the named steps' checks all fail, with this run's own (random) addresses. */
function run(l: Lab, failing: string[], subnet: number): StepResult[] {
  const vars = { 'client.ip': `198.19.${subnet}.2`, 'server.ip': `198.19.${subnet}.3` };
  return l.steps.map((s) => {
    const checks: Check[] = [
      ...(s.task?.expect ?? []).map((e) => [e, true] as const),
      ...(s.expect ?? []).map((e) => [e, false] as const),
    ].map(([e, task]) => ({
      step: s.id,
      node: e.on,
      kind: 'socket',
      expected: describeExpectation(e, vars),
      name: describeExpectation(e, UNFILLED),
      seen: [`seen on ${vars['server.ip']}`],
      passed: !failing.includes(s.id),
      elapsedMs: 5,
      ...(task ? { task } : {}),
    }));
    return { id: s.id, title: s.title, checks, passed: checks.every((c) => c.passed) };
  });
}

function result(student: string | null, file: string, failing: string[] | undefined, subnet = 1): SubmissionResult {
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
    };
  const s = scoreLab(lab, run(lab, failing, subnet));
  return { student, file, gradable: true, passed: s.passed, score: s.score, maxScore: s.maxScore, tasks: s.sections, durationMs: 12_345 };
}

/** Checks in these steps (a task's and the step's own): each is worth a point in Lab 2, which sets none. */
const checksIn = (ids: string[]) =>
  lab.steps.filter((s) => ids.includes(s.id)).reduce((n, s) => n + (s.task?.expect.length ?? 0) + (s.expect?.length ?? 0), 0);
const bobFails = checksIn(['drop-syn', 'connect-dropped']);

const results = [
  result('alice', 'subs/alice.yaml', [], 11),
  result('bob', 'subs/bob.yaml', ['drop-syn', 'connect-dropped'], 12),
  result(null, '=HYPERLINK("x").yaml', undefined),
];

describe('the CSV gradebook', () => {
  it('has a header and one row per submission: a column per task, the total and the maximum', () => {
    const rows = parseCsv(renderGradebook(lab, results));
    expect(rows[0]).toEqual(['student', 'drop-syn', 'total', 'max', 'passed', 'gradable', 'file', 'note']);
    const max = String(maxScoreOf(lab));
    expect(rows[1]).toEqual(['alice', max, max, max, 'true', 'true', 'subs/alice.yaml', '']);
    expect(rows[2]!.slice(0, 6)).toEqual(['bob', String(Number(max) - bobFails), String(Number(max) - bobFails), max, 'false', 'true']);
    // Not gradable: no task points, the reason in the note; a file name a spreadsheet would run is defused.
    expect(rows[3]!.slice(0, 7)).toEqual(['', '', '0', max, 'false', 'false', `'=HYPERLINK("x").yaml`]);
    expect(rows[3]![7]).toMatch(/unknown key 'x'/);
    expect(rows).toHaveLength(4);
  });
});

describe('JUnit', () => {
  it('a suite per student, test names without any run address, and the same names for every student', () => {
    const j = parseJunit(renderSubmissionsJunit(lab, results));
    expect(j.suites.map((s) => s.name)).toEqual(['alice', 'bob', '=HYPERLINK("x").yaml']);
    const [a, b, c] = j.suites;
    expect(a!.cases.map((x) => x.name)).toEqual(b!.cases.map((x) => x.name));
    expect(a!.cases.map((x) => x.name).join('\n')).not.toMatch(/198\.19\./);
    expect(a!.cases.some((x) => x.name.includes('{{server.ip}}'))).toBe(true);
    expect(a).toMatchObject({ failures: 0, errors: 0, properties: { score: String(maxScoreOf(lab)) } });
    expect(b!.failures).toBe(bobFails);
    expect(b!.cases.filter((x) => x.failure).every((x) => x.failure!.text!.includes('198.19.12.3'))).toBe(true);
    expect(c).toMatchObject({ errors: 1, cases: [{ name: 'the submission can be graded' }] });
    expect(j.tests).toBe(a!.tests + b!.tests + c!.tests);
  });

  it('lab grade of the labs themselves: stable names too, and two runs of a lab are two suites', () => {
    const one = {
      lab: { id: 2, slug: lab.slug, title: lab.title },
      instance: 'aaaa',
      passed: true,
      steps: run(lab, [], 7),
      score: { passed: 14, total: 14 },
      durationMs: 1,
    };
    const two = { ...one, instance: 'bbbb', steps: run(lab, [], 8) };
    const j = parseJunit(renderJunit([one, two]));
    expect(j.suites.map((s) => s.name)).toEqual(['lab 2 incomplete-handshake', 'lab 2 incomplete-handshake (2)']);
    expect(j.suites[0]!.cases.map((c) => c.name)).toEqual(j.suites[1]!.cases.map((c) => c.name));
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

  it('has the documented fields only: a score, and a test per graded item with score, max_score, status, output', () => {
    for (const r of results) expect(gradescopeProblems(gradescopeResults(lab, r)), r.file).toEqual([]);
    const bob = gradescopeResults(lab, results[1]!);
    expect(bob.score).toBe(results[1]!.score);
    expect(bob.tests.reduce((n, t) => n + t.score, 0)).toBe(bob.score);
    expect(bob.tests.reduce((n, t) => n + t.max_score, 0)).toBe(maxScoreOf(lab));
    expect(bob.tests.filter((t) => t.status === 'failed')).toHaveLength(bobFails);
    expect(bob.tests.map((t) => t.name)).toEqual(gradescopeResults(lab, results[0]!).tests.map((t) => t.name));
    const broken = gradescopeResults(lab, results[2]!);
    expect(broken).toMatchObject({ score: 0, tests: [{ status: 'failed' }] });
    expect(broken.output).toMatch(/could not be graded/);
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
    for (const r of results) expect(prairieLearnProblems(prairieLearnResults(lab, r)), r.file).toEqual([]);
    const bob = prairieLearnResults(lab, results[1]!);
    expect(bob.gradable && bob.score).toBeCloseTo(results[1]!.score / maxScoreOf(lab));
    expect(bob.gradable && bob.tests.reduce((n, t) => n + t.points, 0)).toBe(results[1]!.score);
    const broken = prairieLearnResults(lab, results[2]!);
    expect(broken).toMatchObject({ gradable: false, format_errors: [expect.stringMatching(/unknown key 'x'/)] });
  });
});
