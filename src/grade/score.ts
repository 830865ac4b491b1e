// Points for a student's run of a lab. Pure: the lab and what its steps' checks said in, a score out.
//
// Nothing for nothing: a point is earned only by a check that tells answers apart. Every expectation becomes
// one outcome (met, not met, or not checked because something before it failed), and a lab's checks fall into
// sections, one per task: the task's step and the steps after it, up to the next task (a gradebook's columns).
//   - A section is all or nothing: it is worth the task's `points` (default: one per check of the section),
//     earned only when every check of the section is met.
//   - An author may give `points` to single checks of a section for partial credit. Those are earned on their
//     own, and are part of the task's points (the rest is earned when every check is met). They must be checks
//     that the null answer (the task done not at all) fails: `lab test` refuses a lab where it meets one, and
//     `lab grade --submissions` grades the null answer with every batch and moves the points of a check it met
//     back into the all-or-nothing part (`nullMet`), so that such a check never pays for nothing.
//   - Checks before the first task run the same for every answer (they prove the lab works): worth nothing.
import type { Expectation, Lab, Step } from '../lab/schema.js';
import { describeExpectation, type Check, type StepResult } from './grade.js';
import { READABLE, UNFILLED } from '../lab/templates.js';

/** One expectation of the lab, as this run settled it. */
export interface CheckOutcome {
  step: string;
  /** The expectation with templates as written: stable across runs and students. */
  name: string;
  /** As this run described it, with this instance's addresses and this student's variants. */
  expected: string;
  passed: boolean;
  /** false: never checked, because a command before it failed or the lab stopped early (see seen). */
  ran: boolean;
  seen: string[];
  why?: string;
  /** One of a task's own expectations. */
  task: boolean;
}

export interface GradedItem {
  step: string;
  /** Stable: a check's name, or "task <step id>: <title>" for the all-or-nothing part of a task's points. */
  name: string;
  points: number;
  maxPoints: number;
  passed: boolean;
  checks: CheckOutcome[];
  /** A check that the lab gives points of its own (partial credit). */
  partial?: true;
  /** The null answer met this check in this batch: it carries no points of its own (they went to the task). */
  nullMet?: true;
  /** The task's all-or-nothing part: every check of its section must be met. */
  whole?: true;
}

export interface Section {
  /** The task's step id; null for the steps before the first task. */
  step: string | null;
  title: string;
  passed: boolean;
  score: number;
  maxScore: number;
  items: GradedItem[];
}

interface LabScore {
  sections: Section[];
  score: number;
  maxScore: number;
  /** Every check from the first task on was met, and the lab ran to its end. */
  passed: boolean;
  /** The checks (checkKey) met from the first task on: of the null answer, those that tell nothing apart. */
  met: string[];
}

/** The steps that carry a task, in order: a gradebook's columns. */
export function taskSteps(lab: Lab): Step[] {
  return lab.steps.filter((s) => s.task);
}

/** The most a submission can score: the same for every student. */
export function maxScoreOf(lab: Lab): number {
  return scoreLab(lab, []).maxScore;
}

/** Points are kept to 1/1000: a task's points split or summed never shows as 0.30000000000000004. */
function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/**
 * Match each expectation of a step to the check the engine made of it. The engine makes checks in a fixed
 * order (the task's, then the step's), each named after its expectation; a failed command is a check without
 * a name, and whatever came after it in that step was not checked.
 */
function outcomesOf(step: Step, result: StepResult | undefined, error: string | undefined, settled?: string): CheckOutcome[] {
  const failure = result?.checks.find((c) => c.name === undefined && !c.passed);
  const notRun = (): string[] =>
    failure
      ? [`not checked: ${failure.seen.join('; ')}`]
      : settled && !result
        ? [`not checked: ${settled}`]
        : [`not checked: ${error ? `the lab stopped (${error})` : 'the lab stopped before this step'}`];
  const pool: Check[] = [...(result?.checks ?? [])];
  const take = (e: Expectation, task: boolean): CheckOutcome => {
    const name = describeExpectation(e, UNFILLED);
    const i = pool.findIndex((c) => c.name === name && !!c.task === task);
    const base = { step: step.id, name, task, ...(e.why ? { why: e.why } : {}) };
    // Never made, so no instance filled it in: its addresses in words, not the lab file's {{server.ip}}.
    if (i < 0) return { ...base, expected: describeExpectation(e, READABLE), passed: false, ran: false, seen: notRun() };
    const c = pool.splice(i, 1)[0]!;
    return { ...base, expected: c.expected, passed: c.passed, ran: true, seen: c.seen };
  };
  return [...(step.task?.expect ?? []).map((e) => take(e, true)), ...(step.expect ?? []).map((e) => take(e, false))];
}

/** A check's place in a lab, the same in every run: "step-id#n", n counting the task's checks, then the step's. */
function checkKey(o: Pick<CheckOutcome, 'step'>, index: number): string {
  return `${o.step}#${index}`;
}

interface ScoreOptions {
  /**
   * The checks (checkKey) that the null answer met in this batch. A check among them earns no points of its
   * own; a section whose every check is among them is worth nothing (it cannot tell any answer from none).
   */
  nullMet?: ReadonlySet<string>;
  /** The run stopped once nothing left could change its score (settledAfter): why, for the checks not made. */
  settled?: string;
}

/** Points of a check of its own (partial credit): only a positive number counts. */
function ownPoints(e: Expectation): number {
  return e.points !== undefined && e.points > 0 ? e.points : 0;
}

