// Runs a plan against a Runtime: creates one lab instance, runs steps, observes, waits, tears down.
// Emits typed events and never prints; the CLI decides how they look.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import createDebug from 'debug';
import type { Action, Expectation, Lab, NodeName, Step } from '../lab/schema.js';
import { parseDuration } from '../lab/duration.js';
import { expand, LABEL, NODE_SECURITY, overlaps, planLab, subnetAt, SUBNET_POOL, type Plan } from '../plan/plan.js';
import { networksOf } from '../plan/topology.js';
import { SubnetTakenError, type ExecResult, type Runtime } from '../runtime/runtime.js';
import { EngineError, InterruptedError, LabError } from '../errors.js';
import { parseSs } from '../observe/ss.js';
import { parseIptablesSave } from '../observe/iptables.js';
import {
  decide,
  evaluate,
  summarize,
  toCheck,
  type Check,
  type CommandStatus,
  type LabResult,
  type NodeSnapshot,
  type Sample,
  type StepResult,
} from '../grade/grade.js';
import { realClock, type Clock, type EventSink } from './events.js';
import { retryTransient } from './retry.js';
import { MAX_ANSWER_BYTES, Sampler } from './sampler.js';

const log = createDebug('lab');
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
const OBSERVE_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 20;

export interface InstanceOptions {
  image: string;
  emit?: EventSink;
  clock?: Clock;
  signal?: AbortSignal;
  /** Use this id instead of a random one (tests). */
  instance?: string;
  /** The instance outlives this process on purpose (lab start --keep): a stale sweep must leave it alone. */
  keep?: boolean;
}

export function newInstanceId(): string {
  return randomBytes(4).toString('hex');
}

/** Labels that let `lab clean` tell whose instance this is and whether its process is still alive. */
export function ownerLabels(): Record<string, string> {
  return { [LABEL.pid]: `${hostname()}:${process.pid}`, [LABEL.created]: new Date().toISOString() };
}

function throwIfAborted(signal: AbortSignal | undefined, where: string): void {
  if (signal?.aborted) {
    log('aborted during %s', where);
    throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
  }
}

/** Pick free /24s from the pool, skipping every subnet the engine already has. */
export function pickSubnets(used: string[], count: number, start: number): string[] {
  const picked: string[] = [];
  for (let k = 0; k < SUBNET_POOL.count && picked.length < count; k++) {
    const candidate = subnetAt(start + k);
    if (!used.some((u) => overlaps(u, candidate)) && !picked.includes(candidate)) picked.push(candidate);
  }
  if (picked.length < count) {
    throw new LabError(
      'no free subnet left in 198.18.0.0/15 for a new lab',
      'remove old labs with `lab clean`, or networks of your own in that range',
    );
  }
  return picked;
}

