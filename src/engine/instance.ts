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
import { EngineError, InterruptedError, LabError } from '../errors.js';
import { needsOf, type ObserveNeed } from '../observe/observation.js';
import { AgentRefused, SIGNALS, type CommandStatus, type Look } from '../observe/agent-protocol.js';
import { WireError } from '../observe/wire.js';
import {
  commandFailure,
  decide,
  evaluate,
  toCheck,
  type Check,
  type Evaluation,
  type NodeSnapshot,
  type Quiet,
  type Sample,
  type StepResult,
  withinOf,
} from '../grade/grade.js';
import { throwIfAborted } from './abort.js';
import { realClock, type Clock } from './clock.js';
import type { EventSink } from './events.js';
import { AgentClient, AgentLost } from './agent-client.js';
import { LabRecorder } from '../trace/recorder.js';
import type { Timeline } from '../trace/timeline.js';
import { removeInstance, type Removed } from './teardown.js';
import { reportAnswer, startAnswer, type AnswerHost, type RunningAnswer } from './answer.js';
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
const POLL_INTERVAL_MS = 20;
/** A wait asks each node's agent to answer when something changed, or after this long at the latest. */
const LONG_POLL_MS = 250;
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

/** A machine of the lab stopped on its own (its agent, the node's main process, ended: out of memory, say), not
 *  removed by hand and not the engine failing: the lab cannot go on, and that is the lab's (or, in grading,
 *  the answer's) failure, not the engine's. */
