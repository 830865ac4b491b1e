// What a student's walks leave on disk, so that other terminals (lab check, lab shell, lab status) find a running
// lab and its current step, `lab list` shows what was completed, `lab submit` finds what was typed, and a walk
// can be resumed where it was (a classroom server that restarts). Plain JSON files under one directory: for a
// student at their own terminal $XDG_STATE_HOME/tcplab (default ~/.local/state/tcplab; TCPLAB_STATE_DIR
// overrides, for tests), for a classroom server one directory per student.
//   running/<instance>.json        written by the walk that owns the instance (its step, plan and progress)
//   running/<instance>.check.json  written by `lab check` and the walk's Check (task attempts per step)
//   running/<instance>.ended.json  how the lab ended (finished, quit, interrupted, stopped), for a `lab shell`
//                                  whose machine went away; kept a day
//   progress.json                  per lab slug: best score, completed or not
//   work/<slug>.json               what the student typed in each task of that lab's last walk (lab submit)
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Plan } from '../plan/plan.js';
import type { TimelineEntry } from '../submit/record.js';

export function stateDir(): string {
  if (process.env.TCPLAB_STATE_DIR) return process.env.TCPLAB_STATE_DIR;
  const base = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'tcplab');
}

export interface RunningLab {
  instance: string;
  lab: { id: number; slug: string; title: string; file: string };
  /** host:pid of the process that owns it (`lab start`, or a classroom server). */
  owner: string;
  startedAt: string;
  /** Index into lab.steps of the step the student is on; -1 before the first. */
  stepIndex: number;
  stepId?: string;
  /** The instance's plan: container names and template values, for `lab check` in another process. */
  plan: Plan;
  keep: boolean;
  /** Whose variants the instance uses (lab start --student, TCPLAB_STUDENT, the login name). */
  student?: string;
  /** When the current step began (ISO): a task's commands are those typed from then on. */
  stepStartedAt?: string;
  /** Where the walk is within the step, and its score so far: what resuming it needs (src/walk/session.ts). */
  walk?: WalkProgress;
}

/** The walk's own progress, saved at each point where it waits for the student. */
export interface WalkProgress {
  /** What the step was waiting for: a prediction, the task, the menu after the step; running: its commands
   *  (or the rest of the step after the task) were under way. */
  phase: 'predict' | 'running' | 'task' | 'menu';
  /** The prediction's choice the student picked in this step (its text), once picked. */
  predicted?: string;
  /** Hints shown with "Show a hint" in this step's task. */
  hintsShown: number;
  /** The task's attempts (`lab check` and the walk's Check) the walk has already reported. */
  attemptsSeen?: number;
  /** The task of this step ended: done by the student (true) or by tcplab (false). */
  taskDone?: boolean;
  /** Whose order the prediction's choices come in (the shuffle's key). */
  user: string;
  score: Score;
}

interface TaskAttempt {
  attempts: number;
  passed: boolean;
  at: string;
  passedAt?: string;
}

/** step id -> attempts and whether one passed */
type TaskAttempts = Record<string, TaskAttempt>;

interface LabProgress {
  slug: string;
  completed: boolean;
  last: Score & { at: string };
  best?: Score & { at: string };
}

export interface Score {
  predictions: { right: number; asked: number };
  checks: { met: number; total: number };
  tasks: { done: number; total: number };
  steps: { done: number; total: number };
}

/** How a lab's run ended, told to the shells that were open in its machines. */
export interface EndedLab {
  instance: string;
  lab: { id: number; slug: string };
  how: 'finished' | 'quit' | 'interrupted' | 'stopped';
  at: string;
}

/** One task of a walk, as `lab submit` hands it in. */
export interface TaskWork {
  title: string;
  /** When the task's step began and when the task ended (its check passed, or the walk moved on): ISO. */
  startedAt: string;
  endedAt: string;
  passed: boolean;
  attempts: number;
  /** The student asked tcplab to do it (the menu's "Show me the solution"). */
  solvedByTcplab?: boolean;
  /** Per machine, in the order the student first used them: the command lines, addresses as templates (the
   *  older form of a hand-in; kept for the readers of it). */
  answer: { node: string; lines: string[] }[];
  /** Every command of the task on every machine, in the order they started, with how each ended: what `lab
   *  submit` hands in. Absent in a record of an older tcplab. */
  timeline?: TimelineEntry[];
}

/** What a student did in a lab's walk: the commands of each task, for `lab submit`. */
export interface LabWork {
  student?: string;
  lab: { id: number; slug: string; title: string; file: string; hash: string };
  tcplab: string;
  instance: string;
  updatedAt: string;
  tasks: Record<string, TaskWork>;
}

const ENDED_KEEP_MS = 24 * 3600_000;

