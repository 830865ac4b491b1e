// The walk through a lab, as one model that every view drives: the terminal's `lab start` (src/cli/interactive.ts)
// and the classroom server's page (src/serve/) are two renderers of it. It never prints and never prompts; it
// talks to the lab only through an Instance (src/engine/instance.ts) and, to notice a lab removed from outside,
// the runtime's container list.
//
// ## Using it
//
//   const relay = new EngineRelay();                  // the instance's events (the commands it runs) reach the walk
//   const instance = await createInstance(runtime, lab, { image, emit: relay.emit, student, signal });
//   const walk = new WalkSession({ lab, file, instance, relay, store, owner, user, student, command });
//   walk.on((event, state) => render(event, state));
//   await walk.start();                               // resolves when the walk waits for the student
//   await walk.send({ type: 'answer', key: 'b' });      // intents resolve when their work is done
//
// start() saves the walk's record (below), publishes `started`, and begins step 1. Every listener sees every
// event from the moment it is added; one added later reads `walk.state`, which always holds everything there
// is to show. walk.idle() resolves whenever the walk waits for the student again or has ended.
//
// ## State (walk.state: a plain, JSON-serialisable copy; WalkState below)
//
// - phase: 'predict' (waiting for a letter), 'task' (waiting for the student's work: check, hint, solve...),
//   'menu' (the step is done: next, observe, views, quit), 'busy' (doing something: `doing` says what; intents
//   are refused), 'ended' (`ended` says how: finished, quit, interrupted, gone).
// - choices: what the student can do now, each a label and the intent to send. Choices of type 'shell' are
//   for the view itself (the terminal runs `docker exec`, the page focuses its terminal): never send them.
// - step: the current step: explanation (templates filled in), the prediction (question, lettered choices in
//   this student's stable order, and once answered: chosen, right, answer, why), the commands shown as a person
//   would type them (actions), the task (prompt, hints shown, attempts, the last check), the step's checks, the
//   latest sockets (with `matters` on those the step is about), the ladder (text, and its window on the kernel
//   clock), the results of "observe again".
// - view: the latest rules or processes view asked for. score: predictions, checks, tasks, steps.
// - command: what the student types for tcplab where they are (`npx lab`, `lab`, `node bin/lab.js`), used in
//   every text that names a command; undefined for a page (no command line: labels say "Check my work").
//
// ## Intents (walk.send(intent); WalkIntent below)
//
// next (menu: the next step, or finish), answer {key} (predict: a letter), check (task: the same check as
// `lab check`, recorded as an attempt), hint (task: the next hint), solve (task: tcplab does it, the task counts
// as not done), observe (task or menu: sockets, ladder, and in the menu every expectation now), show {view:
// rules|processes|sockets|ladder} (task or menu), quit (any phase but busy). An intent that does not fit the
// phase, or comes while busy, is refused with a WalkRefused (a LabError, exit code 2) and changes nothing.
// walk.interrupt() ends the walk as interrupted (Ctrl-C); so does the `signal` option when it aborts. The
// model never removes a lab on interrupt: whoever owns the process does (the CLI's top-level handler).
//
// ## Events (walk.on(listener): listener(event, state); WalkEvent below)
//
// Each event is a plain object that says what just happened, in the order a terminal prints it; `state` is the
// state after it. Some come without an intent: a `lab check` from another terminal (task-checked by 'lab
// check', then the rest of the step), the lab removed from outside (ended, how 'gone', noticed within
// `presenceMs`, default 1 s, while the walk waits). A failure in such unasked-for work is kept and thrown by
// the next idle() (and send()).
//
// ## Persistence and resuming
//
// Everything lives in a StateFiles directory (src/walk/state-files.ts; one per student on a server):
// running/<instance>.json is the walk's record (RunningLab: lab, plan, step, owner, and `walk`: phase, prediction
// picked, hints shown, attempts seen, score), rewritten at every phase change; running/<instance> .check.json the
// task attempts (shared with `lab check`); work/<lab>.json what was typed in each task (for `lab submit`);
// progress.json each lab's last and best score, written when the walk ends. To continue a walk in a new process (a
// server that restarted): read the record (store.listRunning()), check the lab is still there, attach to it
// (attachInstance(runtime, record.plan, { emit: relay.emit })), and start a WalkSession with { ...options, record
// }: its start() continues instead of beginning. A walk waiting for a prediction asks again; one in a task or at
// the menu waits there again; one that was busy (the step's commands under way) resumes at its task or its menu,
// with the step's checks not made (step.resumed says so). What the Instance kept in memory (the ladder's segments,
// named commands' output) starts afresh. walk.detach() stops a walk without ending it (the record stays, the lab
// keeps running), for a server that shuts down.
import createDebug from 'debug';
import { Instance } from '../engine/instance.js';
import type { EventSink, LabEvent } from '../engine/events.js';
import { describeRemoved } from '../engine/teardown.js';
import { InterruptedError, LabError } from '../errors.js';
import { describeExpectation, type Check } from '../grade/grade.js';
import type { Lab, NodeName, Step } from '../lab/schema.js';
import { fill } from '../lab/templates.js';
import type { Socket } from '../observe/ss.js';
import { LABEL, type Plan } from '../plan/plan.js';
import type { Runtime } from '../runtime/runtime.js';
import { renderLadder } from '../report/ladder-text.js';
import { eventsIn } from '../trace/timeline.js';
import { captureTask } from './capture.js';
import { choiceKeys, shuffled } from './shuffle.js';
import type { RunningLab, Score, StateFiles, WalkProgress } from './state-files.js';
import { commandsIn, hintFor, processesOf, rulesOf, socketsThatMatter, type MachineOutput } from './views.js';

