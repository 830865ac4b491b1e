// INTERIM: the walk of one student's lab in the browser, until the walk's own model (src/walk, issue 18 items 4
// and 8, built on another branch) is on main; then the server drives that model and this file goes. It is kept
// to the intents the page sends (predict, check, hint, solve, continue) and the view the page draws, so that
// the swap touches this file and the line that makes one. The engine does the work (Instance: a step's
// commands, a task's check, the expectations); nothing here grades.
import { createHash } from 'node:crypto';
import type { Lab, Step } from '../lab/schema.js';
import { fill } from '../lab/templates.js';
import type { Instance } from '../engine/instance.js';
import type { Check, StepResult } from '../grade/grade.js';

export type Phase = 'predict' | 'running' | 'task' | 'checking' | 'expecting' | 'review' | 'done';

export type WalkIntent =
  { type: 'predict'; choice: string } | { type: 'check' } | { type: 'hint' } | { type: 'solve' } | { type: 'continue' };

export interface CheckLine {
  expected: string;
  passed: boolean;
  seen: string[];
  why?: string;
  task: boolean;
}

export interface WalkScore {
  predictions: { right: number; asked: number };
  checks: { met: number; total: number };
  tasks: { done: number; total: number };
  steps: { done: number; total: number };
}

/** What the page draws of the walk: plain JSON. */
interface WalkView {
  stepIndex: number;
  total: number;
  phase: Phase;
  busy?: string;
  step?: {
    id: string;
    title: string;
    explain: string[];
    task?: { prompt: string[]; hints: number };
    predict?: {
      question: string;
      choices: { key: string; text: string }[];
      chosen?: string;
      /** Shown once the step has run. */
      answer?: string;
      right?: boolean;
      why?: string;
    };
  };
  /** The last task check, or the step's expectations once they ran. */
  checks: CheckLine[];
  attempts: number;
  hint?: string;
  score: WalkScore;
  notes?: string[];
  note?: string;
}

/** What survives a restart of the server. */
export interface WalkSaved {
  stepIndex: number;
  phase: Phase;
  predictions: Record<string, { choice: string; right: boolean }>;
  results: StepResult[];
  attempts: Record<string, number>;
  tasksDone: string[];
  lastChecks: CheckLine[];
  hintsShown: number;
  stepStartedAt: string;
  note?: string;
}

export interface TaskEnd {
  step: Step;
  passed: boolean;
  solvedByTcplab: boolean;
  attempts: number;
  startedAt: number;
  endedAt: number;
}

interface WalkHooks {
  changed(): void;
  /** A task ended (passed, or the student asked for the solution): its commands are recorded then. */
  taskEnded(t: TaskEnd): Promise<void>;
  /** Where the walk stands, to keep. */
  save(s: WalkSaved): void;
}

export function freshWalk(): WalkSaved {
  return {
    stepIndex: 0,
    phase: 'predict',
    predictions: {},
    results: [],
    attempts: {},
    tasksDone: [],
    lastChecks: [],
    hintsShown: 0,
    stepStartedAt: new Date().toISOString(),
  };
}

/** The choices in an order of this student's (the file often lists the answer first), the same each time. */
function order<T>(items: readonly T[], key: string): T[] {
  const rank = (i: number) => createHash('sha256').update(`${key}:${i}`).digest().readUInt32LE(0);
  return items
    .map((x, i) => ({ x, r: rank(i) }))
    .sort((a, b) => a.r - b.r)
    .map((e) => e.x);
}

function paragraphs(text: string): string[] {
  return text
    .split(/\n\s*\n/)
    .map((p) => p.replace(/\s*\n\s*/g, ' ').trim())
    .filter(Boolean);
}

function line(c: Check): CheckLine {
  return { expected: c.expected, passed: c.passed, seen: c.seen, ...(c.why ? { why: c.why } : {}), task: !!c.task };
}