export async function createInstance(runtime: Runtime, lab: Lab, opts: InstanceOptions): Promise<Instance> {
  const emit = opts.emit ?? (() => {});
  const clock = opts.clock ?? realClock;
  const t0 = clock.now();
  const id = opts.instance ?? newInstanceId();
  const topology = lab.topology ?? 'direct';
  const netCount = networksOf(topology).length;
  const labels = { ...ownerLabels(), ...(opts.keep ? { [LABEL.keep]: 'true' } : {}) };
  let plan: Plan | undefined;
  const instance = () => new Instance(runtime, plan!, opts);
  try {
    throwIfAborted(opts.signal, 'start');
    // Networks first. Another process may take the same subnet at the same moment: the engine refuses the
    // second one, and we try the next free subnets.
    const used = await runtime.usedSubnets();
    let start = Math.floor(Math.random() * SUBNET_POOL.count);
    for (let attempt = 0; ; attempt++) {
      const subnets = pickSubnets(used, netCount, start);
      plan = planLab({ lab, instance: id, image: opts.image, subnets, labels });
      const created: string[] = [];
      try {
        throwIfAborted(opts.signal, 'network creation');
        // In parallel (the routed topology has two); allSettled so that cleanup knows every one that exists.
        const nets = await Promise.allSettled(
          plan.networks.map(async (net) => {
            await runtime.createNetwork({
              name: net.name,
              subnet: net.subnet,
              gateway: net.gateway,
              internal: true,
              labels: net.labels,
              options: net.options,
            });
            created.push(net.name);
            emit({ type: 'network', name: net.name, subnet: net.subnet });
          }),
        );
        const failedNet = nets.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failedNet) throw failedNet.reason;
        break;
      } catch (e) {
        await Promise.all(created.map((n) => runtime.removeNetwork(n).catch(() => {})));
        if (!(e instanceof SubnetTakenError) || attempt >= 20) throw e;
        log('subnet taken (%s), trying others', e.message);
        used.push(...subnets);
        start = Math.floor(Math.random() * SUBNET_POOL.count);
      }
    }
    const p = plan;
    // allSettled, not all: on a failure the other nodes' calls must finish before cleanup lists what exists.
    const settled = await Promise.allSettled(
      p.nodes.map(async (node) => {
        throwIfAborted(opts.signal, 'container creation');
        const [first, ...rest] = node.interfaces;
        await runtime.createContainer({
          name: node.name,
          hostname: node.hostname,
          image: node.image,
          cmd: node.cmd,
          labels: node.labels,
          network: { name: first!.networkName, ip: first!.ip },
          sysctls: node.sysctls,
          capAdd: [...NODE_SECURITY.capAdd],
          capDrop: [...NODE_SECURITY.capDrop],
          securityOpt: [...NODE_SECURITY.securityOpt],
          readOnlyRootfs: NODE_SECURITY.readOnlyRootfs,
          tmpfs: { ...NODE_SECURITY.tmpfs },
          memoryBytes: NODE_SECURITY.memoryBytes,
          pidsLimit: NODE_SECURITY.pidsLimit,
        });
        for (const iface of rest) await runtime.connectNetwork(node.name, iface.networkName, iface.ip);
        throwIfAborted(opts.signal, 'container start');
        await runtime.startContainer(node.name);
        // Wiring and routes (plan.ts); for a routed lab the tunnels need both ends, but each end can be
        // configured on its own: packets only flow once both are up, before any step runs.
        // All of a node's setup in one exec: each exec costs a round trip of create, attach, start and inspect
        // (60-100 ms), and a routed node has three commands.
        if (node.setup.length) {
          const res = await runtime.exec(node.name, setupScript(node.setup), { timeoutMs: OBSERVE_TIMEOUT_MS });
          if (res.exitCode !== 0)
            throw new EngineError(`could not set up the network on ${node.key}: ${(res.stderr || res.stdout).trim()}`);
        }
        emit({ type: 'node', node: node.key, name: node.name, ips: node.interfaces.map((i) => i.ip) });
      }),
    );
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    throwIfAborted(opts.signal, 'start');
    emit({ type: 'ready', instance: id, ms: clock.now() - t0 });
    const ready = instance();
    // Open the persistent observers now, without waiting, so the first look of the first step is not slower.
    ready.warmUp();
    return ready;
  } catch (e) {
    // Nothing half-built stays behind: remove whatever this instance created, by its label.
    await removeInstance(runtime, id).catch((err) => log('cleanup after failed start: %s', (err as Error).message));
    throw e;
  }
}

/** Remove every container and network of one instance (or, with no id, of every instance). */
export async function removeInstance(runtime: Runtime, id?: string): Promise<number> {
  // The signal handler, a failed start and runLab's own teardown can all remove the same instance at once.
  // Calls for one id run one after another, and each does a full pass: a container whose create was in
  // flight during the first pass is found by the next one.
  const key = id ?? '';
  const prev = removals.get(key) ?? Promise.resolve(0);
  const run = prev.catch(() => 0).then(() => removeOnce(runtime, id));
  removals.set(key, run);
  try {
    return await run;
  } finally {
    if (removals.get(key) === run) removals.delete(key);
  }
}

const removals = new Map<string, Promise<number>>();

async function removeOnce(runtime: Runtime, id?: string): Promise<number> {
  const labels: Record<string, string> = { [LABEL.managed]: 'true', ...(id ? { [LABEL.instance]: id } : {}) };
  const containers = await runtime.listContainers(labels);
  await Promise.all(containers.map((c) => runtime.removeContainer(c.name)));
  const networks = await runtime.listNetworks(labels);
  let removed = containers.length;
  await Promise.all(
    networks.map(async (n) => {
      // Another process (or a create that was in flight) may still have a container on it: remove those
      // containers too and try again, for a few seconds at most.
      for (let attempt = 0; ; attempt++) {
        try {
          await runtime.removeNetwork(n.name);
          removed++;
          return;
        } catch (e) {
          if (attempt >= 20 || !/active endpoints/i.test((e as Error).message)) throw e;
          log('network %s still has endpoints; removing its containers again', n.name);
          for (const c of await runtime.listContainers(labels)) {
            await runtime.removeContainer(c.name);
            removed++;
          }
          await realClock.sleep(Math.min(50 * (attempt + 1), 500));
        }
      }
    }),
  );
  return removed;
}