const log = createDebug('lab:walk');

/** What the walk needs of an Instance (tests give it a fake). */
export type WalkInstance = Pick<
  Instance,
  | 'id'
  | 'plan'
  | 'vars'
  | 'capture'
  | 'runtime'
  | 'runActions'
  | 'waitFor'
  | 'checkTask'
  | 'observeAll'
  | 'evaluateNow'
  | 'beginStep'
  | 'stepWindow'
  | 'timeline'
  | 'exec'
  | 'close'
  | 'down'
>;

export type WalkPhase = 'busy' | 'predict' | 'task' | 'menu' | 'ended';

export type WalkIntent =
  | { type: 'next' }
  | { type: 'answer'; key: string }
  | { type: 'check' }
  | { type: 'hint' }
  | { type: 'solve' }
  | { type: 'observe' }
  | { type: 'show'; view: 'rules' | 'processes' | 'sockets' | 'ladder' }
  | { type: 'quit' };

export interface WalkChoice {
  label: string;
  /** `shell` is the view's own: open a shell on that machine (never sent to the walk). */
  intent: WalkIntent | { type: 'shell'; node: NodeName };
}

/** A command of the lab (a step's, a check's probe, the solution), as a person would type it. */
export interface ShownAction {
  node: NodeName;
  display: string;
  /** Typed at a prompt (`client$ nc ...`), or something done to a program (`client: Ctrl-C in ...`). */
  typed: boolean;
  exitCode?: number;
  /** The last lines it printed. */
  output?: string;
  background: boolean;
  /** Which part of the step ran it. */
  during: 'step' | 'check' | 'solution';
}

export interface NodeSockets {
  node: NodeName;
  sockets: (Socket & { matters: boolean })[];
}

export interface LadderView {
  /** The step's window on the kernel's clock (ms); times in the text count from `from`. */
  from?: number;
  to?: number;
  /** The ladder as plain text (src/report/ladder-text.ts), `ladderWidth` columns wide. */
  text: string;
}

/** An expectation as it stands now (the menu's "observe again"). */
export interface ExpectationNow {
  expected: string;
  holds: boolean;
  seen: string[];
}

export interface TaskCheck {
  attempt: number;
  passed: boolean;
  /** Checked here (the Check choice), or by `lab check` in another terminal (its checks are not known here). */
  by: 'walk' | 'lab check';
  checks: Check[];
  /** The hint for this attempt, when it failed and the task has hints. */
  hint?: string;
}

export interface PredictionView {
  question: string;
  choices: { key: string; text: string }[];
  chosen?: string;
  right?: boolean;
  answer?: string;
  why?: string;
}

export interface TaskView {
  prompt: string;
  /** How many hints the task has, and those shown so far (by "Show a hint"). */
  hints: number;
  hintsShown: string[];
  attempts: number;
  lastCheck?: TaskCheck;
  /** How the task ended: done by the student, or by tcplab (the solution). */
  outcome?: 'done' | 'solution';
  /** Commands recorded for `lab submit` when the task ended. */
  recorded?: number;
}

export interface StepView {
  index: number;
  id: string;
  title: string;
  explain: string;
  prediction?: PredictionView;
  actions: ShownAction[];
  task?: TaskView;
  checks: Check[];
  sockets?: NodeSockets[];
  ladder?: LadderView;
  now?: ExpectationNow[];
  /** The walk was resumed in this step after its commands had started: its own checks were not made. */
  resumed?: boolean;
}

export interface WalkEnding {
  how: 'finished' | 'quit' | 'interrupted' | 'gone';
  completed: boolean;
  score: Score;
  /** Where Linux differs from the article (the lab's notes): when the lab was finished. */
  notes: string[];
  /** The lab was kept running (keep), or what was removed, in words. */
  kept?: boolean;
  removed?: string;
  /** For a lab that went away: what happened and what to do, in words. */
  message?: string;
  /** 0 done or quit, 1 checks missed or the lab gone, 130 interrupted. */
  exitCode: number;
}

export interface WalkState {
  lab: { id: number; slug: string; title: string; intro: string; steps: number };
  instance: string;
  student?: string;
  command?: string;
  machines: { node: NodeName; ips: string[] }[];
  phase: WalkPhase;
  /** While busy: what the walk is doing, in words. */
  doing?: string;
  step?: StepView;
  choices: WalkChoice[];
  view?: { kind: 'rules' | 'processes'; machines: MachineOutput[] };
  score: Score;
  ended?: WalkEnding;
}

export type WalkEvent =
  | { type: 'started' }
  | { type: 'step'; step: StepView }
  | { type: 'run' }
  | { type: 'action'; action: ShownAction }
  | { type: 'answered'; prediction: PredictionView }
  | { type: 'task'; task: TaskView }
  | { type: 'task-checked'; check: TaskCheck }
  | { type: 'hint'; n: number; of: number; text: string }
  | { type: 'solution' }
  | { type: 'recorded'; commands: number }
  | { type: 'watching'; nodes: NodeName[] }
  /** of 'step': the step's own look at its end; 'look': asked for. */
  | { type: 'sockets'; of: 'step' | 'look'; sockets: NodeSockets[] }
  | { type: 'ladder'; ladder: LadderView }
  | { type: 'checks'; of: 'step' | 'solution'; checks: Check[] }
  | { type: 'now'; results: ExpectationNow[] }
  | { type: 'revealed'; prediction: PredictionView }
  | { type: 'view'; kind: 'rules' | 'processes'; machines: MachineOutput[] }
  | { type: 'phase'; phase: WalkPhase }
  | { type: 'ended'; ending: WalkEnding };