export class InterimWalk {
  private s: WalkSaved;
  private busy: string | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly lab: Lab,
    private readonly instance: Instance,
    private readonly student: string,
    saved: WalkSaved | undefined,
    private readonly hooks: WalkHooks,
  ) {
    this.s = saved ? { ...saved } : freshWalk();
    // A restart in the middle of a step's commands, a check or the expectations: that step's work is not known,
    // and running its commands again could double them (a second iptables rule). The student goes on from there.
    if (this.s.phase === 'running' || this.s.phase === 'expecting') {
      this.s.phase = 'review';
      this.s.note = 'the server restarted while this step ran: its checks were not finished; continue with the next step';
    } else if (this.s.phase === 'checking') this.s.phase = 'task';
  }

  get saved(): WalkSaved {
    return this.s;
  }

  private get step(): Step | undefined {
    return this.lab.steps[this.s.stepIndex];
  }

  private get vars(): Record<string, string> {
    return this.instance.vars;
  }

  /** Begin (a new lab), or carry on where a restart left it. */
  begin(): void {
    if (this.s.phase === 'predict' && !this.step?.predict) this.serial(() => this.runStep());
    else this.emit();
  }

  private emit(): void {
    this.hooks.save(this.s);
    this.hooks.changed();
  }

  /** One intent at a time, in order; an intent that does not fit the phase is ignored (a double click). */
  intent(i: WalkIntent): Promise<void> {
    return this.serial(async () => {
      const step = this.step;
      if (!step) return;
      if (i.type === 'predict' && this.s.phase === 'predict' && step.predict) {
        const choice = this.choices(step).find((c) => c.key === i.choice);
        if (!choice) return;
        this.s.predictions[step.id] = { choice: choice.text, right: choice.text === step.predict.answer };
        await this.runStep();
      } else if (i.type === 'check' && this.s.phase === 'task' && step.task) await this.check(step);
      else if (i.type === 'hint' && this.s.phase === 'task' && step.task?.hints?.length) {
        this.s.hintsShown++;
        this.emit();
      } else if (i.type === 'solve' && this.s.phase === 'task' && step.task) await this.solve(step);
      else if (i.type === 'continue' && this.s.phase === 'review') this.next();
    });
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.running.then(fn).catch((e: unknown) => {
      // The engine failed in the middle (a look that timed out on a loaded host): back to where the student can
      // act again (the task, to check once more; or on to the next step), with what happened.
      this.busy = undefined;
      if (this.s.phase === 'checking') this.s.phase = 'task';
      else if (this.s.phase === 'running' || this.s.phase === 'expecting') this.s.phase = 'review';
      this.s.note = `something failed: ${(e as Error).message}`;
      this.emit();
    });
    this.running = run;
    return run;
  }

  private setBusy(text: string | undefined, phase?: Phase): void {
    this.busy = text;
    if (phase) this.s.phase = phase;
    this.emit();
  }

  private choices(step: Step): { key: string; text: string }[] {
    const texts = order(step.predict?.choices ?? [], `${this.student}:${this.lab.slug}:${step.id}`);
    return texts.map((text, i) => ({ key: String.fromCharCode(97 + i), text }));
  }

  private result(step: Step): StepResult {
    let r = this.s.results.find((x) => x.id === step.id);
    if (!r) {
      r = { id: step.id, title: step.title, checks: [], passed: true };
      this.s.results.push(r);
    }
    return r;
  }

  private async runStep(): Promise<void> {
    const step = this.step!;
    this.s.note = undefined;
    this.s.lastChecks = [];
    this.s.stepStartedAt = new Date().toISOString();
    this.s.hintsShown = 0;
    this.setBusy("running the step's commands…", 'running');
    this.instance.beginStep();
    const failed = await this.instance.runActions(step.id, step.run ?? []);
    const r = this.result(step);
    r.checks = failed ? [failed] : [];
    if (step.task && !failed) {
      this.setBusy(undefined, 'task');
      return;
    }
    await this.expectations(step);
  }

  private async check(step: Step): Promise<void> {
    this.setBusy('checking your work (as `lab check`)…', 'checking');
    const checks = await this.instance.checkTask(step.id, step.task!);
    const passed = checks.every((c) => c.passed);
    this.s.attempts[step.id] = (this.s.attempts[step.id] ?? 0) + 1;
    this.s.lastChecks = checks.map(line);
    if (!passed) {
      this.setBusy(undefined, 'task');
      return;
    }
    this.result(step).checks.push(...checks);
    this.s.tasksDone.push(step.id);
    await this.hooks.taskEnded({
      step,
      passed: true,
      solvedByTcplab: false,
      attempts: this.s.attempts[step.id]!,
      startedAt: Date.parse(this.s.stepStartedAt),
      endedAt: Date.now(),
    });
    await this.expectations(step);
  }

  private async solve(step: Step): Promise<void> {
    this.setBusy('doing it for you (the task counts as not done)…', 'checking');
    const failed = await this.instance.runActions(step.id, step.task!.solution ?? []);
    const checks = failed ? [failed] : await this.instance.checkTask(step.id, step.task!);
    // The solution's checks show what right looks like; they earn nothing.
    this.s.lastChecks = checks.map(line);
    this.result(step).checks.push(...checks.map((c) => ({ ...c, passed: false })));
    await this.hooks.taskEnded({
      step,
      passed: false,
      solvedByTcplab: true,
      attempts: this.s.attempts[step.id] ?? 0,
      startedAt: Date.parse(this.s.stepStartedAt),
      endedAt: Date.now(),
    });
    await this.expectations(step);
  }

  private async expectations(step: Step): Promise<void> {
    const r = this.result(step);
    if (step.expect?.length && !r.checks.some((c) => c.kind === 'command-failed')) {
      this.setBusy('watching ss for the expected states…', 'expecting');
      r.checks.push(...(await this.instance.waitFor(step.id, step.expect)));
    }
    r.passed = r.checks.every((c) => c.passed);
    this.s.lastChecks = [...this.s.lastChecks.filter((c) => c.task), ...r.checks.filter((c) => !c.task).map(line)];
    this.setBusy(undefined, 'review');
  }

  private next(): void {
    if (this.s.stepIndex >= this.lab.steps.length - 1) {
      this.s.phase = 'done';
      this.emit();
      return;
    }
    this.s.stepIndex++;
    this.s.phase = 'predict';
    this.s.lastChecks = [];
    this.s.stepStartedAt = new Date().toISOString();
    if (this.step?.predict) this.emit();
    else void this.serial(() => this.runStep());
  }

  score(): WalkScore {
    const checks = this.s.results.flatMap((r) => r.checks);
    return {
      predictions: {
        right: Object.values(this.s.predictions).filter((p) => p.right).length,
        asked: Object.keys(this.s.predictions).length,
      },
      checks: { met: checks.filter((c) => c.passed).length, total: checks.length },
      tasks: { done: this.s.tasksDone.length, total: this.lab.steps.filter((st) => st.task).length },
      steps: { done: this.s.phase === 'done' ? this.lab.steps.length : this.s.stepIndex, total: this.lab.steps.length },
    };
  }

  view(): WalkView {
    const step = this.step;
    const p = step ? this.s.predictions[step.id] : undefined;
    const reveal = this.s.phase === 'review' || this.s.phase === 'done';
    const hints = step?.task?.hints ?? [];
    const attempts = step ? (this.s.attempts[step.id] ?? 0) : 0;
    // One hint per failed check, and those asked for.
    const hintIndex = Math.min(Math.max(attempts, this.s.hintsShown), hints.length) - 1;
    const view: WalkView = {
      stepIndex: this.s.stepIndex,
      total: this.lab.steps.length,
      phase: this.s.phase,
      ...(this.busy ? { busy: this.busy } : {}),
      checks: this.s.lastChecks,
      attempts,
      ...(this.s.phase === 'task' && hintIndex >= 0 ? { hint: fill(hints[hintIndex]!, this.vars) } : {}),
      score: this.score(),
      ...(this.s.note ? { note: this.s.note } : {}),
      ...(this.s.phase === 'done' && this.lab.notes?.length ? { notes: this.lab.notes.map((n) => fill(n, this.vars)) } : {}),
    };
    if (step)
      view.step = {
        id: step.id,
        title: fill(step.title, this.vars),
        explain: paragraphs(fill(step.explain, this.vars)),
        ...(step.task ? { task: { prompt: paragraphs(fill(step.task.prompt, this.vars)), hints: hints.length } } : {}),
        ...(step.predict
          ? {
              predict: {
                question: fill(step.predict.question, this.vars),
                choices: this.choices(step).map((c) => ({ key: c.key, text: fill(c.text, this.vars) })),
                ...(p ? { chosen: this.choices(step).find((c) => c.text === p.choice)?.key ?? '' } : {}),
                ...(p && reveal
                  ? { answer: fill(step.predict.answer, this.vars), right: p.right, why: fill(step.predict.why, this.vars) }
                  : {}),
              },
            }
          : {}),
      };
    return view;
  }

  /** The step results so far, for the gradebook (src/grade/score.ts). */
  get results(): StepResult[] {
    return this.s.results;
  }
}