/** A node's setup commands (planner output, never lab text) as one `sh -c` in the container; the first that
 *  fails stops it and is named on stderr. */
export function setupScript(setup: string[][]): string[] {
  const run = 'run() { "$@" || { rc=$?; echo "($*) exited $rc" >&2; exit "$rc"; }; }';
  return ['sh', '-c', [run, ...setup.map((argv) => `run ${displayCommand(argv)}`)].join('\n')];
}

/** Shell-style quoting, only for showing a command to a person; commands themselves run as argv. */
export function displayCommand(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_./:=,@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export class Instance {
  readonly plan: Plan;
  private readonly emit: EventSink;
  private readonly clock: Clock;
  private readonly signal: AbortSignal | undefined;
  /** Named foreground commands that have finished, and the names that run in the background. */
  private readonly finished = new Map<string, CommandStatus>();
  private readonly background = new Set<string>();
  /** One persistent observer per node, opened on the first look. */
  private readonly samplers = new Map<NodeName, Sampler>();

  constructor(
    readonly runtime: Runtime,
    plan: Plan,
    opts: InstanceOptions,
  ) {
    this.plan = plan;
    this.emit = opts.emit ?? (() => {});
    this.clock = opts.clock ?? realClock;
    // The run's signal is shared by every instance of the run (lab grade --parallel 64): each instance listens
    // on a signal of its own that follows it, so the listeners of its execs, looks and waits never pile up on
    // the shared one (Node warns past 10), and none of them outlives the instance.
    this.signal = opts.signal && AbortSignal.any([opts.signal]);
    // On Ctrl-C the observers go at once: nothing of theirs may hold the process while the lab is removed.
    this.signal?.addEventListener('abort', this.closeOnAbort, { once: true });
  }

  private readonly closeOnAbort = () => this.close();

  get id(): string {
    return this.plan.instance;
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

  async runAction(action: Action): Promise<void> {
    throwIfAborted(this.signal, 'action');
    if (action.stop) {
      const display = `stop ${action.stop} (SIG${action.signal ?? 'INT'})`;
      const r = await this.exec(action.on, ['tcplab-run', 'stop', action.stop, action.signal ?? 'INT']);
      this.emit({ type: 'action', node: action.on, display, exitCode: r.exitCode, background: false });
      if (r.exitCode !== 0) throw new LabError(`could not stop ${action.stop} on ${action.on}: ${r.stderr.trim()}`);
      return;
    }
    const argv = action.run!.map((a) => expand(a, this.plan.vars));
    const display = displayCommand(argv) + (action.stdin !== undefined ? `  <<< ${JSON.stringify(action.stdin)}` : '');
    const env = action.stdin !== undefined ? { TCPLAB_STDIN: action.stdin } : undefined;
    if (action.background) {
      const r = await this.exec(action.on, ['tcplab-run', 'start', action.name!, ...argv], env ? { env } : {});
      if (r.exitCode !== 0) throw new LabError(`could not start ${display} on ${action.on}: ${(r.stderr || r.stdout).trim()}`);
      this.background.add(action.name!);
      this.finished.delete(action.name!);
      this.emit({ type: 'action', node: action.on, display: `${display} &`, background: true });
      return;
    }
    const timeoutMs = action.timeout ? parseDuration(action.timeout) : DEFAULT_COMMAND_TIMEOUT_MS;
    const secs = (timeoutMs / 1000).toFixed(3);
    const wrapped = env
      ? ['timeout', '-k', '1', secs, 'sh', '-c', 'printf "%s" "$TCPLAB_STDIN" | "$@"', 'sh', ...argv]
      : ['timeout', '-k', '1', secs, ...argv];
    const r = await this.exec(action.on, wrapped, { timeoutMs, ...(env ? { env } : {}) });
    const output = (r.stdout + r.stderr).trimEnd();
    this.emit({ type: 'action', node: action.on, display, exitCode: r.exitCode, output, background: false });
    if (action.name) {
      this.background.delete(action.name);
      this.finished.set(action.name, { running: false, exit: r.exitCode, output });
      return;
    }
    if (r.exitCode === 124) throw new LabError(`${display} on ${action.on} did not finish within ${timeoutMs / 1000} s`);
    if (r.exitCode !== 0) throw new LabError(`${display} failed on ${action.on} (exit ${r.exitCode}): ${output}`);
  }

  /** One look at some nodes: sockets always, counters and command status where asked. */
  async observe(needs: Map<NodeName, { iptables: boolean; commands: Set<string> }>): Promise<Map<NodeName, NodeSnapshot>> {
    const out = new Map<NodeName, NodeSnapshot>();
    await Promise.all(
      [...needs].map(async ([node, need]) => {
        const argv = ['tcplab-observe'];
        if (need.iptables) argv.push('--iptables');
        for (const c of need.commands) if (this.background.has(c)) argv.push('--command', c);
        const s = await this.sampler(node).sample(argv.slice(1), {
          timeoutMs: OBSERVE_TIMEOUT_MS,
          ...(this.signal ? { signal: this.signal } : {}),
        });
        // Without a sampler, one exec per look; observing only reads, so a dropped connection or a 5xx from the
        // engine is safe to retry.
        // The same bound as the sampler's: a look is graded whole or not at all, never with its middle cut out.
        const r: Pick<ExecResult, 'exitCode' | 'stdout' | 'stderr' | 'cutBytes'> = s
          ? { exitCode: s.exitCode, stdout: s.text, stderr: 'ss failed' }
          : await retryTransient(() => this.exec(node, argv, { maxOutputBytes: MAX_ANSWER_BYTES }), {
              clock: this.clock,
              ...(this.signal ? { signal: this.signal } : {}),
              onRetry: (e, n) => log('observe %s: retry %d after %s', node, n, e.message),
            });
        if (r.exitCode !== 0) throw new EngineError(`could not observe ${node}: ${r.stderr.trim()}`);
        if (r.cutBytes?.stdout) throw new EngineError(`could not observe ${node}: it printed more than ${MAX_ANSWER_BYTES} bytes`);
        out.set(node, parseObservation(node, this.clock.now(), r.stdout, this.finished));
      }),
    );
    return out;
  }

  async observeAll(): Promise<Map<NodeName, NodeSnapshot>> {
    return this.observe(new Map(this.plan.nodes.map((n) => [n.key, { iptables: false, commands: new Set<string>() }])));
  }

  /** Poll until every expectation is settled; each becomes a check. */
  async waitFor(stepId: string, expectations: Expectation[], task = false): Promise<Check[]> {
    const start = this.clock.now();
    const pending = expectations.map((e) => ({ e, samples: [] as Sample[], check: undefined as Check | undefined }));
    const needs = new Map<NodeName, { iptables: boolean; commands: Set<string> }>();
    for (const { e } of pending) {
      const n = needs.get(e.on) ?? { iptables: false, commands: new Set<string>() };
      if (e.iptables) n.iptables = true;
      if (e.command) n.commands.add(e.command.name);
      needs.set(e.on, n);
    }
    while (pending.some((p) => !p.check)) {
      throwIfAborted(this.signal, 'wait');
      const before = this.clock.now();
      const snaps = await this.observe(needs);
      for (const p of pending) {
        if (p.check) continue;
        const snap = snaps.get(p.e.on)!;
        p.samples.push({ at: snap.at, evaluation: evaluate(p.e, snap, this.plan.vars) });
        const d = decide(p.e, p.samples, start, snap.at);
        if (d.done) {
          p.check = toCheck(stepId, p.e, this.plan.vars, d, start, task);
          p.samples.length = 0;
          this.emit({ type: 'check', check: p.check });
        }
      }
      const spent = this.clock.now() - before;
      if (pending.some((p) => !p.check) && spent < POLL_INTERVAL_MS) await this.clock.sleep(POLL_INTERVAL_MS - spent, this.signal);
    }
    return pending.map((p) => p.check!);
  }

  async runStep(step: Step, index: number, opts: { solveTask?: boolean } = {}): Promise<StepResult> {
    this.emit({ type: 'step', index, id: step.id, title: step.title, explain: step.explain });
    const checks: Check[] = [];
    try {
      for (const a of step.run ?? []) await this.runAction(a);
      if (step.task && opts.solveTask !== false) {
        for (const a of step.task.solution ?? []) await this.runAction(a);
        checks.push(...(await this.waitFor(step.id, step.task.expect, true)));
      }
      if (step.expect?.length) checks.push(...(await this.waitFor(step.id, step.expect)));
    } catch (e) {
      if (!(e instanceof LabError) || e instanceof InterruptedError || e instanceof EngineError) throw e;
      // A lab command that failed: the step fails with its message; the lab goes on.
      checks.push({
        step: step.id,
        node: 'client',
        kind: 'command',
        expected: "the step's commands succeed",
        seen: [e.message],
        passed: false,
        message: e.message,
        elapsedMs: 0,
      });
    }
    const all = await this.observeAll().catch(() => undefined);
    if (all) for (const [node, snap] of all) this.emit({ type: 'observed', node, sockets: snap.sockets });
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
    this.signal?.removeEventListener('abort', this.closeOnAbort);
    for (const s of this.samplers.values()) s.close();
    this.samplers.clear();
  }

  async down(): Promise<number> {
    this.close();
    const removed = await removeInstance(this.runtime, this.id);
    this.emit({ type: 'teardown', instance: this.id, removed });
    return removed;
  }
}

export function parseObservation(node: NodeName, at: number, text: string, finished: Map<string, CommandStatus> = new Map()): NodeSnapshot {
  const sections = new Map<string, string[]>();
  let current = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('### ')) {
      current = line.slice(4).trim();
      sections.set(current, []);
    } else sections.get(current)?.push(line);
  }
  const snap: NodeSnapshot = { node, at, sockets: parseSs((sections.get('ss') ?? []).join('\n')) };
  if (sections.has('iptables')) snap.counters = parseIptablesSave(sections.get('iptables')!.join('\n'));
  const commands: Record<string, CommandStatus> = Object.fromEntries(finished);
  for (const [key, lines] of sections) {
    if (!key.startsWith('command ')) continue;
    const [status = '', ...output] = lines;
    const m = /^exited (\d+)/.exec(status);
    commands[key.slice(8)] = m
      ? { running: false, exit: Number(m[1]), output: output.join('\n') }
      : { running: status === 'running', output: output.join('\n') };
  }
  snap.commands = commands;
  return snap;
}