function writeJson(path: string, value: unknown): void {
  mkdirSync(join(path, '..'), { recursive: true });
  // Write then rename, so a reader in another terminal never sees half a file.
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, path);
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * A score in words, leaving out what the lab has not counted (no prediction asked, no step's checks made):
 * "checks 0/0 met" reads as a verdict. The class page (src/serve/static/student.js) words it the same way.
 */
export function scoreWords(s: Score): string {
  const parts = [
    s.predictions.asked ? `predictions ${s.predictions.right}/${s.predictions.asked} right` : '',
    s.checks.total ? `checks ${s.checks.met}/${s.checks.total} met` : '',
    s.tasks.total ? `tasks ${s.tasks.done}/${s.tasks.total} done` : '',
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : 'nothing counted yet';
}

function total(s: Score): number {
  return s.predictions.right + s.checks.met + s.tasks.done;
}

/** One student's files, in one directory. */
export class StateFiles {
  constructor(readonly dir: string) {}

  private get runningDir(): string {
    return join(this.dir, 'running');
  }

  saveRunning(r: RunningLab): void {
    writeJson(join(this.runningDir, `${r.instance}.json`), r);
  }

  loadRunning(instance: string): RunningLab | undefined {
    return readJson<RunningLab>(join(this.runningDir, `${instance}.json`));
  }

  listRunning(): RunningLab[] {
    let names: string[];
    try {
      names = readdirSync(this.runningDir);
    } catch {
      return [];
    }
    return names
      .filter((n) => /^[a-z0-9]+\.json$/.test(n))
      .map((n) => readJson<RunningLab>(join(this.runningDir, n)))
      .filter((r): r is RunningLab => !!r && typeof r.instance === 'string');
  }

  /** Calls onChange when the files of this instance's walk are written or removed (inotify, nothing polled);
   *  returns the function that stops watching. A directory that cannot be watched gives a watch of nothing. */
  watchRunning(instance: string, onChange: () => void): () => void {
    try {
      mkdirSync(this.runningDir, { recursive: true });
      const w = watch(this.runningDir, (_event, name) => {
        if (name === null || String(name).startsWith(`${instance}.`)) onChange();
      });
      w.on('error', () => w.close());
      return () => w.close();
    } catch {
      return () => {};
    }
  }

  forgetRunning(instance: string): void {
    rmSync(join(this.runningDir, `${instance}.json`), { force: true });
    rmSync(join(this.runningDir, `${instance}.check.json`), { force: true });
  }

  recordEnded(e: Omit<EndedLab, 'at'>): void {
    // Old records are only of use to a shell that was open at the time: drop those older than a day.
    try {
      for (const n of readdirSync(this.runningDir).filter((x) => x.endsWith('.ended.json'))) {
        const path = join(this.runningDir, n);
        if (Date.now() - statSync(path).mtimeMs > ENDED_KEEP_MS) rmSync(path, { force: true });
      }
    } catch {
      // No directory yet: nothing to prune.
    }
    writeJson(join(this.runningDir, `${e.instance}.ended.json`), { ...e, at: new Date().toISOString() });
  }

  loadEnded(instance: string): EndedLab | undefined {
    return readJson<EndedLab>(join(this.runningDir, `${instance}.ended.json`));
  }

  loadAttempts(instance: string): TaskAttempts {
    return readJson<TaskAttempts>(join(this.runningDir, `${instance}.check.json`)) ?? {};
  }

  recordAttempt(instance: string, stepId: string, passed: boolean): TaskAttempt {
    const all = this.loadAttempts(instance);
    const prev = all[stepId] ?? { attempts: 0, passed: false, at: '' };
    const at = new Date().toISOString();
    // The first check that passed ends the task: what the student typed after it is not part of the answer.
    const passedAt = prev.passedAt ?? (passed ? at : undefined);
    const next = { attempts: prev.attempts + 1, passed: prev.passed || passed, at, ...(passedAt ? { passedAt } : {}) };
    all[stepId] = next;
    writeJson(join(this.runningDir, `${instance}.check.json`), all);
    return next;
  }

  private get progressFile(): string {
    return join(this.dir, 'progress.json');
  }

  loadProgress(): Record<string, LabProgress> {
    return readJson<Record<string, LabProgress>>(this.progressFile) ?? {};
  }

  saveProgress(slug: string, score: Score, completed: boolean): LabProgress {
    const all = this.loadProgress();
    const at = new Date().toISOString();
    const prev = all[slug];
    const last = { ...score, at };
    const best = !prev?.best || total(score) >= total(prev.best) ? last : prev.best;
    const entry: LabProgress = { slug, completed: completed || !!prev?.completed, last, best };
    all[slug] = entry;
    writeJson(this.progressFile, all);
    return entry;
  }

  private workFile(slug: string): string {
    return join(this.dir, 'work', `${slug}.json`);
  }

  loadWork(slug: string): LabWork | undefined {
    return readJson<LabWork>(this.workFile(slug));
  }

  /** The lab walked most recently that has recorded work. */
  latestWork(): LabWork | undefined {
    let names: string[];
    try {
      names = readdirSync(join(this.dir, 'work'));
    } catch {
      return undefined;
    }
    return names
      .filter((n) => /^[a-z][a-z0-9-]*\.json$/.test(n))
      .map((n) => readJson<LabWork>(join(this.dir, 'work', n)))
      .filter((w): w is LabWork => !!w && typeof w.updatedAt === 'string' && !!w.tasks)
      .sort((a, b) => b.updatedAt.localeCompare(a.updatedAt))[0];
  }

  /** Record one task of a walk. A new walk of the lab (another instance) starts a new record; tasks of the same
   *  walk add up. */
  saveTaskWork(base: Omit<LabWork, 'tasks' | 'updatedAt'>, stepId: string, task: TaskWork): LabWork {
    const prev = this.loadWork(base.lab.slug);
    const tasks = prev && prev.instance === base.instance ? prev.tasks : {};
    const work: LabWork = { ...base, updatedAt: new Date().toISOString(), tasks: { ...tasks, [stepId]: task } };
    writeJson(this.workFile(base.lab.slug), work);
    return work;
  }
}

/** The files of the student who runs this process (read anew each time: tests change TCPLAB_STATE_DIR). */
export function stateFiles(): StateFiles {
  return new StateFiles(stateDir());
}