class MachineStopped extends LabError {
  override name = 'MachineStopped';
  constructor(
    readonly node: NodeName,
    message: string,
  ) {
    super(message, 'a command or an answer used up what the machine has (memory, processes); `lab stop` and start again', 1);
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
  /** Named commands, as shown to a person (for "Ctrl-C in `nc -l 5555`"). */
  private readonly shown = new Map<string, string>();
  /** One session with each node's agent, opened on first use. */
  private readonly agents = new Map<NodeName, AgentClient>();
  /** Submitted answers still running (their streams stay open, as a terminal would). */
  private readonly answers: RunningAnswer[] = [];
  /** Per node, the agent's change token of the latest look: a long poll returns when it moves. */
  private readonly tokens = new Map<NodeName, bigint>();
  private readonly onAbort = () => this.close();
  /** Segments, socket states and drop counters of every node on the kernel's clock, bounded (trace/recorder.ts). */
  readonly recorder: LabRecorder;
  /** Capture is read with every look unless TCPLAB_CAPTURE=0 (the benchmark's comparison, or a diagnosis). */
  readonly capture: boolean;
  /** Kernel time of the last look before the current step began: where its ladder and segment checks start. */
  private stepFrom: number | undefined;
  /** While a task with a probe is checked: the last look before its probe, where its segment checks start. */
  private checkFrom: number | undefined;

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

  /** The session with a node's agent (opened on first use). */
  agent(node: NodeName): AgentClient {
    let a = this.agents.get(node);
    if (!a) {
      a = new AgentClient(this.runtime, this.container(node), node, this.signal ? { signal: this.signal } : {});
      this.agents.set(node, a);
    }
    return a;
  }

  /**
   * An agent that cannot be reached: say why, from what the engine knows of its container. Removed (by hand,
   * or by `lab stop` elsewhere): the engine's trouble, exit 3, as before. Stopped on its own: MachineStopped,
   * the lab's failure (an answer that used up the machine's memory fails its task; it is not "not gradable").
   * Still running: the engine's trouble (exit 3).
   */
  private async lost(node: NodeName, e: unknown): Promise<never> {
    throwIfAborted(this.signal, 'agent');
    if (e instanceof InterruptedError) throw e;
    const name = this.container(node);
    // A container being removed or killed still shows as running for a moment after its session broke: look
    // again for up to two seconds before calling it the engine's trouble.
    const until = performance.now() + 2000;
    for (;;) {
      let state: { Running?: boolean; Status?: string; ExitCode?: number; OOMKilled?: boolean } | undefined;
      try {
        state = ((await this.runtime.inspectContainer(name)) as { State?: typeof state } | undefined)?.State;
      } catch (err) {
        // The engine itself is gone: its own words (and what to do) say it best.
        if (!/No such container|404/i.test((err as Error).message)) throw err;
        throw new EngineError(
          `the ${node} container (${name}) is gone or stopped: ${(err as Error).message}`,
          'was it removed by hand? run `lab clean` and start the lab again',
          3,
        );
      }
      // Being removed (by hand, or `lab stop` elsewhere): gone, as if it were already.
      if (state && (state.Status === 'removing' || state.Status === 'dead'))
        throw new EngineError(
          `the ${node} container (${name}) is gone or stopped: it is being removed`,
          'was it removed by hand? run `lab clean` and start the lab again',
          3,
        );
      if (state && !state.Running) {
        const how = state.OOMKilled ? 'it ran out of memory' : `its main process exited (${state.ExitCode ?? '?'})`;
        throw new MachineStopped(node, `the ${node} machine stopped: ${how}`);
      }
      if (performance.now() >= until) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new EngineError(`${(e as Error).message}`, '`lab doctor` checks the engine; `lab stop` and start the lab again', 3);
  }

  /** Run one action of a lab file; a failure is an ActionFailed on the action's node. Lab commands run in the
   *  node through its agent, as the agent's user: nothing a student does in the node can touch them. */
  async runAction(action: Action): Promise<void> {
    throwIfAborted(this.signal, 'action');
    const agent = this.agent(action.on);
    if (action.stop) {
      const signal = action.signal ?? 'INT';
      const what = this.shown.get(action.stop) ?? action.stop;
      let refused: string | undefined;
      try {
        await agent.signal(action.stop, SIGNALS[signal]);
      } catch (e) {
        if (!(e instanceof AgentRefused)) await this.lost(action.on, e);
        refused = (e as Error).message;
      }
      this.emit({
        type: 'action',
        node: action.on,
        display: `${SIGNAL_WORDS[signal]} \`${what}\``,
        typed: false,
        exitCode: refused ? 1 : 0,
        background: false,
      });
      if (refused) throw new ActionFailed(action.on, `could not stop ${action.stop} on ${action.on}: ${refused}`);
      return;
    }
    const stdin = action.stdin === undefined ? undefined : expand(action.stdin, this.vars);
    // Typing into a background command's terminal; [tcplab-run, write, NAME] is how lab files said it before
    // the agent, and still works.
    const legacy = action.run?.length === 3 && action.run[0] === 'tcplab-run' && action.run[1] === 'write' ? action.run[2] : undefined;
    if (action.write !== undefined || legacy !== undefined) {
      const name = (action.write ?? legacy)!;
      const display = `(typed into \`${this.shown.get(name) ?? name}\`) ${JSON.stringify(stdin ?? '')}`;
      let refused: string | undefined;
      try {
        await agent.write(name, stdin ?? '');
      } catch (e) {
        if (!(e instanceof AgentRefused)) await this.lost(action.on, e);
        refused = (e as Error).message;
      }
      this.emit({ type: 'action', node: action.on, display, typed: true, exitCode: refused ? 1 : 0, background: false });
      if (refused) throw new ActionFailed(action.on, `could not type into ${name} on ${action.on}: ${refused}`);
      return;
    }
    const argv = action.run!.map((a) => expand(a, this.vars));
    const shown = shellQuote(argv);
    const display = stdin !== undefined ? withStdin(shown, stdin) : shown;
    if (action.background) {
      try {
        await agent.run({ name: action.name!, argv, background: true, ...(stdin !== undefined ? { stdin } : {}) });
      } catch (e) {
        if (!(e instanceof AgentRefused)) await this.lost(action.on, e);
        throw new ActionFailed(action.on, `could not start ${display} on ${action.on}: ${(e as Error).message}`);
      }
      this.shown.set(action.name!, shown);
      this.emit({ type: 'action', node: action.on, display: `${display} &`, typed: true, background: true });
      return;
    }
    const timeoutMs = action.timeout ? parseDuration(action.timeout) : DEFAULT_COMMAND_TIMEOUT_MS;
    let status;
    try {
      status = (
        await agent.run({
          argv,
          timeoutMs,
          ...(action.name ? { name: action.name } : {}),
          ...(stdin !== undefined ? { stdin } : {}),
        })
      ).status!;
    } catch (e) {
      if (!(e instanceof AgentRefused)) await this.lost(action.on, e);
      throw new ActionFailed(action.on, `could not start ${display} on ${action.on}: ${(e as Error).message}`);
    }
    const output = status.output.trimEnd();
    const exitCode = status.exit ?? -1;
    this.emit({ type: 'action', node: action.on, display, typed: true, exitCode, output, background: false });
    if (action.name) {
      this.shown.set(action.name, shown);
      return;
    }
    if (status.timedOut)
      throw new ActionFailed(
        action.on,
        `${display} on ${action.on} did not finish within ${timeoutMs / 1000} s${output ? `; it printed: ${output}` : ''}`,
      );
    if (exitCode !== 0) throw new ActionFailed(action.on, `${display} failed on ${action.on} (exit ${exitCode}): ${output}`);
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
   *  the segments each node recorded since the last look, which go to the recorder. */
  async observe(needs: Map<NodeName, ObserveNeed>): Promise<Map<NodeName, NodeSnapshot>> {
    const out = new Map<NodeName, NodeSnapshot>();
    await Promise.all([...needs].map(async ([node, need]) => out.set(node, await this.lookAt(node, need))));
    return out;
  }

  /**
   * One look at a node through its agent. waitMs: a long poll, answered as soon as something a check can see
   * changed there, or after waitMs. An answer that does not parse, or a session that broke, is a snapshot that
   * can tell nothing (`unknown`): its checks are not met by it, and the next look opens a new session. A
   * machine that stopped or went away ends the wait (see lost()).
   */
  private async lookAt(node: NodeName, need: ObserveNeed, waitMs = 0): Promise<NodeSnapshot> {
    const from = this.capture ? this.recorder.cursor(node) : undefined;
    const token = this.tokens.get(node);
    let look: Look;
    try {
      look = await this.agent(node).look({
        iptables: need.iptables,
        commands: need.commands,
        ...(from !== undefined ? { segmentsFrom: from } : {}),
        ...(waitMs > 0 && token !== undefined ? { waitMs, token } : {}),
        ...(need.runnable ? { runnable: true } : {}),
      });
    } catch (e) {
      if (e instanceof InterruptedError) throw e;
      if (e instanceof WireError || e instanceof AgentRefused) {
        log('look at %s: %s', node, (e as Error).message);
        return {
          node,
          at: this.clock.now(),
          sockets: [],
          unknown: `the answer of ${node}'s agent was not usable: ${(e as Error).message}`,
        };
      }
      if (e instanceof AgentLost && !e.opening) {
        // The session broke; if the machine is still there the next look opens another. Say "can't tell" now.
        const running = await this.runtime
          .inspectContainer(this.container(node))
          .then((i) => (i as { State?: { Running?: boolean } } | undefined)?.State?.Running === true)
          .catch(() => false);
        if (running) return { node, at: this.clock.now(), sockets: [], unknown: e.message };
      }
      return this.lost(node, e);
    }
    this.tokens.set(node, look.token);
    const rec = this.recorder.ingest(node, look, from);
    if (rec.segments.length) this.emit({ type: 'segments', node, segments: rec.segments });
    const segmentsFrom = this.checkFrom ?? this.stepFrom;
    const loss = need.segments
      ? this.capture
        ? this.recorder.lossSince(node, segmentsFrom)
        : 'capture is off in this run (TCPLAB_CAPTURE=0)'
      : undefined;
    const commands: Record<string, CommandStatus> = {};
    for (const [k, v] of Object.entries(look.commands)) if (v) commands[k] = v;
    return {
      node,
      at: this.clock.now(),
      sockets: look.sockets,
      clock: look.clock,
      ...(look.socketsError ? { unknown: `${node}'s sockets could not be read: ${look.socketsError}` } : {}),
      ...(look.counters ? { counters: look.counters } : {}),
      ...(need.iptables && look.countersError ? { countersError: look.countersError } : {}),
      ...(look.runnable !== undefined ? { runnable: look.runnable } : {}),
      commands,
      ...(need.segments ? { segments: this.recorder.segmentsOf(node, segmentsFrom) } : {}),
      ...(loss ? { segmentsLost: loss } : {}),
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

  /**
   * Wait until every expectation is settled; each becomes a check. The first look at every node is immediate;
   * after it, each node's agent is asked to answer when something changed there (a segment, a state, a
   * command's end) or after LONG_POLL_MS, and the expectations are judged again as each answer comes: a change
   * on one machine is seen within milliseconds, and an idle lab is looked at four times a second, not fifty.
   */
  async waitFor(stepId: string, expectations: Expectation[], task = false): Promise<Check[]> {
    const start = this.clock.now();
    const pending = expectations.map((e) => ({ e, samples: [] as Sample[], check: undefined as Check | undefined }));
    const needs = this.withEveryNode(needsOf(expectations));
    // A state that must last is judged only while every machine's own commands could run (decide()): then every
    // machine is looked at, and says how many of them wait for a CPU.
    const readings = new Map<NodeName, { at: number; runnable: number }[]>();
    if (expectations.some((e) => e.for))
      for (const n of this.plan.nodes)
        needs.set(n.key, { ...(needs.get(n.key) ?? { iptables: false, commands: new Set<string>() }), runnable: true });
    const quiet = quietOf(
      this.plan.nodes.map((n) => n.key),
      readings,
    );
    const inflight = new Map<NodeName, Promise<[NodeName, NodeSnapshot]>>();
    const lastAt = new Map<NodeName, number>();
    let fresh = await this.observe(needs);
    try {
      for (;;) {
        const now = this.clock.now();
        for (const [node, snap] of fresh) {
          const list = readings.get(node) ?? [];
          // A look that could tell nothing counts as one that saw them waiting.
          list.push({ at: snap.at, runnable: snap.unknown || snap.runnable === undefined ? 1 : snap.runnable });
          readings.set(node, list);
        }
        for (const p of pending) {
          if (p.check) continue;
          const snap = fresh.get(p.e.on);
          if (snap) p.samples.push({ at: snap.at, evaluation: evaluate(p.e, snap, this.vars) });
          const d = decide(p.e, p.samples, start, Math.max(now, snap?.at ?? 0), quiet);
          if (d.done) {
            p.check = toCheck(stepId, p.e, this.vars, d, start, task);
            p.samples.length = 0;
            this.emit({ type: 'check', check: p.check });
          }
        }
        if (pending.every((p) => p.check)) break;
        throwIfAborted(this.signal, 'wait');
        for (const n of fresh.keys()) lastAt.set(n, this.clock.now());
        // Never later than the nearest deadline of what is still pending, so that a check fails on time.
        const left = Math.min(...pending.filter((p) => !p.check).map((p) => start + withinOf(p.e) - this.clock.now()));
        const waitMs = Math.max(this.pollMs, Math.min(LONG_POLL_MS, left + this.pollMs));
        for (const [node, need] of needs) {
          if (inflight.has(node)) continue;
          // At most one look per poll interval and node, even when a node changes without pause.
          const gap = this.pollMs - (this.clock.now() - (lastAt.get(node) ?? 0));
          inflight.set(
            node,
            (gap > 0 ? this.clock.sleep(gap, this.signal) : Promise.resolve()).then(async () => [
              node,
              await this.lookAt(node, need, waitMs),
            ]),
          );
        }
        const [node, snap] = await Promise.race(inflight.values());
        inflight.delete(node);
        fresh = new Map([[node, snap]]);
      }
    } finally {
      // Looks still waiting on other nodes answer now: nothing waits for them any more.
      if (inflight.size) {
        await Promise.all(
          [...inflight.keys()].map((n) =>
            this.agent(n)
              .wake()
              .catch(() => {}),
          ),
        );
        await Promise.allSettled(inflight.values());
      }
    }
    await this.judgeWholeWindow(stepId, pending, needs, start, task);
    return pending.map((p) => p.check!);
  }

  /**
   * "No such segment" (count 0) and "at most N" are said of the whole window, not of its first moment: a check
   * polled from the start of an answer holds at once, before anything was sent. So once every check of the wait
   * is decided, those met are judged again against everything recorded until then (Lab 13: a rule on the client
   * itself lets the server's retransmissions reach the client's wire after the check first held).
   * A `last` window is judged again then too, whatever its count: "in the last 3s" means the last 3 s before the
   * verdict, one window for every check of the wait. Met at its first look, Lab 6's "the client's ACKs reach the
   * firewall" saw the handshake's ACK, while "none reach the server" was met seconds later, once that ACK had
   * left its window: two windows, and a pass with no rule (red team, fifth round, client-hoplimit-1).
   */
  private async judgeWholeWindow(
    stepId: string,
    pending: { e: Expectation; check: Check | undefined }[],
    needs: Map<NodeName, ObserveNeed>,
    start: number,
    task: boolean,
  ): Promise<void> {
    const bounded = pending.filter((p) => {
      const count = p.e.segments?.count;
      if (!p.check?.passed || !p.e.segments) return false;
      return p.e.segments.last !== undefined || (count !== undefined && (typeof count === 'number' || count.max !== undefined));
    });
    if (!bounded.length) return;
    const nodes = new Set(bounded.map((p) => p.e.on));
    const last = await this.observe(new Map([...needs].filter(([n]) => nodes.has(n))));
    for (const p of bounded) {
      const snap = last.get(p.e.on);
      if (!snap) continue;
      const evaluation = evaluate(p.e, snap, this.vars);
      if (evaluation.holds) continue;
      p.check = toCheck(
        stepId,
        p.e,
        this.vars,
        { done: true, passed: false, at: snap.at, sample: { at: snap.at, evaluation } },
        start,
        task,
      );
      this.emit({ type: 'check', check: p.check });
    }
  }

  /**
   * Check a task against the live lab: its probe first (the connection a student would try through their rule),
   * then its expectations, then the probe's background commands stopped, so that the next step (or the next
   * check) starts from the student's work and not from the check's own traces. One function for every caller:
   * the walk's menu, `lab check` in another terminal, and the solution path of `lab grade`.
   */
  async checkTask(stepId: string, task: Task): Promise<Check[]> {
    const probe = task.probe ?? [];
    // A task with a probe is graded on what the probe makes happen: its segment checks count from the probe on,
    // not from the step's start. What the student sent while trying things out (a SYN before the rule was in)
    // must not fail a right answer forever, nor can an answer's own traffic before the probe meet a check.
    if (probe.length && this.capture && task.expect.some((e) => e.segments)) {
      await this.observeAll().catch(() => undefined);
      this.checkFrom = this.recorder.latestClock;
    }
    try {
      const failed = await this.runActions(stepId, probe);
      // Not the step's commands: the check's own (its probe), which the student's work may have broken.
      if (failed) return [{ ...failed, expected: "lab check's own commands (the task's probe) succeed", task: true }];
      return await this.waitFor(stepId, task.expect, true);
    } finally {
      this.checkFrom = undefined;
      if (!this.signal?.aborted) await this.stopAll(probe.filter((a) => a.background && a.name));
    }
  }

  /** Stop background commands at once (SIGKILL to their process groups: their sockets go with them) and wait
   *  until each has exited. */
  private async stopAll(actions: Action[]): Promise<void> {
    await Promise.all(
      actions.map(async (a) => {
        const agent = this.agent(a.on);
        const r = await agent.signal(a.name!, SIGNALS.KILL).catch(() => ({ running: false }));
        const deadline = this.clock.now() + PROBE_STOP_MS;
        let running = r.running;
        while (running && this.clock.now() < deadline) {
          const look = await agent
            .look({ commands: [a.name!], waitMs: PROBE_STOP_MS, token: this.tokens.get(a.on) ?? 0n })
            .catch(() => undefined);
          if (!look) break;
          this.tokens.set(a.on, look.token);
          running = look.commands[a.name!]?.running === true;
        }
        this.shown.delete(a.name!);
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
        const host: AnswerHost = {
          startStudent: (node, argv) => this.runtime.openExec(this.container(node), argv),
          busy: async (node) =>
            (
              await this.agent(node)
                .look({ busy: true })
                .catch(() => undefined)
            )?.busy,
          sleep: (ms) => this.clock.sleep(ms, this.signal),
          now: () => this.clock.now(),
          vars: this.vars,
          emit: this.emit,
        };
        // The agents' sessions must be open before the answer starts, so that the first look of the task's
        // checks is not the one that waits for a session (a task can be a lab's first step, right after bring-up).
        await Promise.all(
          this.plan.nodes.map((n) =>
            this.agent(n.key)
              .open()
              .catch(() => {}),
          ),
        );
        const started = await startAnswer(host, opts.answer.scripts, opts.answer.timeoutMs);
        this.answers.push(...started.running);
        checks.push(
          ...(started.failed
            ? [commandFailure(step.id, started.failed.node, started.failed.message)]
            : await this.checkTask(step.id, step.task)),
        );
        reportAnswer(host, { id: step.id }, started.running);
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

  /** Start opening every node's agent session in the background. */
  warmUp(): void {
    for (const n of this.plan.nodes)
      void this.agent(n.key)
        .open()
        .catch(() => {});
  }

  /** Close the agent sessions and the answers' streams (they never keep the process alive, but a kept lab
   *  should not hold them). */
  close(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    for (const a of this.agents.values()) a.close();
    this.agents.clear();
    for (const a of this.answers) a.session.close();
    this.answers.length = 0;
  }

  async down(): Promise<Removed> {
    this.close();
    const removed = await removeInstance(this.runtime, this.id);
    this.emit({ type: 'teardown', instance: this.id, removed });
    return removed;
  }
}

/**
 * decide()'s question, from each machine's looks in time order: were the lab's own commands all off the run
 * queue from the last look at or before `from` to the first look at or after `to`, on every machine?
 */
export function quietOf(nodes: NodeName[], readings: Map<NodeName, { at: number; runnable: number }[]>): Quiet {
  return (from, to) => {
    for (const node of nodes) {
      const list = readings.get(node) ?? [];
      let first = -1;
      for (let k = 0; k < list.length && list[k]!.at <= from; k++) first = k;
      if (first < 0) return { busy: `${node} was not looked at before it began`, until: from };
      const last = list.findIndex((r) => r.at >= to);
      if (last < 0) return 'pending';
      for (let k = first; k <= last; k++) {
        const r = list[k]!;
        if (r.runnable > 0)
          return {
            busy: `${r.runnable} of the lab's own processes on ${node} ${r.runnable === 1 ? 'was' : 'were'} runnable (on a CPU or waiting for one), so what would end it may just not have run yet`,
            until: r.at,
          };
      }
    }
    return undefined;
  };
}