export interface GradeOptions extends InstanceOptions {
  /** Called once the instance exists, so a caller can register it for cleanup. */
  onInstance?: (i: Instance) => void;
}

/** Up, every step, down: the whole lab, headless. */
export async function runLab(runtime: Runtime, lab: Lab, opts: GradeOptions): Promise<LabResult> {
  const clock = opts.clock ?? realClock;
  const t0 = clock.now();
  const instance = await createInstance(runtime, lab, opts);
  opts.onInstance?.(instance);
  const steps: StepResult[] = [];
  let error: string | undefined;
  let failing = false;
  try {
    for (const [i, step] of lab.steps.entries()) steps.push(await instance.runStep(step, i));
    // Ctrl-C's cleanup may remove the containers under a running step, which then fails like a broken lab:
    // once interrupted, the outcome is the interrupt, whatever the step saw.
    throwIfAborted(opts.signal, 'lab');
  } catch (e) {
    // The engine unreachable or refusing (a container removed by hand): nothing was graded, so this is not a
    // failed lab but the engine's error, exit 3 (README), after the teardown below.
    const engineTrouble = e instanceof EngineError && e.exitCode === 3;
    if (e instanceof InterruptedError || engineTrouble || !(e instanceof LabError) || opts.signal?.aborted) {
      failing = true;
      throwIfAborted(opts.signal, 'lab');
      throw e;
    }
    error = e.message;
  } finally {
    if (!opts.keep || opts.signal?.aborted) {
      // When the lab already failed (the engine went away, say), that error is the one to report, not the
      // teardown's; `lab clean` removes the rest once the engine is back.
      await instance.down().catch((e: unknown) => {
        if (!failing) throw e;
        log('teardown after a failure: %s', (e as Error).message);
      });
    } else instance.close();
  }
  return summarize(instance.plan.lab, instance.id, steps, clock.now() - t0, error);
}
