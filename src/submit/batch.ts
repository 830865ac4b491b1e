// Grading a class: every submission replayed in a fresh instance of the lab, with the student's answers in
// place of the tasks' solutions, the whole lab graded, and points given (src/grade/score.ts). A submission that
// cannot be read or does not fit the lab is a result too (gradable: false, with the reason); it never stops
// the batch. Only an interrupt, an engine that fails, or a bug does. Never prints: results go to callbacks.
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { EngineError, InterruptedError, LabError, formatProblem, type Problem } from '../errors.js';
import { eachInPool } from '../pool.js';
import type { Lab } from '../lab/schema.js';
import { variantValues } from '../lab/variants.js';
import { formatDuration } from '../lab/duration.js';
import type { LabEvent } from '../engine/events.js';
import { newInstanceId } from '../engine/provision.js';
import { runLab } from '../engine/run-lab.js';
import type { Runtime } from '../runtime/runtime.js';
import { labChecks, maxScoreOf, scoreLab, settledAfter, type LabCheck, type Section } from '../grade/score.js';
import type { StepResult } from '../grade/grade.js';
import { answersOf, answerTexts, labHash, loadSubmission } from './submission.js';
import { printable, printableDeep } from '../printable.js';

export interface AnswerOutput {
  step: string;
  node: string;
  /** The command (its first line); absent for output of older runs. */
  command?: string;
  running: boolean;
  exit?: number;
  /** The replay sent it Ctrl-C, as the student did. */
  interrupted?: boolean;
  output: string;
}

/** One submission's result: the shape of `lab grade --submissions --json`. */
export interface SubmissionResult {
  /** From the file; null when the file is too broken to say. */
  student: string | null;
  file: string;
  gradable: boolean;
  /** Why it could not be graded (gradable: false). */
  reason?: string;
  passed: boolean;
  score: number;
  maxScore: number;
  /** One per task: the task step and the steps after it, up to the next task. */
  tasks: Section[];
  durationMs: number;
  /** How many runs it took (more than 1: it did not pass at first and was graded again, see --retries). */
  attempts?: number;
  /** The lab instance it ran in (removed since). */
  instance?: string;
  /** This student's variant values: what their answers had to use. */
  variants?: Record<string, string>;
  /** What each machine's answer printed (the first 64 KiB). */
  answers?: AnswerOutput[];
  /** The lab stopped part-way: what stopped it. The checks it did not reach count as not met. */
  error?: string;
  /** The run stopped once nothing left could change its score, and why (the checks not made are not met). */
  settled?: string;
  /** Worth knowing, not fatal: the lab file differs from the one the student worked with, and so on. */
  warnings?: string[];
}

export interface Shard {
  k: number;
  n: number;
}

export interface BatchOptions {
  runtime: Runtime;
  lab: Lab;
  /** The lab file's text, to compare with the hash a submission recorded. */
  labText: string;
  image: string;
  parallel: number;
  /** Per submission: the whole lab must finish within this, or it is stopped and graded as far as it got. */
  labTimeoutMs: number;
  /** Caps each task's answer time limit. */
  taskTimeoutMs?: number;
  /** How often each lab's waits look (see InstanceOptions.pollIntervalMs). */
  pollIntervalMs?: number;
  /** Grade a submission that did not pass again, this many times; the best run counts. */
  retries?: number;
  signal: AbortSignal;
  version: string;
  /** Register an instance for cleanup on interrupt (and forget it once removed). */
  track(id: string): void;
  untrack(id: string): void;
  onResult?(r: SubmissionResult, done: number, total: number): void;
  /** Who handed the files in, as the platform knows them (lab grade --submission FILE --student ID): a file
   *  that names another student is not graded (a classmate's file, copied whole, passes with their values). */
  handedInBy?: string;
}

