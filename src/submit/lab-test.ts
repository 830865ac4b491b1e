// `lab test`: what a lab author runs before a class. For each lab, in real containers: its own solutions (must
// pass, every run), the null answer (every task left undone: must score 0 and fail, every run), the checks the
// null answer meets (with the points they would carry: a check with points of its own among them is refused),
// and the mutant answers beside the lab file (<lab>.mutants/*.yaml, submissions that must each fail, every
// run). Everything runs in one pool, so several labs test in the time of their slowest runs. Never prints.
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { EngineError, InterruptedError, formatProblem } from '../errors.js';
import { eachInPool } from '../pool.js';
import type { Lab } from '../lab/schema.js';
import { taskSteps, type LabCheck } from '../grade/score.js';
import { cantTellLasted } from '../grade/grade.js';
import {
  gradeWithRetries,
  nullAnswerOf,
  runNullAnswer,
  type BatchOptions,
  type NullAnswer,
  type Prepared,
  type Run,
  type SubmissionResult,
} from './batch.js';
import { answersOf, loadSubmission } from './submission.js';

/** The lab's mutant answers: `<lab file without .yaml>.mutants/*.yaml`, sorted. */
export function mutantFiles(labFile: string): string[] {
  const dir = labFile.replace(/\.ya?ml$/i, '.mutants');
  if (dir === labFile || !existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/i.test(f))
    .sort()
    .map((f) => join(dir, f));
}

interface LabUnderTest {
  lab: Lab;
  file: string;
  /** The lab file's text (submissions' labHash is compared with it). */
  text: string;
}

export interface LabTestReport {
  lab: { id: number; slug: string; title: string };
  file: string;
  runs: number;
  solutions: { passed: number; scores: number[]; maxScore: number; failed: string[] };
  /** Absent for a lab without tasks: nothing to answer. */
  nullAnswer?: NullAnswer & { scores: number[]; failedRuns: number };
  /** Checks the null answer met that have points of their own: the lab is refused for them. */
  refused: LabCheck[];
  mutants: { file: string; failedRuns: number; scores: number[]; reason?: string }[];
  /** Everything that makes this lab fail its test, in words. */
  problems: string[];
  /** The engine failed for some run: the verdict cannot be trusted (exit 3). */
  engineFailed: boolean;
  ok: boolean;
  durationMs: number;
}

type TestOptions = Omit<BatchOptions, 'lab' | 'labText' | 'onResult'> & {
  runs: number;
  onLab?(r: LabTestReport): void;
};

type Job = { kind: 'null'; lab: number } | { kind: 'solution'; lab: number } | { kind: 'mutant'; lab: number; mutant: number };

interface State {
  opts: BatchOptions;
  started: number;
  nullRuns: Run[];
  nullPending: number;
  settleNull: (n: NullAnswer) => void;
  nullAnswer: Promise<NullAnswer>;
  solutions: SubmissionResult[];
  mutants: { file: string; prepared?: Prepared; reason?: string; results: SubmissionResult[] }[];
  engineErrors: string[];
  pending: number;
}

