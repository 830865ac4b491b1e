// One running lab instance: runs a step's actions in its containers, observes its nodes, and waits for
// expectations, polling until each settles. Emits typed events and never prints; the CLI decides how they look.
// Creating an instance is provision.ts; removing one is teardown.ts; a whole headless run is run-lab.ts.
import createDebug from 'debug';
import type { Action, Expectation, NodeName, Step, Task } from '../lab/schema.js';
import { parseDuration } from '../lab/duration.js';
import { expand } from '../lab/templates.js';
import type { Plan } from '../plan/plan.js';
import { shellQuote, withStdin } from '../plan/shell.js';
import type { ExecResult, Runtime } from '../runtime/runtime.js';
import { EngineError, LabError } from '../errors.js';
import { needsOf, observeArgs, OBSERVE_PROGRAM, parseObservation, type CommandStatus, type ObserveNeed } from '../observe/observation.js';
import {
  commandFailure,
  decide,
  evaluate,
  toCheck,
  type Check,
  type Evaluation,
  type NodeSnapshot,
  type Sample,
  type StepResult,
} from '../grade/grade.js';
import { throwIfAborted } from './abort.js';
import { realClock, type Clock } from './clock.js';
import type { EventSink } from './events.js';
import { retryTransient } from './retry.js';
import { MAX_ANSWER_BYTES, Sampler } from './sampler.js';
import { segmentArgs } from '../observe/segments.js';
import { LabRecorder } from '../trace/recorder.js';
import type { Timeline } from '../trace/timeline.js';
import { removeInstance, type Removed } from './teardown.js';
import { reportAnswer, startAnswer } from './answer.js';
import type { AnswerScript } from '../lab/answer-script.js';

/** A student's answer to one task (lab grade --submissions), in place of the task's solution. */
export interface StepAnswer {
  scripts: AnswerScript[];
  /** How long the answer's lines may run on each machine. */
  timeoutMs: number;
}

const log = createDebug('lab');
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
const OBSERVE_TIMEOUT_MS = 10_000;
/** Beyond a foreground command's own timeout: its kill-after second and the exec's round trip. */
const EXEC_SLACK_MS = 10_000;
const POLL_INTERVAL_MS = 20;
/** How long a stopped probe may take to exit. */
const PROBE_STOP_MS = 3000;

export interface InstanceOptions {
  image: string;
  emit?: EventSink;
  clock?: Clock;
  signal?: AbortSignal;
  /** Use this id instead of a random one (tests, and callers that register the id for cleanup first). */
  instance?: string;
  /** The instance outlives this process on purpose (lab start --keep): a stale sweep must leave it alone. */
  keep?: boolean;
  /** The user to label it with, if not the one running tcplab (a test playing another user's lab). */
  owner?: string;
  /** Who the lab is for: its variants ({{variant.port}}) are this student's (src/lab/variants.ts). */
  student?: string;
  /**
   * How often waits look (default 20 ms). Each look runs ss in the container: a class graded many labs at a
   * time on a small host looks less often, so that looking does not take the CPU the labs need.
   */
  pollIntervalMs?: number;
  /** Record segments in every node (default: unless TCPLAB_CAPTURE=0). Off, a look is cheaper; segment checks
   *  and ladders then see nothing. */
  capture?: boolean;
}

/** A lab command that failed (a mistyped rule, a command that hung): the step fails with it, on its node. */
class ActionFailed extends LabError {
  override name = 'ActionFailed';
  constructor(
    readonly node: NodeName,
    message: string,
  ) {
    super(message);
  }
}

const SIGNAL_WORDS: Record<NonNullable<Action['signal']>, string> = {
  INT: 'Ctrl-C in',
  TERM: 'kill (SIGTERM)',
  KILL: 'kill -9',
  HUP: 'close the terminal of',
};

export class Instance {
  readonly plan: Plan;
  private readonly emit: EventSink;
  private readonly clock: Clock;
  private readonly signal: AbortSignal | undefined;
  private readonly pollMs: number;
  /** Named foreground commands that have finished. */
  private readonly finished = new Map<string, CommandStatus>();
  /** Named background commands, with the command as shown to a person. */
  private readonly background = new Map<string, string>();
  /** One persistent observer per node, opened on the first look. */
  private readonly samplers = new Map<NodeName, Sampler>();
  private readonly onAbort = () => this.close();
  /** Segments, socket states and drop counters of every node on the kernel's clock, bounded (trace/recorder.ts). */
  readonly recorder: LabRecorder;
  /** Capture is read with every look unless TCPLAB_CAPTURE=0 (the benchmark's comparison, or a diagnosis). */
  readonly capture: boolean;
  /** Kernel time of the last look before the current step began: where its ladder and segment checks start. */
  private stepFrom: number | undefined;
  /** One look at a time per node: each look moves that node's capture cursor. */
  private readonly looks = new Map<NodeName, Promise<unknown>>();