export type WalkListener = (event: WalkEvent, state: WalkState) => void;

/** An intent that does not fit what the walk is doing. */
export class WalkRefused extends LabError {
  override name = 'WalkRefused';
}

/** Where an Instance's events go: give `emit` to createInstance (or new Instance), the relay to the walk. */
export class EngineRelay {
  private listener: EventSink | undefined;
  readonly emit: EventSink = (e) => this.listener?.(e);
  listen(fn: EventSink | undefined): void {
    this.listener = fn;
  }
}

/** An Instance for a lab that is up (made by another process, or before a restart), from its plan: its
 *  observers start opening at once, since the first look at a loaded machine takes a while. */
export function attachInstance(runtime: Runtime, plan: Plan, opts: { emit?: EventSink; signal?: AbortSignal } = {}): Instance {
  const instance = new Instance(runtime, plan, opts);
  instance.warmUp();
  return instance;
}

export interface WalkOptions {
  lab: Lab;
  /** The lab file's path: `lab check` in another process loads the lab from it; `lab submit` hashes it. */
  file: string;
  instance: WalkInstance;
  relay: EngineRelay;
  store: StateFiles;
  /** The process that owns the walk (host:pid, identity.processOwner()): `lab ui` tells a live walk by it. */
  owner: string;
  /** Whose order the predictions' choices come in: the same student sees the same order on every run. */
  user: string;
  /** The student id whose variants the instance uses, and who `lab submit` hands in for. */
  student?: string;
  /** Leave the lab running at the end (lab start --keep). */
  keep?: boolean;
  /** What the student types for tcplab where they are (invocation.ts: `npx lab`, `lab`); undefined on a page. */
  command?: string;
  /** Columns of the ladder's text (default 100). */
  ladderWidth?: number;
  /** Is the lab still there? Default: all of its machines are listed running by the runtime. */
  presence?: () => Promise<boolean>;
  presenceMs?: number;
  /** How often a task looks for a `lab check` made elsewhere (ms, default 300). */
  attemptsMs?: number;
  signal?: AbortSignal;
  /** A walk to continue: its record, as store.listRunning() or store.loadRunning(id) read it. */
  record?: RunningLab;
}

const MAX_ACTIONS = 100;
const OUTPUT_LINES = 20;

const blankScore = (lab: Lab): Score => ({
  predictions: { right: 0, asked: 0 },
  checks: { met: 0, total: 0 },
  tasks: { done: 0, total: lab.steps.filter((st) => st.task).length },
  steps: { done: 0, total: lab.steps.length },
});

/** Of a JSON-shaped value, a copy nobody else can change. */
function copy<T>(v: T): T {
  return structuredClone(v);
}

export class WalkSession {
  private readonly lab: Lab;
  private readonly instance: WalkInstance;
  private readonly store: StateFiles;
  private readonly listeners = new Set<WalkListener>();
  private readonly record: RunningLab;
  private progress: WalkProgress;
  private st: WalkState;
  private index = -1;
  /** The step's own commands failed: its expectations are not waited for. */
  private runFailed = false;
  private taskEnded = false;
  private attemptsSeen = 0;
  private during: ShownAction['during'] = 'step';
  private watchTimer: NodeJS.Timeout | undefined;
  private lastPresence = 0;
  private watching = false;
  private failure: unknown;
  private ending: Promise<void> | undefined;
  private begun = false;
  private idleWaiters: (() => void)[] = [];
  private readonly onAbort = () => void this.interrupt();