export function scoreLab(lab: Lab, results: StepResult[], error?: string, opts: ScoreOptions = {}): LabScore {
  const nullMet = opts.nullMet;
  const sections: Section[] = [];
  // Each section's checks, in order, with their expectations and keys.
  const parts: { task?: Step; checks: { o: CheckOutcome; e: Expectation; key: string }[] }[] = [];
  for (const step of lab.steps) {
    if (step.task || parts.length === 0) parts.push(step.task ? { task: step, checks: [] } : { checks: [] });
    const outcomes = outcomesOf(
      step,
      results.find((r) => r.id === step.id),
      error,
      opts.settled,
    );
    const expectations = [...(step.task?.expect ?? []), ...(step.expect ?? [])];
    parts.at(-1)!.checks.push(...outcomes.map((o, j) => ({ o, e: expectations[j]!, key: checkKey(o, j) })));
  }
  for (const part of parts) {
    const items: GradedItem[] = [];
    if (!part.task) {
      for (const { o } of part.checks) items.push({ step: o.step, name: o.name, points: 0, maxPoints: 0, passed: o.passed, checks: [o] });
      sections.push({ step: null, title: 'before the first task', passed: true, score: 0, maxScore: 0, items });
      continue;
    }
    const worth = part.task.task!.points ?? part.checks.length;
    const allMet = part.checks.every((c) => c.o.passed);
    const nothingTold = nullMet !== undefined && part.checks.every((c) => nullMet.has(c.key));
    let own = 0;
    const perCheck: GradedItem[] = part.checks.map(({ o, e, key }) => {
      const p = ownPoints(e);
      const met = nullMet?.has(key) ? { nullMet: true as const } : {};
      const partial = p > 0 ? { partial: true as const } : {};
      // A check with points of its own earns them when met, unless the null answer meets it too.
      const max = p > 0 && !nullMet?.has(key) && !nothingTold ? p : 0;
      own += max;
      return { step: o.step, name: o.name, points: o.passed ? max : 0, maxPoints: max, passed: o.passed, checks: [o], ...partial, ...met };
    });
    const rest = nothingTold ? 0 : round(worth - own);
    if (rest > 0 || own === 0)
      items.push({
        step: part.task.id,
        name: `task ${part.task.id}: ${part.task.title}`,
        points: allMet ? rest : 0,
        maxPoints: rest,
        passed: allMet,
        checks: part.checks.map((c) => c.o),
        whole: true,
      });
    items.push(...perCheck);
    sections.push({ step: part.task.id, title: part.task.title, passed: allMet, score: 0, maxScore: worth, items });
  }
  for (const s of sections) s.score = round(s.items.reduce((n, it) => n + it.points, 0));
  const graded = sections.filter((s) => s.step !== null);
  return {
    met: parts.flatMap((p) => (p.task ? p.checks.filter((c) => c.o.passed).map((c) => c.key) : [])),
    sections,
    score: round(sections.reduce((n, s) => n + s.score, 0)),
    maxScore: round(sections.reduce((n, s) => n + s.maxScore, 0)),
    passed: !error && graded.length > 0 && graded.every((s) => s.passed),
  };
}

/** A check from the lab's first task on, as the lab file declares it. */
export interface LabCheck {
  key: string;
  /** The task whose section it belongs to. */
  task: string;
  step: string;
  name: string;
  /** Points of its own (partial credit), 0 when it counts only toward its task's all-or-nothing points. */
  points: number;
}

/** Every check from the first task on, in order: what the null answer's met keys are named by. */
export function labChecks(lab: Lab): LabCheck[] {
  const out: LabCheck[] = [];
  let task: string | undefined;
  for (const step of lab.steps) {
    if (step.task) task = step.id;
    if (!task) continue;
    [...(step.task?.expect ?? []), ...(step.expect ?? [])].forEach((e, j) =>
      out.push({
        key: checkKey({ step: step.id }, j),
        task: task!,
        step: step.id,
        name: describeExpectation(e, UNFILLED),
        points: ownPoints(e),
      }),
    );
  }
  return out;
}

/**
 * Can the rest of a run still change what it scores, or what the null answer's run tells? After the steps in
 * `results` (in the lab's order, from its first step), it cannot when every check not made yet lies in a task
 * section that has already lost its all-or-nothing points (one of its checks was not met) and has no points of
 * its own. Then the rest of the lab is only time: a wrong answer's later steps wait out their deadlines for
 * states that cannot come. Returns why, for the checks left unmade, or undefined while something is at stake.
 */
export function settledAfter(lab: Lab, results: StepResult[]): string | undefined {
  const last = results.length ? lab.steps.findIndex((s) => s.id === results.at(-1)!.id) : -1;
  if (last < 0 || last === lab.steps.length - 1) return undefined;
  let task: Step | undefined;
  let lost: { task: Step; check: string } | undefined;
  const lostTasks = new Map<string, string>();
  for (const [i, step] of lab.steps.entries()) {
    if (step.task) task = step;
    const expectations = [...(step.task?.expect ?? []), ...(step.expect ?? [])];
    if (i <= last) {
      if (!task) continue;
      const failed = outcomesOf(
        step,
        results.find((r) => r.id === step.id),
        undefined,
      ).find((o) => !o.passed);
      if (failed && !lostTasks.has(task.id)) lostTasks.set(task.id, failed.name);
      continue;
    }
    // A step still to come: a new task, or a check of a section still whole or with points of its own.
    if (step.task || !task || !lostTasks.has(task.id)) return undefined;
    if (expectations.some((e) => ownPoints(e) > 0)) return undefined;
    lost ??= { task, check: lostTasks.get(task.id)! };
  }
  if (!lost) return undefined;
  return `task ${lost.task.id} had already lost its points ('${lost.check}' was not met), and no check after it could earn any: the rest of the lab was not run`;
}