  constructor(
    readonly runtime: Runtime,
    plan: Plan,
    opts: Omit<InstanceOptions, 'image' | 'instance' | 'keep' | 'owner' | 'student'>,
  ) {
    this.plan = plan;
    this.emit = opts.emit ?? (() => {});
    this.clock = opts.clock ?? realClock;
    // The run's signal is shared by every instance of the run (lab grade --parallel 64): each instance listens
    // on a signal of its own that follows it, so the listeners of its execs, looks and waits never pile up on
    // the shared one (Node warns past 10), and none of them outlives the instance.
    this.signal = opts.signal && AbortSignal.any([opts.signal]);
    this.pollMs = opts.pollIntervalMs ?? POLL_INTERVAL_MS;
    this.capture = opts.capture ?? process.env.TCPLAB_CAPTURE !== '0';
    this.recorder = new LabRecorder(plan.topology, Object.fromEntries(plan.nodes.map((n) => [n.key, n.interfaces.map((i) => i.ip)])));
    // On Ctrl-C the observers go at once: nothing of theirs may hold the process while the lab is removed.
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  get id(): string {
    return this.plan.instance;
  }

  get vars(): Record<string, string> {
    return this.plan.vars;
  }

  container(node: NodeName): string {
    const n = this.plan.nodes.find((x) => x.key === node);
    if (!n) throw new LabError(`this lab has no ${node}`);
    return n.name;
  }

  async exec(
    node: NodeName,
    argv: string[],
    opts: { timeoutMs?: number; env?: Record<string, string>; maxOutputBytes?: number } = {},
  ): Promise<ExecResult> {
    try {
      return await this.runtime.exec(this.container(node), argv, {
        timeoutMs: opts.timeoutMs ?? OBSERVE_TIMEOUT_MS,
        ...(this.signal ? { signal: this.signal } : {}),
        ...(opts.env ? { env: opts.env } : {}),
        ...(opts.maxOutputBytes ? { maxOutputBytes: opts.maxOutputBytes } : {}),
      });
    } catch (e) {
      throwIfAborted(this.signal, 'exec');
      if (e instanceof EngineError && /No such container|is not running|404|409/i.test(e.message)) {
        throw new EngineError(
          `the ${node} container (${this.container(node)}) is gone or stopped: ${e.message}`,
          'was it removed by hand? run `lab clean` and start the lab again',
          3,
        );
      }
      throw e;
    }
  }

  /** Run one action of a lab file; a failure is an ActionFailed on the action's node. */
  async runAction(action: Action): Promise<void> {
    throwIfAborted(this.signal, 'action');
    if (action.stop) {
      const signal = action.signal ?? 'INT';
      const what = this.background.get(action.stop) ?? action.stop;
      const r = await this.exec(action.on, ['tcplab-run', 'stop', action.stop, signal]);
      this.emit({
        type: 'action',
        node: action.on,
        display: `${SIGNAL_WORDS[signal]} \`${what}\``,
        typed: false,
        exitCode: r.exitCode,
        background: false,
      });
      if (r.exitCode !== 0) throw new ActionFailed(action.on, `could not stop ${action.stop} on ${action.on}: ${r.stderr.trim()}`);
      return;
    }
    const argv = action.run!.map((a) => expand(a, this.vars));
    const stdin = action.stdin === undefined ? undefined : expand(action.stdin, this.vars);
    const shown = shellQuote(argv);
    const display = stdin !== undefined ? withStdin(shown, stdin) : shown;
    const env = stdin !== undefined ? { TCPLAB_STDIN: stdin } : undefined;
    if (action.background) {
      const r = await this.exec(action.on, ['tcplab-run', 'start', action.name!, ...argv], env ? { env } : {});
      if (r.exitCode !== 0)
        throw new ActionFailed(action.on, `could not start ${display} on ${action.on}: ${(r.stderr || r.stdout).trim()}`);
      this.background.set(action.name!, shown);
      this.finished.delete(action.name!);
      this.emit({ type: 'action', node: action.on, display: `${display} &`, typed: true, background: true });
      return;
    }
    const timeoutMs = action.timeout ? parseDuration(action.timeout) : DEFAULT_COMMAND_TIMEOUT_MS;
    const secs = (timeoutMs / 1000).toFixed(3);
    const wrapped = env
      ? ['timeout', '-k', '1', secs, 'sh', '-c', 'printf "%s" "$TCPLAB_STDIN" | "$@"', 'sh', ...argv]
      : ['timeout', '-k', '1', secs, ...argv];
    // `timeout` in the container ends the command; the exec's own deadline only guards against an engine that
    // never answers, so it leaves room for the exec's round trip, seconds on a loaded machine (a 2 s command
    // given a 2 s exec deadline failed the lab instead of exiting 124).
    const r = await this.exec(action.on, wrapped, { timeoutMs: timeoutMs + EXEC_SLACK_MS, ...(env ? { env } : {}) });
    const output = (r.stdout + r.stderr).trimEnd();
    this.emit({ type: 'action', node: action.on, display, typed: true, exitCode: r.exitCode, output, background: false });
    if (action.name) {
      this.background.delete(action.name);
      this.finished.set(action.name, { running: false, exit: r.exitCode, output });
      return;
    }
    if (r.exitCode === 124) throw new ActionFailed(action.on, `${display} on ${action.on} did not finish within ${timeoutMs / 1000} s`);
    if (r.exitCode !== 0) throw new ActionFailed(action.on, `${display} failed on ${action.on} (exit ${r.exitCode}): ${output}`);
  }

  /**
   * Run actions in order. A lab command that fails ends them and comes back as a failed check on the node that
   * ran it; the lab goes on. Interrupts and engine failures go up.
   */
  async runActions(stepId: string, actions: Action[]): Promise<Check | undefined> {
    try {
      for (const a of actions) await this.runAction(a);
      // One look after them all, not one per action: a lab that makes both sides act at the same moment (a
      // simultaneous open or close) must get its commands back to back.
      if (actions.length) await this.afterActions();
      return undefined;
    } catch (e) {
      if (e instanceof ActionFailed) return commandFailure(stepId, e.node, e.message);
      throw e;
    }
  }

  /** One look at some nodes: sockets always, counters and command status where asked, and (with capture on)
   *  the segments each node recorded since its last look, which go to the recorder. */
  async observe(needs: Map<NodeName, ObserveNeed>): Promise<Map<NodeName, NodeSnapshot>> {
    const out = new Map<NodeName, NodeSnapshot>();
    await Promise.all(
      [...needs].map(async ([node, need]) => {
        const prev = this.looks.get(node) ?? Promise.resolve();
        const look = prev.catch(() => {}).then(() => this.lookAt(node, need));
        this.looks.set(node, look);
        out.set(node, await look);
      }),
    );
    return out;
  }

  private async lookAt(node: NodeName, need: ObserveNeed): Promise<NodeSnapshot> {
    const args = [
      ...observeArgs({ iptables: need.iptables, commands: new Set([...need.commands].filter((c) => this.background.has(c))) }),
      ...(this.capture ? segmentArgs(this.recorder.cursor(node)) : []),
    ];
    const s = await this.sampler(node).sample(args, { timeoutMs: OBSERVE_TIMEOUT_MS, ...(this.signal ? { signal: this.signal } : {}) });
    // Without a sampler, one exec per look; observing only reads, so a dropped connection or a 5xx from the
    // engine is safe to retry.
    // The same bound as the sampler's: a look is graded whole or not at all, never with its middle cut out.
    const r: Pick<ExecResult, 'exitCode' | 'stdout' | 'stderr' | 'cutBytes'> = s
      ? { exitCode: s.exitCode, stdout: s.text, stderr: 'ss failed' }
      : await retryTransient(() => this.exec(node, [OBSERVE_PROGRAM, ...args], { maxOutputBytes: MAX_ANSWER_BYTES }), {
          clock: this.clock,
          ...(this.signal ? { signal: this.signal } : {}),
          onRetry: (e, n) => log('observe %s: retry %d after %s', node, n, e.message),
        });
    if (r.exitCode !== 0) throw new EngineError(`could not observe ${node}: ${r.stderr.trim()}`);
    if (r.cutBytes?.stdout) throw new EngineError(`could not observe ${node}: it printed more than ${MAX_ANSWER_BYTES} bytes`);
    const obs = parseObservation(r.stdout);
    const rec = this.recorder.ingest(node, r.stdout, obs.sockets);
    if (rec.segments.length) this.emit({ type: 'segments', node, segments: rec.segments });
    return {
      node,
      at: this.clock.now(),
      sockets: obs.sockets,
      ...(rec.clock !== undefined ? { clock: rec.clock } : {}),
      ...(obs.counters ? { counters: obs.counters } : {}),
      commands: { ...Object.fromEntries(this.finished), ...obs.commands },
      ...(need.segments ? { segments: this.recorder.segmentsOf(node, this.stepFrom) } : {}),
    };
  }

  /** Every node, with the needs given for some of them; with capture on, a wait looks at every node, so that
   *  every capture is read and every state change recorded for the ladder. */
  private withEveryNode(needs: Map<NodeName, ObserveNeed>, iptables = false): Map<NodeName, ObserveNeed> {
    if (!this.capture) return needs;
    const all = new Map<NodeName, ObserveNeed>();
    for (const n of this.plan.nodes) {
      const need = needs.get(n.key);
      all.set(n.key, need ? { ...need, iptables: need.iptables || iptables } : { iptables, commands: new Set<string>() });
    }
    return all;
  }

  /** The step begins: its ladder and its segment checks start at the last look before it. */
  beginStep(): void {
    this.stepFrom = this.recorder.latestClock;
  }

  /** The current step's window on the kernel's clock (from undefined: since the lab began). */
  get stepWindow(): { from?: number; to?: number } {
    const to = this.recorder.latestClock;
    return { ...(this.stepFrom !== undefined ? { from: this.stepFrom } : {}), ...(to !== undefined ? { to } : {}) };
  }

  /** Everything recorded so far, joined (trace/timeline.ts). */
  timeline(): Timeline {
    return this.recorder.timeline();
  }

  /** With capture on, a look at every node after a step's commands, with the counters: the ladder then has the
   *  states they caused, and a drop in an OUTPUT chain (which capture cannot see) shows as its counter. */
  private async afterActions(): Promise<void> {
    if (!this.capture) return;
    await this.observe(this.withEveryNode(new Map(), true)).catch((e: unknown) => {
      throwIfAborted(this.signal, 'observe');
      log('look after an action: %s', (e as Error).message);
    });
  }

  /** Every node's sockets, now. */
  async observeAll(iptables = false): Promise<Map<NodeName, NodeSnapshot>> {
    return this.observe(new Map(this.plan.nodes.map((n) => [n.key, { iptables, commands: new Set<string>() }])));
  }

  /** Expectations against one look, without waiting: does each hold right now? */
  async evaluateNow(expectations: Expectation[]): Promise<{ e: Expectation; evaluation: Evaluation }[]> {
    const snaps = await this.observe(this.withEveryNode(needsOf(expectations)));
    return expectations.map((e) => ({ e, evaluation: evaluate(e, snaps.get(e.on)!, this.vars) }));
  }

  /** Poll until every expectation is settled; each becomes a check. */
  async waitFor(stepId: string, expectations: Expectation[], task = false): Promise<Check[]> {
    const start = this.clock.now();
    const pending = expectations.map((e) => ({ e, samples: [] as Sample[], check: undefined as Check | undefined }));
    const needs = this.withEveryNode(needsOf(expectations));
    while (pending.some((p) => !p.check)) {
      throwIfAborted(this.signal, 'wait');
      const before = this.clock.now();
      const snaps = await this.observe(needs);
      for (const p of pending) {
        if (p.check) continue;
        const snap = snaps.get(p.e.on)!;
        p.samples.push({ at: snap.at, evaluation: evaluate(p.e, snap, this.vars) });
        const d = decide(p.e, p.samples, start, snap.at);
        if (d.done) {
          p.check = toCheck(stepId, p.e, this.vars, d, start, task);
          p.samples.length = 0;
          this.emit({ type: 'check', check: p.check });
        }
      }
      const spent = this.clock.now() - before;
      if (pending.some((p) => !p.check) && spent < this.pollMs) await this.clock.sleep(this.pollMs - spent, this.signal);
    }
    return pending.map((p) => p.check!);
  }

  /**
   * Check a task against the live lab: its probe first (the connection a student would try through their rule),
   * then its expectations, then the probe's background commands stopped, so that the next step (or the next
   * check) starts from the student's work and not from the check's own traces. One function for every caller:
   * the walk's menu, `lab check` in another terminal, and the solution path of `lab grade`.
   */
  async checkTask(stepId: string, task: Task): Promise<Check[]> {
    const probe = task.probe ?? [];
    try {
      const failed = await this.runActions(stepId, probe);
      if (failed) return [{ ...failed, task: true }];
      return await this.waitFor(stepId, task.expect, true);
    } finally {
      if (!this.signal?.aborted) await this.stopAll(probe.filter((a) => a.background && a.name));
    }
  }

  /** Stop background commands at once (SIGKILL: their sockets go with them) and wait until each has exited. */
  private async stopAll(actions: Action[]): Promise<void> {
    await Promise.all(
      actions.map(async (a) => {
        await this.exec(a.on, ['tcplab-run', 'stop', a.name!, 'KILL']);
        const deadline = this.clock.now() + PROBE_STOP_MS;
        while (this.clock.now() < deadline) {
          const r = await this.exec(a.on, ['tcplab-run', 'status', a.name!]);
          if (!r.stdout.startsWith('running')) break;
          await this.clock.sleep(this.pollMs, this.signal);
        }
        this.background.delete(a.name!);
      }),
    );
  }

  /**
   * A step headless: its commands, its task done by the solution (unless told not to) or by a student's answer
   * (answer: the submission's lines for this task, none when it has none), its expectations.
   */
  async runStep(step: Step, index: number, opts: { solveTask?: boolean; answer?: StepAnswer } = {}): Promise<StepResult> {
    this.emit({ type: 'step', index, id: step.id, title: step.title, explain: step.explain });
    this.beginStep();
    const checks: Check[] = [];
    const failed = await this.runActions(step.id, step.run ?? []);
    if (failed) checks.push(failed);
    else {
      if (step.task && opts.answer) {
        const host = {
          exec: this.exec.bind(this),
          vars: this.vars,
          emit: this.emit,
          // Answers are background commands like any other: their status is read through the observer.
          status: async (node: NodeName, name: string) => {
            this.background.set(name, name);
            const snap = await this.observe(new Map([[node, { iptables: false, commands: new Set([name]) }]]));
            return snap.get(node)?.commands?.[name];
          },
        };
        const where = { id: step.id, index };
        // The observers must be open before the answer starts, so that the first look of the task's checks is
        // not the one that waits for a session (a task can be a lab's first step, right after bring-up).
        await Promise.all(this.plan.nodes.map((n) => this.sampler(n.key).open()));
        const unstarted = await startAnswer(host, where, opts.answer.scripts, opts.answer.timeoutMs);
        checks.push(
          ...(unstarted ? [commandFailure(step.id, unstarted.node, unstarted.message)] : await this.checkTask(step.id, step.task)),
        );
        await reportAnswer(host, where, opts.answer.scripts);
      } else if (step.task && opts.solveTask !== false) {
        const unsolved = await this.runActions(step.id, step.task.solution ?? []);
        checks.push(...(unsolved ? [unsolved] : await this.checkTask(step.id, step.task)));
      }
      if (step.expect?.length && !checks.some((c) => c.kind === 'command-failed'))
        checks.push(...(await this.waitFor(step.id, step.expect)));
    }
    const all = await this.observeAll(this.capture).catch(() => undefined);
    if (all) for (const [node, snap] of all) this.emit({ type: 'observed', node, sockets: snap.sockets });
    if (this.capture) this.emit({ type: 'ladder', index, id: step.id, timeline: this.timeline(), ...this.stepWindow });
    const result: StepResult = { id: step.id, title: step.title, checks, passed: checks.every((c) => c.passed) };
    this.emit({ type: 'step-done', result });
    return result;
  }

  /** Start opening every node's observer in the background. */
  warmUp(): void {
    for (const n of this.plan.nodes) void this.sampler(n.key).open();
  }

  private sampler(node: NodeName): Sampler {
    let s = this.samplers.get(node);
    if (!s) this.samplers.set(node, (s = new Sampler(this.runtime, this.container(node))));
    return s;
  }

  /** Close the persistent observers (they never keep the process alive, but a kept lab should not hold them). */
  close(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    for (const s of this.samplers.values()) s.close();
    this.samplers.clear();
  }

  async down(): Promise<Removed> {
    this.close();
    const removed = await removeInstance(this.runtime, this.id);
    this.emit({ type: 'teardown', instance: this.id, removed });
    return removed;
  }
}