  constructor(private readonly opts: WalkOptions) {
    const record = opts.record;
    this.lab = opts.lab;
    this.instance = opts.instance;
    this.store = opts.store;
    const { lab, instance } = opts;
    this.progress = record?.walk ?? { phase: 'menu', hintsShown: 0, user: opts.user, score: blankScore(lab) };
    this.record = {
      ...(record ?? {
        instance: instance.id,
        lab: { id: lab.id, slug: lab.slug, title: lab.title, file: opts.file },
        startedAt: new Date().toISOString(),
        stepIndex: -1,
        plan: instance.plan,
      }),
      owner: opts.owner,
      keep: !!opts.keep,
      ...(opts.student ? { student: opts.student } : {}),
    };
    this.st = {
      lab: { id: lab.id, slug: lab.slug, title: lab.title, intro: lab.intro, steps: lab.steps.length },
      instance: instance.id,
      ...(opts.student ? { student: opts.student } : {}),
      ...(opts.command ? { command: opts.command } : {}),
      machines: instance.plan.nodes.map((n) => ({ node: n.key, ips: n.interfaces.map((i) => i.ip) })),
      phase: 'busy',
      doing: 'starting',
      choices: [],
      score: this.progress.score,
    };
    opts.relay.listen((e) => this.engineEvent(e));
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /**
   * Begin: a new walk saves its record and begins step 1; a resumed one (opts.record) continues where its
   * record says. Resolves when the walk waits for the student (or has ended).
   */
  async start(): Promise<void> {
    const record = this.opts.record;
    if (this.begun) throw new WalkRefused('the walk has begun already');
    this.begun = true;
    await this.guard(record ? 'resuming' : 'starting', async () => {
      if (!record) this.save();
      this.emit({ type: 'started' });
      if (record) await this.continueFrom(record);
      else await this.enterStep(0);
    });
  }

  get state(): WalkState {
    return copy(this.st);
  }

  on(listener: WalkListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when the walk waits for the student or has ended; throws what unasked-for work failed with. */
  async idle(): Promise<void> {
    while (this.st.phase === 'busy' && this.failure === undefined) await new Promise<void>((r) => this.idleWaiters.push(r));
    if (this.failure !== undefined) throw this.failure;
  }

  async send(intent: WalkIntent): Promise<void> {
    const phase = this.st.phase;
    const refuse = (why: string): never => {
      throw new WalkRefused(`${intent.type}: ${why}`);
    };
    if (phase === 'busy') return refuse(`the walk is busy (${this.st.doing ?? 'working'})`);
    if (phase === 'ended') return refuse('the walk has ended');
    const step = this.lab.steps[this.index]!;
    switch (intent.type) {
      case 'quit':
        return this.guard('quitting', () => this.quit());
      case 'answer': {
        if (phase !== 'predict') return refuse('there is no prediction to answer');
        const choice = this.st.step!.prediction!.choices.find((c) => c.key === intent.key.trim().toLowerCase());
        if (!choice)
          return refuse(`'${intent.key}' is not one of the letters ${this.st.step!.prediction!.choices.map((c) => c.key).join(', ')}`);
        return this.guard("running the step's commands", () => this.answer(choice.text));
      }
      case 'next':
        if (phase !== 'menu') return refuse('the step is not done yet');
        return this.guard(this.index === this.lab.steps.length - 1 ? 'finishing' : 'going on', () =>
          this.index === this.lab.steps.length - 1 ? this.end('finished') : this.enterStep(this.index + 1),
        );
      case 'check':
        if (phase !== 'task') return refuse('there is no task to check');
        return this.guard('checking your work', () => this.check(step));
      case 'hint':
        if (phase !== 'task' || !step.task?.hints?.length) return refuse('there is no hint here');
        return this.hint(step);
      case 'solve':
        if (phase !== 'task') return refuse('there is no task to solve');
        return this.guard('running the solution', () => this.solve(step));
      case 'observe':
        if (phase !== 'task' && phase !== 'menu') return refuse('nothing to observe before the prediction is answered');
        return this.guard('looking at every machine', () => this.observe(step, phase));
      case 'show':
        if (phase !== 'task' && phase !== 'menu') return refuse('nothing to show before the prediction is answered');
        return this.guard(`showing the ${intent.view}`, () => this.show(step, phase, intent.view));
      default:
        return refuse('not an intent the walk knows');
    }
  }

  /** Ctrl-C, or a closed terminal: the walk ends as interrupted (the lab is the caller's to remove). */
  async interrupt(): Promise<void> {
    if (this.st.phase === 'ended') return;
    if (this.st.phase === 'busy') {
      // The work under way stops with the instance's signal and ends the walk itself; without a signal (a
      // prompt's Ctrl-C never is one), end it as soon as that work is done.
      await this.idle().catch(() => {});
      if (this.phase === 'ended') return;
    }
    await this.end('interrupted');
  }

  /** Stop without ending: the record stays and the lab keeps running, to be resumed by another process. */
  detach(): void {
    this.stopWatching();
    this.opts.relay.listen(undefined);
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    this.instance.close();
  }

  // ---- inside ----

  private emit(event: WalkEvent): void {
    const state = this.state;
    for (const l of this.listeners) {
      try {
        l(event, state);
      } catch (e) {
        log('a listener failed: %s', (e as Error).message);
      }
    }
  }

  /** The phase now (read again after an await: it may have changed meanwhile). */
  private get phase(): WalkPhase {
    return this.st.phase;
  }

  private get vars(): Record<string, string> {
    return this.instance.vars;
  }

  /** Prose from the lab file for the student: templates filled in, commands as they can type them. */
  private text(prose: string): string {
    return commandsIn(fill(prose, this.vars), this.opts.command);
  }

  private setPhase(phase: WalkPhase, doing?: string): void {
    this.st.phase = phase;
    if (doing) this.st.doing = doing;
    else delete this.st.doing;
    this.st.choices = this.choices();
    if (phase === 'busy') this.stopWatching();
    else {
      if (phase !== 'ended') this.startWatching();
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
    this.emit({ type: 'phase', phase });
  }

  /** The student is to act: say so, save where the walk is, and watch for what comes from outside. */
  private wait(phase: 'predict' | 'task' | 'menu'): void {
    this.progress.phase = phase;
    this.save();
    this.setPhase(phase);
  }

  /** Run one piece of work as busy; a lab gone from under it ends the walk, an interrupt too. */
  private async guard(doing: string, work: () => Promise<void>): Promise<void> {
    const beginning = doing === 'starting' || doing === 'resuming';
    if (this.st.phase === 'busy' && !beginning) throw new WalkRefused(`busy (${this.st.doing})`);
    const before = this.st.phase;
    this.setPhase('busy', doing);
    try {
      await work();
    } catch (e) {
      if (this.opts.signal?.aborted || e instanceof InterruptedError) {
        if (this.st.phase !== 'ended') await this.end('interrupted').catch(() => {});
        throw e;
      }
      if (this.st.phase !== 'ended' && !(await this.present())) {
        log('the lab went away during %s: %s', doing, (e as Error).message);
        await this.end('gone');
        return;
      }
      // Back to where the walk was, so that the student can try again.
      if (this.st.phase === 'busy') this.setPhase(before === 'busy' ? 'menu' : before);
      throw e;
    }
  }

  /** Work that nobody asked for (a `lab check` elsewhere, the lab gone): its failure goes to the next idle(). */
  private background(doing: string, work: () => Promise<void>): void {
    this.guard(doing, work).catch((e: unknown) => {
      this.failure = e;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    });
  }

  private async present(): Promise<boolean> {
    try {
      if (this.opts.presence) return await this.opts.presence();
      const labels = { [LABEL.managed]: 'true', [LABEL.instance]: this.instance.id };
      const cs = await this.instance.runtime.listContainers(labels);
      const names = new Set(cs.filter((c) => !c.state || c.state === 'running').map((c) => c.name));
      return this.instance.plan.nodes.every((n) => names.has(n.name));
    } catch (e) {
      // The engine cannot say (unreachable for a moment): not a reason to end a student's walk.
      log('presence: %s', (e as Error).message);
      return true;
    }
  }

  private startWatching(): void {
    if (this.watchTimer) return;
    const attemptsMs = this.opts.attemptsMs ?? 300;
    const presenceMs = this.opts.presenceMs ?? 1000;
    this.lastPresence = Date.now();
    this.watchTimer = setInterval(() => void this.look(presenceMs), Math.min(attemptsMs, presenceMs));
    this.watchTimer.unref();
  }

  private stopWatching(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
  }

  /** While the walk waits: a `lab check` from another terminal, and whether the lab is still there. */
  private async look(presenceMs: number): Promise<void> {
    if (this.watching || this.st.phase === 'busy' || this.st.phase === 'ended') return;
    this.watching = true;
    try {
      if (this.st.phase === 'task') {
        const step = this.lab.steps[this.index]!;
        const a = this.store.loadAttempts(this.instance.id)[step.id];
        if (a && a.attempts > this.attemptsSeen) {
          this.attemptsSeen = a.attempts;
          this.progress.attemptsSeen = a.attempts;
          const hint = a.passed ? undefined : hintFor(step, a.attempts);
          const check: TaskCheck = {
            attempt: a.attempts,
            passed: a.passed,
            by: 'lab check',
            checks: [],
            ...(hint ? { hint: this.text(hint) } : {}),
          };
          this.st.step!.task!.attempts = a.attempts;
          this.st.step!.task!.lastCheck = check;
          this.emit({ type: 'task-checked', check });
          if (a.passed) this.background('going on after your check', () => this.endTask(step, 'done'));
          else this.save();
          return;
        }
      }
      if (Date.now() - this.lastPresence >= presenceMs) {
        this.lastPresence = Date.now();
        if (!(await this.present()) && this.phase !== 'busy' && this.phase !== 'ended')
          this.background('noticing the lab is gone', () => this.end('gone'));
      }
    } finally {
      this.watching = false;
    }
  }

  private save(): void {
    this.record.walk = { ...this.progress, score: this.st.score };
    try {
      this.store.saveRunning(this.record);
    } catch (e) {
      // A read-only state directory must not stop a walk: other terminals just cannot find it.
      log('cannot save the walk: %s', (e as Error).message);
    }
  }

  private engineEvent(e: LabEvent): void {
    if (e.type !== 'action' || !this.st.step) return;
    const lines = e.output?.split('\n');
    const action: ShownAction = {
      node: e.node,
      display: e.display,
      typed: e.typed,
      ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}),
      ...(lines && e.output ? { output: lines.slice(-OUTPUT_LINES).join('\n') } : {}),
      background: e.background,
      during: this.during,
    };
    const list = this.st.step.actions;
    list.push(action);
    if (list.length > MAX_ACTIONS) list.splice(0, list.length - MAX_ACTIONS);
    this.emit({ type: 'action', action });
  }

  private predictionOf(step: Step, user: string): PredictionView | undefined {
    if (!step.predict) return undefined;
    const order = shuffled(step.predict.choices, `${user}:${this.lab.slug}:${step.id}`);
    const keys = choiceKeys(order.length);
    return { question: this.text(step.predict.question), choices: order.map((text, i) => ({ key: keys[i]!, text })) };
  }

  private taskOf(step: Step): TaskView | undefined {
    if (!step.task) return undefined;
    return { prompt: this.text(step.task.prompt), hints: step.task.hints?.length ?? 0, hintsShown: [], attempts: 0 };
  }

  private stepView(step: Step, index: number): StepView {
    const prediction = this.predictionOf(step, this.progress.user);
    return {
      index,
      id: step.id,
      title: step.title,
      explain: this.text(step.explain),
      ...(prediction ? { prediction } : {}),
      actions: [],
      checks: [],
    };
  }

  /**
   * A step begins when the student moves on to it: one look first, so that what the machines did while the
   * student sat at the previous menu (retransmissions, a timer that fired) belongs to the previous step, and this
   * step's ladder counts its time from now (from the answer, when the step asks for a prediction first).
   */
  private async enterStep(index: number): Promise<void> {
    const step = this.lab.steps[index]!;
    await this.beginStepNow();
    this.index = index;
    this.runFailed = false;
    this.taskEnded = false;
    this.attemptsSeen = this.store.loadAttempts(this.instance.id)[step.id]?.attempts ?? 0;
    delete this.st.view;
    this.record.stepIndex = index;
    this.record.stepId = step.id;
    this.record.stepStartedAt = new Date().toISOString();
    this.progress = {
      phase: step.predict ? 'predict' : 'running',
      hintsShown: 0,
      attemptsSeen: this.attemptsSeen,
      user: this.progress.user,
      score: this.st.score,
    };
    this.st.step = this.stepView(step, index);
    this.emit({ type: 'step', step: copy(this.st.step) });
    if (step.predict) return this.wait('predict');
    this.save();
    await this.runStep(step);
  }

  /** The step's window begins here: one look first, so that what came before belongs to what came before. */
  private async beginStepNow(): Promise<void> {
    if (this.instance.capture) await this.instance.observeAll(true).catch((e: unknown) => this.lookFailed(e));
    this.instance.beginStep();
  }

  private lookFailed(e: unknown): void {
    if (this.opts.signal?.aborted || e instanceof InterruptedError) throw e;
    log('a look failed: %s', (e as Error).message);
  }

  private async answer(text: string): Promise<void> {
    const step = this.lab.steps[this.index]!;
    const p = this.st.step!.prediction!;
    p.chosen = p.choices.find((c) => c.text === text)!.key;
    this.progress.predicted = text;
    this.progress.phase = 'running';
    this.st.score.predictions.asked++;
    this.save();
    this.emit({ type: 'answered', prediction: copy(p) });
    // The step's commands start now. What came on the wire while the student thought (a retransmission of the
    // previous step's) is not this step's: its ladder and its segment checks count from here, as in grading,
    // where nobody predicts, so that a check that counts segments does not count the student's thinking time.
    await this.beginStepNow();
    await this.runStep(step);
  }

  private async runStep(step: Step): Promise<void> {
    if (step.run?.length) this.emit({ type: 'run' });
    this.during = 'step';
    const failed = await this.instance.runActions(step.id, step.run ?? []);
    if (failed) {
      this.runFailed = true;
      this.st.step!.checks.push(failed);
    }
    if (step.task) {
      this.st.step!.task = this.taskOf(step)!;
      this.st.step!.task.attempts = this.attemptsSeen;
      this.emit({ type: 'task', task: copy(this.st.step!.task) });
      return this.wait('task');
    }
    await this.finishStep(step);
  }

  /** After the commands (and the task): the expectations, the machines' sockets, the ladder, the checks, the
   *  prediction's answer; then the menu. */
  private async finishStep(step: Step): Promise<void> {
    const view = this.st.step!;
    if (step.expect?.length && !this.runFailed) {
      this.emit({ type: 'watching', nodes: [...new Set(step.expect.map((e) => e.on))] });
      view.checks.push(...(await this.instance.waitFor(step.id, step.expect)));
    }
    const sockets = await this.sockets([...(step.expect ?? []), ...(step.task?.expect ?? [])]).catch((e: unknown) => this.lookFailed(e));
    if (sockets) this.emit({ type: 'sockets', of: 'step', sockets });
    const ladder = this.ladder();
    if (ladder) this.emit({ type: 'ladder', ladder });
    if (view.checks.length) this.emit({ type: 'checks', of: 'step', checks: copy(view.checks) });
    const score = this.st.score;
    score.checks.total += view.checks.length;
    score.checks.met += view.checks.filter((c) => c.passed).length;
    if (step.predict && view.prediction?.chosen !== undefined) {
      const p = view.prediction;
      const chosen = p.choices.find((c) => c.key === p.chosen)!.text;
      p.right = chosen === step.predict.answer;
      p.answer = step.predict.answer;
      p.why = this.text(step.predict.why);
      if (p.right) score.predictions.right++;
      this.emit({ type: 'revealed', prediction: copy(p) });
    }
    score.steps.done++;
    this.wait('menu');
  }

  /** Every machine's sockets now, those these expectations are about marked. */
  private async sockets(expectations: Step['expect'] & object): Promise<NodeSockets[]> {
    const observed = await this.instance.observeAll(this.instance.capture);
    const matters = socketsThatMatter(expectations, this.vars);
    const order = ['client', 'firewall', 'server'];
    const sockets = [...observed]
      .sort(([a], [b]) => order.indexOf(a) - order.indexOf(b))
      .map(([node, snap]) => ({ node, sockets: snap.sockets.map((s) => ({ ...s, matters: matters(node, s) })) }));
    this.st.step!.sockets = sockets;
    return copy(sockets);
  }

  /** The step's segments and states as a ladder; undefined when the step put nothing on the wire. */
  private ladder(): LadderView | undefined {
    if (!this.instance.capture) return undefined;
    const t = this.instance.timeline();
    const { from, to } = this.instance.stepWindow;
    if (eventsIn(t, from, to).length === 0) return undefined;
    const text = renderLadder(t, {
      width: this.opts.ladderWidth ?? 100,
      ...(from !== undefined ? { from } : {}),
      ...(to !== undefined ? { to } : {}),
      maxRows: 40,
    });
    const ladder: LadderView = { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), text };
    this.st.step!.ladder = ladder;
    return copy(ladder);
  }