export async function testLabs(labs: LabUnderTest[], opts: TestOptions): Promise<LabTestReport[]> {
  const runs = opts.runs;
  const states: State[] = labs.map((l) => {
    let settleNull!: (n: NullAnswer) => void;
    const nullAnswer = new Promise<NullAnswer>((resolve) => (settleNull = resolve));
    const hasTasks = taskSteps(l.lab).length > 0;
    if (!hasTasks) settleNull({ met: [], warnings: [] });
    const mutants = (hasTasks ? mutantFiles(l.file) : []).map((file) => {
      const loaded = loadSubmission(file, l.lab);
      if (!loaded.ok)
        return { file, reason: loaded.problems.map((p) => formatProblem(file, p)).join('\n'), results: [] as SubmissionResult[] };
      const s = loaded.submission;
      return { file, prepared: { file, student: s.student, answers: answersOf(s), warnings: [] } satisfies Prepared, results: [] };
    });
    return {
      opts: { ...opts, lab: l.lab, labText: l.text, retries: 0 },
      started: performance.now(),
      nullRuns: [],
      nullPending: hasTasks ? runs : 0,
      settleNull,
      nullAnswer,
      solutions: [],
      mutants,
      engineErrors: [],
      pending: 0,
    };
  });
  // The null answers first (every other run of its lab waits for them to be scored), then the solutions, then
  // the mutants; each `runs` times.
  const jobs: Job[] = [];
  for (let r = 0; r < runs; r++) states.forEach((s, lab) => s.nullPending && jobs.push({ kind: 'null', lab }));
  for (let r = 0; r < runs; r++) states.forEach((_, lab) => jobs.push({ kind: 'solution', lab }));
  for (let r = 0; r < runs; r++)
    states.forEach((s, lab) => s.mutants.forEach((m, mutant) => m.prepared && jobs.push({ kind: 'mutant', lab, mutant })));
  for (const j of jobs) states[j.lab]!.pending++;
  // A lab's report is made as soon as its last run is done (so a caller can show it while others still run).
  const reports: Promise<LabTestReport>[] = new Array(labs.length);
  const done = (lab: number) => {
    const s = states[lab]!;
    if (--s.pending > 0) return;
    reports[lab] = s.nullAnswer.then((n) => {
      const r = report(labs[lab]!, s, n, runs);
      opts.onLab?.(r);
      return r;
    });
  };
  const solution: Prepared = { file: "(the lab's solutions)", student: 'solution', solution: true, warnings: [] };
  try {
    await eachInPool(
      jobs,
      opts.parallel,
      async (job) => {
        const s = states[job.lab]!;
        try {
          if (job.kind === 'null') {
            s.nullRuns.push(await runNullAnswer(s.opts));
          } else if (job.kind === 'solution') {
            s.solutions.push(await solutionRun(solution, s.opts, s.nullAnswer));
          } else {
            const m = s.mutants[job.mutant]!;
            m.results.push(await gradeWithRetries(m.prepared!, s.opts, s.nullAnswer));
          }
        } catch (e) {
          if (opts.signal.aborted || e instanceof InterruptedError || !(e instanceof EngineError)) throw e;
          s.engineErrors.push(e.message);
        } finally {
          if (job.kind === 'null' && --s.nullPending === 0)
            s.settleNull(s.nullRuns.length ? nullAnswerOf(s.opts.lab, s.nullRuns) : { met: [], warnings: [], error: 'engine' });
          done(job.lab);
        }
      },
      opts.signal,
    );
  } finally {
    for (const s of states) s.settleNull({ met: [], warnings: [], error: 'not run' });
  }
  if (opts.signal.aborted) throw new InterruptedError(String(opts.signal.reason ?? 'SIGINT'));
  return Promise.all(reports);
}