/**
 * How many submissions `lab grade --submissions` grades at once when --parallel is not given: four per CPU of
 * the engine's host (where the labs run, which DOCKER_HOST may put elsewhere), from 4 to 16. A Lab 2 run keeps
 * about a third of a core busy over its wall time (its timers wait), so four per core keep the cores busy
 * through the waits. On this project's 2-core host 8 graded 50 answers in 119 s against 152 s at 4, and 12 and
 * 16 were no faster (113 s, 115 s), every verdict right (BENCHMARKS.md, "Again, 4 Dec 22:10").
 */
export async function classParallel(runtime: Runtime): Promise<number> {
  const cpus = (await runtime.info().catch(() => undefined))?.cpus ?? 1;
  return Math.min(16, Math.max(4, 4 * cpus));
}

/**
 * The submission files named on the command line: a directory gives its *.yaml / *.yml files, sorted; a path
 * that cannot be read stays in the list, to be reported as not gradable like any broken file. The other entries
 * of a directory go to `skipped` (alice.yaml.txt is no submission, and the instructor is told so).
 */
export function submissionFiles(paths: string[], skipped: string[] = []): string[] {
  const files: string[] = [];
  for (const p of paths) {
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(p);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) {
      const names = readdirSync(p).sort();
      files.push(...names.filter((f) => /\.ya?ml$/i.test(f)).map((f) => join(p, f)));
      skipped.push(...names.filter((f) => !/\.ya?ml$/i.test(f)).map((f) => join(p, f)));
    } else files.push(p);
  }
  return [...new Set(files)];
}

/** K/N, 1 <= K <= N <= 1000. */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const k = Number(m?.[1]);
  const n = Number(m?.[2]);
  if (!m || n < 1 || n > 1000 || k < 1 || k > n)
    throw new LabError(`--shard takes K/N with 1 <= K <= N (got '${text}')`, 'for example --shard 2/4: the second of four shards');
  return { k, n };
}

/**
 * Is this file in shard K of N? Decided by a hash of the file's name alone, so every machine of a CI matrix
 * agrees without talking to the others, and a file added later does not move any other file between shards.
 */
export function inShard(file: string, shard: Shard): boolean {
  const h = createHash('sha256').update(basename(file)).digest().readUInt32BE(0);
  return h % shard.n === shard.k - 1;
}

function ungradable(lab: Lab, file: string, student: string | null, reason: string): SubmissionResult {
  return { student, file, gradable: false, reason, passed: false, score: 0, maxScore: maxScoreOf(lab), tasks: [], durationMs: 0 };
}

/** One thing to grade: a submission's answers, or (lab test) the lab's own solutions. */
export interface Prepared {
  file: string;
  /** Already settled: a file that cannot be graded. */
  result?: SubmissionResult;
  student?: string;
  answers?: ReturnType<typeof answersOf>;
  /** Run the tasks' own solutions instead of answers. */
  solution?: true;
  warnings: string[];
}

/** A submission file, read and checked against the lab: what to replay, with the warnings it earns, or its
 *  result already (a file that cannot be graded). */
export function prepareSubmission(file: string, lab: Lab, hash: string, version: string): Prepared {
  const loaded = loadSubmission(file, lab);
  // The name as results show it: a file name may hold a newline or a tab, which would forge a line of its own.
  const shown = oneLine(file);
  if (!loaded.ok)
    return { file: shown, result: ungradable(lab, shown, loaded.student ?? null, reasonOf(shown, loaded.problems)), warnings: [] };
  const s = loaded.submission;
  const warnings: string[] = [];
  if (s.labHash && s.labHash !== hash)
    warnings.push('the lab file differs from the one the student worked with (its labHash does not match): the tasks may have changed');
  if (s.tcplab && s.tcplab !== version) warnings.push(`written by tcplab ${s.tcplab}; graded with ${version}`);
  // Answers are literal: a template of a variant is not filled in, or one file would pass for every student.
  const variantTemplates = new Set(answerTexts(s).flatMap((t) => t.match(/\{\{\s*variant\.[a-z]+\s*\}\}/g) ?? []));
  if (variantTemplates.size)
    warnings.push(
      `the answers contain ${[...variantTemplates].join(', ')}, which is not filled in: an answer is graded as written, with the student's own values`,
    );
  return { file: shown, student: s.student, answers: answersOf(s), warnings };
}