  private async check(step: Step): Promise<void> {
    this.during = 'check';
    const checks = await this.instance.checkTask(step.id, step.task!);
    const passed = checks.every((c) => c.passed);
    const rec = this.store.recordAttempt(this.instance.id, step.id, passed);
    this.attemptsSeen = rec.attempts;
    this.progress.attemptsSeen = rec.attempts;
    const hint = passed ? undefined : hintFor(step, rec.attempts);
    const check: TaskCheck = { attempt: rec.attempts, passed, by: 'walk', checks, ...(hint ? { hint: this.text(hint) } : {}) };
    const task = this.st.step!.task!;
    task.attempts = rec.attempts;
    task.lastCheck = check;
    this.emit({ type: 'task-checked', check: copy(check) });
    if (passed) return this.endTask(step, 'done');
    this.wait('task');
  }

  private async hint(step: Step): Promise<void> {
    const hints = step.task!.hints!;
    const k = Math.min(this.progress.hintsShown, hints.length - 1);
    const text = this.text(hints[k]!);
    this.progress.hintsShown++;
    const task = this.st.step!.task!;
    if (!task.hintsShown.includes(text)) task.hintsShown.push(text);
    this.emit({ type: 'hint', n: k + 1, of: hints.length, text });
    this.save();
    this.st.choices = this.choices();
  }