function report(l: LabUnderTest, s: State, n: NullAnswer, runs: number): LabTestReport {
  const { lab } = l;
  const problems: string[] = [];
  const maxScore = s.solutions[0]?.maxScore ?? 0;
  // The solutions must meet every check, those before the first task too (scoring alone would only warn).
  const hasTasks = taskSteps(lab).length > 0;
  const failedSolutions = s.solutions.filter(
    (r) => r.error !== undefined || (hasTasks && (!r.passed || r.score !== r.maxScore)) || r.warnings?.some((w) => LEAD.test(w)),
  );
  for (const r of failedSolutions) problems.push(`the lab's own solutions did not pass: ${firstMiss(r)}`);
  const refused = n.met.filter((c) => c.points > 0);
  let nullReport: LabTestReport['nullAnswer'];
  if (hasTasks) {
    const scores = s.nullRuns.map((r) => nullAnswerOf(lab, [r]).score ?? 0);
    const failedRuns = s.nullRuns.filter((r) => !nullAnswerOf(lab, [r]).passed).length;
    nullReport = { ...n, scores, failedRuns };
    if (scores.some((x) => x > 0)) problems.push(`the null answer scored ${Math.max(...scores)} of ${maxScore}: it must score 0`);
    if (failedRuns < s.nullRuns.length)
      problems.push('the null answer passed: every check from the first task on was met without an answer');
    for (const c of refused)
      problems.push(
        `the null answer meets '${c.name}' (step ${c.step}), which has ${c.points} points of its own: only a check the null answer fails may carry points`,
      );
    for (const w of n.warnings.filter((x) => /every check of task/.test(x))) problems.push(w);
  }
  const mutants = s.mutants.map((m) => {
    const failedRuns = m.results.filter((r) => r.gradable && !r.passed).length;
    if (m.reason) problems.push(`mutant ${basename(m.file)} cannot be graded: ${m.reason}`);
    else if (failedRuns < m.results.length)
      problems.push(`mutant ${basename(m.file)} passed ${m.results.length - failedRuns} of ${m.results.length} runs: it must fail`);
    return { file: m.file, failedRuns, scores: m.results.map((r) => r.score), ...(m.reason ? { reason: m.reason } : {}) };
  });
  for (const e of s.engineErrors) problems.push(`engine: ${e}`);
  return {
    lab: { id: lab.id, slug: lab.slug, title: lab.title },
    file: l.file,
    runs,
    solutions: {
      passed: s.solutions.length - failedSolutions.length,
      scores: s.solutions.map((r) => r.score),
      maxScore,
      failed: failedSolutions.map(firstMiss),
    },
    ...(nullReport ? { nullAnswer: nullReport } : {}),
    refused,
    mutants,
    problems,
    engineFailed: s.engineErrors.length > 0,
    ok: problems.length === 0,
    durationMs: performance.now() - s.started,
  };
}

/**
 * A run of the lab's own solution. `lab test` grades with no retries, so that a lab that passes only sometimes
 * shows. But a state that must last (`for`) is not met when the host was too busy to tell whether it lasted
 * (decide(): the lab's own commands were kept waiting for a CPU), and that says nothing about the lab: seen
 * once in CI, on a host at load 11, Lab 4's "SYN_SENT for 1500ms". A run whose every miss is such a "can't
 * tell" gets up to STARVED_RUNS more runs; any other miss counts at once.
 */
async function solutionRun(p: Prepared, opts: BatchOptions, nullAnswer: Promise<NullAnswer>): Promise<SubmissionResult> {
  let r = await gradeWithRetries(p, opts, nullAnswer);
  for (let n = 1; n <= STARVED_RUNS && onlyStarved(r) && !opts.signal.aborted; n++)
    r = { ...(await gradeWithRetries(p, opts, nullAnswer)), attempts: n + 1 };
  return r;
}

const STARVED_RUNS = 2;

/** Did the run fail, and only by checks that could not tell whether a state lasted? */
export function onlyStarved(r: SubmissionResult): boolean {
  if (r.error !== undefined || (r.passed && r.score === r.maxScore && !r.warnings?.some((w) => LEAD.test(w)))) return false;
  const misses = [
    ...(r.warnings ?? []).filter((w) => LEAD.test(w)),
    ...r.tasks
      .flatMap((t) => t.items.flatMap((i) => i.checks))
      .filter((c) => !c.passed)
      .map((c) => c.seen.join('; ')),
  ];
  return misses.length > 0 && misses.every(cantTellLasted);
}

const LEAD = /before the first task failed/;

/** The first check a run did not meet, or what stopped it. */
function firstMiss(r: SubmissionResult): string {
  if (r.error) return `the lab stopped: ${r.error}`;
  const lead = r.warnings?.find((w) => LEAD.test(w));
  if (lead) return lead;
  const c = r.tasks.flatMap((t) => t.items.flatMap((i) => i.checks)).find((x) => !x.passed);
  return c ? `${c.step}: ${c.expected}; seen: ${c.seen.join('; ')}` : `${r.score} of ${r.maxScore} points`;
}