/** Problems a reason shows, and characters of each: a 64 KiB file can make ten thousand (a tag on every word). */
const REASON_PROBLEMS = 5;
const REASON_PROBLEM_CHARS = 240;

/** Why a file cannot be graded: its first problems, each on one line with file:line:column, and how many more. */
function reasonOf(file: string, problems: Problem[]): string {
  const clip = (text: string, n: number) => (text.length > n ? `${text.slice(0, n)}…` : text);
  const lines = problems
    .slice(0, REASON_PROBLEMS)
    .map((p) => formatProblem(file, { ...p, path: clip(oneLine(p.path), 80), message: clip(oneLine(p.message), REASON_PROBLEM_CHARS) }));
  const more = problems.length - REASON_PROBLEMS;
  if (more > 0) lines.push(`${file}: and ${more} more problem${more === 1 ? '' : 's'}`);
  return lines.join('\n');
}

/** Text made printable and kept on one line: a newline or a tab shown as \n or \t. */
function oneLine(text: string): string {
  return printable(text).replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

/** Grade every file (already sharded), at most `parallel` at a time; results in the files' order. */
export async function gradeSubmissions(
  files: string[],
  opts: BatchOptions,
): Promise<{ results: SubmissionResult[]; engineFailed: boolean; nullAnswer?: NullAnswer }> {
  const { lab } = opts;
  const hash = labHash(opts.labText);
  const prepared = files.map((file) => prepareSubmission(file, lab, hash, opts.version));
  // Two files for one student: which one counts is the instructor's call, not ours.
  // Ids that differ only by case are one student too: a gradebook imported into an LMS, or folders on a file
  // system that ignores case, would let one overwrite the other.
  const byStudent = new Map<string, Prepared[]>();
  const key = (student: string) => student.toLowerCase();
  for (const p of prepared) if (p.student) byStudent.set(key(p.student), [...(byStudent.get(key(p.student)) ?? []), p]);
  for (const p of prepared) {
    const same = p.student ? byStudent.get(key(p.student))! : [];
    const ids = [...new Set(same.map((q) => q.student))];
    if (same.length > 1)
      p.result = ungradable(
        lab,
        p.file,
        p.student!,
        `student ${p.student} has ${same.length} submissions (${same.map((q) => q.file).join(', ')}${ids.length > 1 ? `, as ${ids.join(', ')}: ids that differ only by case are one student` : ''}): keep one`,
      );
  }

  const by = opts.handedInBy;
  if (by)
    for (const p of prepared)
      if (!p.result && p.student && key(p.student) !== key(by))
        p.result = ungradable(
          lab,
          p.file,
          p.student,
          `the file names student ${p.student}, but ${by} handed it in (--student): a student hands in their own answers, with their own values`,
        );

  const results: SubmissionResult[] = new Array(prepared.length);
  let engineFailed = false;
  let done = 0;
  const finish = (i: number, r: SubmissionResult) => {
    // File names, keys, reasons and what answers printed come from students: no control character leaves here.
    results[i] = printableDeep(r);
    opts.onResult?.(results[i], ++done, prepared.length);
  };
  // The null answer (every task left undone) is one more instance of the batch, the first to start: each
  // submission's points wait for it, so that a check it meets pays nothing to anyone (src/grade/score.ts).
  const needsNull = prepared.some((p) => !p.result);
  let settleNull!: (n: NullAnswer) => void;
  const nullAnswer = new Promise<NullAnswer>((resolve) => (settleNull = resolve));
  if (!needsNull) settleNull({ met: [], warnings: [] });
  const queue: (number | 'null')[] = [...(needsNull ? ['null' as const] : []), ...prepared.map((_, i) => i)];
  try {
    await eachInPool(
      queue,
      opts.parallel,
      async (job) => {
        if (job === 'null') {
          settleNull(
            await gradeNullAnswer(opts).catch((e: unknown) => {
              if (opts.signal.aborted || e instanceof InterruptedError || !(e instanceof LabError)) throw e;
              if (e instanceof EngineError) engineFailed = true;
              return { met: [], warnings: [], error: `${e instanceof EngineError ? 'engine: ' : ''}${e.message}` } satisfies NullAnswer;
            }),
          );
          return;
        }
        const i = job;
        const p = prepared[i]!;
        if (p.result) {
          finish(i, p.result);
          return;
        }
        try {
          finish(i, await gradeWithRetries(p, opts, nullAnswer));
        } catch (e) {
          if (opts.signal.aborted || e instanceof InterruptedError) throw e;
          if (!(e instanceof LabError)) throw e;
          // The engine could not make the instance or remove it, every time: this submission has no result, and
          // the batch says so (exit 3), but the others are still graded.
          if (e instanceof EngineError) engineFailed = true;
          finish(i, ungradable(lab, p.file, p.student ?? null, `${e instanceof EngineError ? 'engine: ' : ''}${e.message}`));
        }
      },
      opts.signal,
    );
  } finally {
    // A run that failed must not leave the others waiting for a null answer that will never come.
    settleNull({ met: [], warnings: [], error: 'not graded' });
  }
  if (opts.signal.aborted) throw new InterruptedError(String(opts.signal.reason ?? 'SIGINT'));
  return { results, engineFailed, ...(needsNull ? { nullAnswer: await nullAnswer } : {}) };
}

/** Who the null answer is graded as: its variants are this id's (an answer that does nothing uses none). */
const NULL_STUDENT = 'null-answer';

/** The null answer's run, as the results report it. */
export interface NullAnswer {
  /** The checks it met from the first task on, with the points of their own the lab gives them. */
  met: LabCheck[];
  /** Its score, as any answer's: it must be 0. */
  score?: number;
  passed?: boolean;
  /** Where the null answer changes what checks are worth: a check with points of its own that it met. */
  warnings: string[];
  /** It could not be graded (the engine failed): points of single checks count as the lab declares them. */
  error?: string;
}

/** The null answer: every task left undone, graded like a submission (once; again only if the engine failed). */
async function gradeNullAnswer(opts: BatchOptions): Promise<NullAnswer> {
  return nullAnswerOf(opts.lab, [await runNullAnswer(opts)]);
}

/** One run of the null answer: every task's step with no answer at all (its probe and checks as usual). */
export async function runNullAnswer(opts: BatchOptions): Promise<Run> {
  for (let n = 0; ; n++) {
    try {
      return await gradeOne({ file: '(null answer)', student: NULL_STUDENT, answers: {}, warnings: [] }, opts);
    } catch (e) {
      if (!(e instanceof EngineError) || opts.signal.aborted || n >= (opts.retries ?? 0)) throw e;
    }
  }
}

/** What runs of the null answer met (any of them: a check met once tells nothing apart), and what it scored. */
export function nullAnswerOf(lab: Lab, runs: Run[]): NullAnswer {
  const scored = runs.map((r) => scoreLab(lab, r.steps, r.error, r.settled ? { settled: r.settled } : {}));
  const met = new Set(scored.flatMap((s) => s.met));
  const warnings: string[] = [];
  const checks = labChecks(lab);
  for (const c of checks)
    if (c.points > 0 && met.has(c.key))
      warnings.push(
        `the null answer (no answer at all) meets '${c.name}' (step ${c.step}), which the lab gives ${c.points} points of its own: they count only with the whole task ${c.task}`,
      );
  for (const task of new Set(checks.map((c) => c.task)))
    if (checks.filter((c) => c.task === task).every((c) => met.has(c.key)))
      warnings.push(
        `the null answer meets every check of task ${task}: it tells no answer from none, so it is worth nothing in this batch`,
      );
  const stopped = runs.map((r) => r.error).find((e) => e);
  if (stopped) warnings.push(`the null answer's run stopped part-way (${stopped}): what it met before counts`);
  return {
    met: checks.filter((c) => met.has(c.key)),
    score: Math.max(...scored.map((s) => s.score)),
    passed: scored.some((s) => s.passed),
    warnings,
  };
}

/**
 * A look that comes back late on a busy host can fail a right answer; no look makes a state appear that the
 * answer does not make. An answer that works only sometimes (a race) gets the better of its runs. And an
 * engine that is slow to answer can fail to make an instance at all. So a run that did not pass, or whose
 * instance could not be made, gets another (up to `retries`), in a fresh instance, and the better one counts.
 */
export async function gradeWithRetries(p: Prepared, opts: BatchOptions, nullAnswer: Promise<NullAnswer>): Promise<SubmissionResult> {
  let best: SubmissionResult | undefined;
  let runs = 0;
  for (let n = 0; n <= (opts.retries ?? 0) && !opts.signal.aborted; n++) {
    let r: SubmissionResult;
    try {
      r = resultOf(p, await gradeOne(p, opts), await nullAnswer, opts.lab);
    } catch (e) {
      if (!(e instanceof EngineError) || opts.signal.aborted || n === (opts.retries ?? 0)) {
        if (best && e instanceof EngineError) break;
        throw e;
      }
      continue;
    }
    runs++;
    if (!best || r.score > best.score || (r.passed && !best.passed)) best = { ...r, durationMs: r.durationMs + (best?.durationMs ?? 0) };
    else best = { ...best, durationMs: best.durationMs + r.durationMs };
    if (best.passed) break;
  }
  if (!best) throw new InterruptedError(String(opts.signal.reason ?? 'SIGINT'));
  return runs > 1 ? { ...best, attempts: runs } : best;
}

/** One run of a lab with an answer, before it is scored. */
export interface Run {
  steps: StepResult[];
  error?: string;
  /** It stopped once nothing left could change its score (settledAfter): why. */
  settled?: string;
  outputs: AnswerOutput[];
  durationMs: number;
  instance: string;
}

/** A run, scored: the null answer's met checks pay nothing of their own. */
function resultOf(p: Prepared, run: Run, nullAnswer: NullAnswer, lab: Lab): SubmissionResult {
  const student = p.student!;
  const scored = scoreLab(lab, run.steps, run.error, {
    ...(nullAnswer.error ? {} : { nullMet: new Set(nullAnswer.met.map((c) => c.key)) }),
    ...(run.settled ? { settled: run.settled } : {}),
  });
  const lead = leadFailed(scored.sections);
  const variants = variantValues(lab, student);
  const nullNotes = nullAnswer.error
    ? [`the null answer could not be graded (${nullAnswer.error}): checks with points of their own pay as the lab declares them`]
    : nullAnswer.warnings;
  const warnings = [...p.warnings, ...lead, ...nullNotes];
  return {
    student,
    file: p.file,
    gradable: true,
    passed: scored.passed,
    score: scored.score,
    maxScore: scored.maxScore,
    tasks: scored.sections.filter((s) => s.step !== null),
    durationMs: run.durationMs,
    instance: run.instance,
    ...(Object.keys(variants).length ? { variants } : {}),
    ...(run.outputs.length ? { answers: run.outputs } : {}),
    ...(run.error ? { error: run.error } : {}),
    ...(run.settled ? { settled: run.settled } : {}),
    ...(warnings.length ? { warnings } : {}),
  };
}

async function gradeOne(p: Prepared, opts: BatchOptions): Promise<Run> {
  const { lab } = opts;
  const student = p.student!;
  const id = newInstanceId();
  const outputs: AnswerOutput[] = [];
  const stepsDone: StepResult[] = [];
  // The whole lab has a time limit of its own: past it, this submission's run is stopped like a Ctrl-C, its
  // instance removed, and the steps that finished are graded (the rest count as not met).
  const limit = new AbortController();
  const timer = setTimeout(() => limit.abort('time limit'), opts.labTimeoutMs);
  const signal = AbortSignal.any([opts.signal, limit.signal]);
  const started = performance.now();
  opts.track(id);
  try {
    const result = await runLab(opts.runtime, lab, {
      image: opts.image,
      instance: id,
      signal,
      student,
      ...(opts.pollIntervalMs !== undefined ? { pollIntervalMs: opts.pollIntervalMs } : {}),
      // Recording every segment costs each look; a class needs it only for a lab that checks segments.
      capture: usesSegments(lab),
      // Once an answer has lost every point still at stake, its later steps would only wait out their deadlines.
      // A lab's own solution (lab test) runs to the end: when it fails, its author needs every step's checks.
      ...(p.solution ? {} : { stopWhen: (steps: StepResult[]) => settledAfter(lab, steps) }),
      ...(p.solution
        ? {}
        : { answers: { byStep: p.answers ?? {}, ...(opts.taskTimeoutMs !== undefined ? { timeoutMs: opts.taskTimeoutMs } : {}) } }),
      emit: (e: LabEvent) => {
        if (e.type === 'step-done') stepsDone.push(e.result);
        if (e.type === 'answer')
          outputs.push({
            step: e.step,
            node: e.node,
            ...(e.command !== undefined ? { command: e.command } : {}),
            running: e.running,
            ...(e.exit !== undefined ? { exit: e.exit } : {}),
            ...(e.interrupted ? { interrupted: true } : {}),
            output: shownOutput(e.output),
          });
      },
    }).catch((e: unknown) => {
      if (limit.signal.aborted && !opts.signal.aborted) return undefined;
      throw e;
    });
    const error = result ? result.error : `the lab did not finish within ${formatDuration(opts.labTimeoutMs)} (--timeout)`;
    return {
      steps: result?.steps ?? stepsDone,
      ...(error ? { error } : {}),
      ...(result?.settled ? { settled: result.settled } : {}),
      outputs,
      durationMs: performance.now() - started,
      instance: id,
    };
  } finally {
    clearTimeout(timer);
    opts.untrack(id);
  }
}

/** What an answer's output may take in a result, escaped: the engine keeps 64 KiB, which escaping can grow. */
const MAX_SHOWN_OUTPUT = 64 * 1024;

/**
 * An answer's output as results show it: control characters escaped (\x00 is four characters for one byte), then
 * its head and tail when that grew past MAX_SHOWN_OUTPUT, with what was cut said in the middle.
 */
function shownOutput(text: string): string {
  const shown = printable(text);
  if (shown.length <= MAX_SHOWN_OUTPUT) return shown;
  const marker = (n: number) => `\n[... ${n} characters cut ...]\n`;
  const keep = MAX_SHOWN_OUTPUT - marker(shown.length).length;
  const head = Math.ceil(keep / 2);
  const tail = keep - head;
  return `${shown.slice(0, head)}${marker(shown.length - keep)}${shown.slice(shown.length - tail)}`;
}

/** Does a check read the capture: a segments check, or a socket's `closed` (its own FINs on the wire)? */
export function usesSegments(lab: Lab): boolean {
  return lab.steps.some((s) =>
    [...(s.expect ?? []), ...(s.task?.expect ?? [])].some(
      (e) => e.segments !== undefined || e.socket?.closed !== undefined || e.absent?.closed !== undefined,
    ),
  );
}

/** A check before the first task failed: the lab itself misbehaved there, not this student's answer. */
export function leadFailed(sections: Section[]): string[] {
  const lead = sections.find((s) => s.step === null);
  const failed = lead?.items.filter((it) => !it.passed) ?? [];
  if (!failed.length) return [];
  const miss = failed[0]!.checks.find((c) => !c.passed);
  const seen = miss?.seen.length ? `; seen: ${miss.seen.join('; ')}` : '';
  return [`${failed.length} check(s) before the first task failed; the lab itself, not this answer: ${failed[0]!.name}${seen}`];
}