  private async solve(step: Step): Promise<void> {
    this.emit({ type: 'solution' });
    this.during = 'solution';
    const failed = await this.instance.runActions(step.id, step.task!.solution ?? []);
    const checks = failed ? [failed] : await this.instance.checkTask(step.id, step.task!);
    this.emit({ type: 'checks', of: 'solution', checks });
    await this.endTask(step, 'solution');
  }

  /** The task ended (done, solved by tcplab, or the student leaves): what was typed is saved for `lab submit`. */
  private async endTask(step: Step, how: 'done' | 'solution' | 'quit'): Promise<void> {
    this.taskEnded = true;
    const task = this.st.step!.task!;
    const tried = this.store.loadAttempts(this.instance.id)[step.id];
    const startedAt = Date.parse(this.record.stepStartedAt ?? '') || Date.now();
    const endedAt = tried?.passedAt ? Date.parse(tried.passedAt) : Date.now();
    const work = await captureTask(
      {
        lab: this.lab,
        file: this.opts.file,
        instance: this.instance,
        store: this.store,
        ...(this.opts.student ? { student: this.opts.student } : {}),
      },
      step,
      { startedAt, endedAt },
      { passed: how === 'done', attempts: tried?.attempts ?? 0, ...(how === 'solution' ? { solvedByTcplab: true } : {}) },
    ).catch((e: unknown) => {
      log('could not record the task: %s', (e as Error).message);
      return undefined;
    });
    if (work) {
      task.recorded = work.timeline?.length ?? work.answer.reduce((k, a) => k + a.lines.length, 0);
      this.emit({ type: 'recorded', commands: task.recorded });
    }
    if (how === 'quit') return;
    task.outcome = how;
    this.progress.taskDone = how === 'done';
    if (how === 'done') this.st.score.tasks.done++;
    this.progress.phase = 'running';
    this.save();
    await this.finishStep(step);
  }

