// Points for a student's run of a lab. Pure: the lab and what its steps' checks said in, a score out.
//
// Every expectation becomes one outcome (met, not met, or not checked because something before it failed), and
// outcomes become graded items:
//   - from the lab's first task on, each check is worth its `points` (default 1): a task is judged by its own
//     checks and by the later steps it affects, up to the next task;
//   - a task with `points` is one item worth that much, awarded only when all of the task's own checks are met;
//   - checks before the first task run the same for every student (they prove the lab works) and are worth
//     their `points`, default 0.
// Items group into sections, one per task (the task step and the steps after it, up to the next task), which
// are the columns of a gradebook.
import type { Expectation, Lab, Step } from '../lab/schema.js';
import { describeExpectation, type Check, type StepResult } from './grade.js';
import { UNFILLED } from '../lab/templates.js';

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
  /** Stable: a check's name, or "task <step id>: <title>" for a task worth points as a whole. */
  name: string;
  points: number;
  maxPoints: number;
  passed: boolean;
  checks: CheckOutcome[];
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
function outcomesOf(step: Step, result: StepResult | undefined, error: string | undefined): CheckOutcome[] {
  const failure = result?.checks.find((c) => c.name === undefined && !c.passed);
  const notRun = (): string[] =>
    failure
      ? [`not checked: ${failure.seen.join('; ')}`]
      : [`not checked: ${error ? `the lab stopped (${error})` : 'the lab stopped before this step'}`];
  const pool: Check[] = [...(result?.checks ?? [])];
  const take = (e: Expectation, task: boolean): CheckOutcome => {
    const name = describeExpectation(e, UNFILLED);
    const i = pool.findIndex((c) => c.name === name && !!c.task === task);
    const base = { step: step.id, name, task, ...(e.why ? { why: e.why } : {}) };
    if (i < 0) return { ...base, expected: name, passed: false, ran: false, seen: notRun() };
    const c = pool.splice(i, 1)[0]!;
    return { ...base, expected: c.expected, passed: c.passed, ran: true, seen: c.seen };
  };
  return [...(step.task?.expect ?? []).map((e) => take(e, true)), ...(step.expect ?? []).map((e) => take(e, false))];
}

export function scoreLab(lab: Lab, results: StepResult[], error?: string): LabScore {
  const firstTask = lab.steps.findIndex((s) => s.task);
  const sections: Section[] = [];
  let current: Section | undefined;
  lab.steps.forEach((step, i) => {
    if (step.task || !current) {
      current = {
        step: step.task ? step.id : null,
        title: step.task ? step.title : 'before the first task',
        passed: true,
        score: 0,
        maxScore: 0,
        items: [],
      };
      sections.push(current);
    }
    const result = results.find((r) => r.id === step.id);
    const outcomes = outcomesOf(step, result, error);
    const before = firstTask < 0 || i < firstTask;
    const expectations = [...(step.task?.expect ?? []), ...(step.expect ?? [])];
    const items: GradedItem[] = [];
    const own = outcomes.filter((o) => o.task);
    if (step.task?.points !== undefined) {
      const passed = own.every((o) => o.passed);
      const max = step.task.points;
      items.push({ step: step.id, name: `task ${step.id}: ${step.title}`, points: passed ? max : 0, maxPoints: max, passed, checks: own });
    }
    outcomes.forEach((o, j) => {
      if (o.task && step.task?.points !== undefined) return;
      const max = expectations[j]!.points ?? (before ? 0 : 1);
      items.push({ step: step.id, name: o.name, points: o.passed ? max : 0, maxPoints: max, passed: o.passed, checks: [o] });
    });
    current.items.push(...items);
  });
  for (const s of sections) {
    s.score = round(s.items.reduce((n, it) => n + it.points, 0));
    s.maxScore = round(s.items.reduce((n, it) => n + it.maxPoints, 0));
    s.passed = s.items.every((it) => it.passed);
  }
  const graded = sections.filter((s) => s.step !== null);
  return {
    sections,
    score: round(sections.reduce((n, s) => n + s.score, 0)),
    maxScore: round(sections.reduce((n, s) => n + s.maxScore, 0)),
    passed: !error && graded.length > 0 && graded.every((s) => s.passed),
  };
}