  private async observe(step: Step, phase: 'task' | 'menu'): Promise<void> {
    const expectations = phase === 'task' ? step.task!.expect : [...(step.expect ?? []), ...(step.task?.expect ?? [])];
    this.emit({ type: 'sockets', of: 'look', sockets: await this.sockets(expectations) });
    const ladder = this.ladder();
    if (ladder) this.emit({ type: 'ladder', ladder });
    if (phase === 'menu' && expectations.length) {
      const results = (await this.instance.evaluateNow(expectations)).map((r) => ({
        expected: describeExpectation(r.e, this.vars, { timing: false }),
        holds: r.evaluation.holds,
        seen: r.evaluation.seen,
      }));
      this.st.step!.now = results;
      this.emit({ type: 'now', results: copy(results) });
    }
    this.setPhase(phase);
  }

  private async show(step: Step, phase: 'task' | 'menu', view: 'rules' | 'processes' | 'sockets' | 'ladder'): Promise<void> {
    if (view === 'sockets') {
      const expectations = phase === 'task' ? step.task!.expect : [...(step.expect ?? []), ...(step.task?.expect ?? [])];
      this.emit({ type: 'sockets', of: 'look', sockets: await this.sockets(expectations) });
    } else if (view === 'ladder') {
      if (this.instance.capture) await this.instance.observeAll(false).catch((e: unknown) => this.lookFailed(e));
      const ladder = this.ladder();
      if (ladder) this.emit({ type: 'ladder', ladder });
    } else {
      const machines = view === 'rules' ? await rulesOf(this.instance) : await processesOf(this.instance);
      this.st.view = { kind: view, machines };
      this.emit({ type: 'view', kind: view, machines: copy(machines) });
    }
    this.setPhase(phase);
  }

  private async quit(): Promise<void> {
    const step = this.lab.steps[this.index];
    if (step?.task && this.progress.phase === 'task' && !this.taskEnded) await this.endTask(step, 'quit');
    await this.end('quit');
  }

  private async continueFrom(record: RunningLab): Promise<void> {
    const index = record.stepIndex;
    if (index < 0 || index >= this.lab.steps.length) {
      this.save();
      return this.enterStep(0);
    }
    const step = this.lab.steps[index]!;
    this.instance.beginStep();
    this.index = index;
    this.attemptsSeen = record.walk?.attemptsSeen ?? 0;
    const view = this.stepView(step, index);
    this.st.step = view;
    const p = this.progress;
    if (view.prediction && p.predicted !== undefined) {
      view.prediction.chosen = view.prediction.choices.find((c) => c.text === p.predicted)?.key;
      if (view.prediction.chosen === undefined) delete view.prediction.chosen;
    }
    this.emit({ type: 'step', step: copy(view) });
    if (p.phase === 'predict' && step.predict) return this.wait('predict');
    const taskOpen = !!step.task && p.taskDone === undefined;
    if (step.task) {
      view.task = this.taskOf(step)!;
      view.task.attempts = this.attemptsSeen;
      const hints = step.task.hints ?? [];
      for (let k = 0; k < Math.min(p.hintsShown, hints.length); k++) view.task.hintsShown.push(this.text(hints[k]!));
      if (!taskOpen) view.task.outcome = p.taskDone ? 'done' : 'solution';
      this.taskEnded = !taskOpen;
    }
    if (p.phase === 'running') view.resumed = true;
    if (taskOpen) {
      this.emit({ type: 'task', task: copy(view.task!) });
      return this.wait('task');
    }
    this.wait('menu');
  }

  /** The end (once, whoever asks first). */
  private end(how: WalkEnding['how']): Promise<void> {
    this.ending ??= this.finish(how);
    return this.ending;
  }

  /** The score kept, the record dropped (or kept with the lab), the lab removed unless kept. */
  private async finish(how: WalkEnding['how']): Promise<void> {
    this.stopWatching();
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    const { lab, store, instance } = this;
    const score = this.st.score;
    const completed = how === 'finished' && score.checks.met === score.checks.total && score.tasks.done === score.tasks.total;
    try {
      store.saveProgress(lab.slug, score, completed);
    } catch (e) {
      log('cannot save the progress: %s', (e as Error).message);
    }
    const kept = !!this.opts.keep && (how === 'finished' || how === 'quit');
    const ending: WalkEnding = {
      how,
      completed,
      score: copy(score),
      notes: how === 'finished' ? (lab.notes ?? []).map((n) => this.text(n)) : [],
      exitCode: how === 'interrupted' ? 130 : how === 'quit' || completed ? 0 : 1,
    };
    try {
      if (!kept) store.forgetRunning(instance.id);
      else this.save();
      // Shells open in this lab's machines (other terminals) end with it: tell them why.
      if (how !== 'gone' && !kept) store.recordEnded({ instance: instance.id, lab: { id: lab.id, slug: lab.slug }, how });
    } catch (e) {
      log('cannot update the state files: %s', (e as Error).message);
    }
    if (how === 'gone') ending.message = await this.gone();
    else if (kept) {
      instance.close();
      ending.kept = true;
    } else if (how !== 'interrupted') {
      try {
        ending.removed = describeRemoved(await instance.down());
      } catch (e) {
        instance.close();
        throw e;
      }
    } else instance.close();
    this.opts.relay.listen(undefined);
    this.st.ended = ending;
    this.setPhase('ended');
    this.emit({ type: 'ended', ending: copy(ending) });
  }

  /** The lab was removed from outside: what is left of it goes (only this lab's), and the student is told. */
  private async gone(): Promise<string> {
    const { lab, instance } = this;
    const cmd = this.opts.command;
    const ended = this.store.loadEnded(instance.id);
    const by = ended?.how === 'stopped' ? 'by `lab stop`' : 'from outside this walk';
    let left = '';
    try {
      const removed = await instance.down();
      if (removed.containers + removed.networks > 0) left = ` What was left of it is removed (${describeRemoved(removed)}).`;
    } catch (e) {
      instance.close();
      log('removing what is left: %s', (e as Error).message);
      left = cmd ? ` \`${cmd} stop ${instance.id}\` removes what is left of it (only this lab).` : '';
    }
    const again = cmd ? ` \`${cmd} start ${lab.id}\` starts the lab again.` : ' Start the lab again to go on.';
    return `Lab ${lab.id}'s machines were removed ${by} (instance ${instance.id}), so the walk cannot go on.${left}${again}`;
  }

  private choices(): WalkChoice[] {
    const phase = this.st.phase;
    const step = this.lab.steps[this.index];
    const cmd = this.opts.command;
    const machines: WalkChoice[] = this.instance.plan.nodes.map((n) => ({
      label: `Open a shell on the ${n.key}`,
      intent: { type: 'shell', node: n.key },
    }));
    const tools: WalkChoice[] = [
      { label: 'Show the rules in effect (iptables -S, -L -vn)', intent: { type: 'show', view: 'rules' } },
      { label: 'Show the processes (ps)', intent: { type: 'show', view: 'processes' } },
    ];
    const quit: WalkChoice = {
      label: cmd ? 'Quit (removes the lab unless --keep)' : this.opts.keep ? 'Quit (the lab keeps running)' : 'Quit (removes the lab)',
      intent: { type: 'quit' },
    };
    if (phase === 'predict')
      return (this.st.step?.prediction?.choices ?? []).map((c) => ({ label: c.text, intent: { type: 'answer', key: c.key } }));
    if (phase === 'task')
      return [
        { label: cmd ? `Check my work (same as \`${cmd} check\`)` : 'Check my work', intent: { type: 'check' } },
        ...(step?.task?.hints?.length ? [{ label: 'Show a hint', intent: { type: 'hint' } } as const] : []),
        ...machines,
        ...tools,
        { label: 'Observe (ss on every machine)', intent: { type: 'observe' } },
        { label: 'Show me the solution and do it for me (the task counts as not done)', intent: { type: 'solve' } },
        quit,
      ];
    if (phase === 'menu')
      return [
        { label: this.index === this.lab.steps.length - 1 ? 'Finish the lab' : 'Continue to the next step', intent: { type: 'next' } },
        { label: 'Observe again (ss on every machine, expectations now)', intent: { type: 'observe' } },
        ...machines,
        ...tools,
        quit,
      ];
    return [];
  }
}
