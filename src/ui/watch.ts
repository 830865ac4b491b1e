// The live page's own view of a running lab: one persistent observer per node (as the walk has), and its own
// recorder with its own capture cursors. Capture files are read, never consumed (tcplab-observe --segments
// GEN OFFSET prints from an offset the reader keeps), so the page and the walk each see every segment and
// neither takes one from the other. It only reads: it never starts, keeps or removes anything.
import createDebug from 'debug';
import type { NodeName } from '../lab/schema.js';
import type { Plan } from '../plan/plan.js';
import { LABEL } from '../plan/plan.js';
import type { Runtime } from '../runtime/runtime.js';
import { EngineError } from '../errors.js';
import { Sampler } from '../engine/sampler.js';
import type { NodeSnapshot } from '../grade/grade.js';
import { observeArgs, OBSERVE_PROGRAM, parseObservation } from '../observe/observation.js';
import { segmentArgs } from '../observe/segments.js';
import { LabRecorder } from '../trace/recorder.js';
import type { Timeline } from '../trace/timeline.js';

const log = createDebug('lab:ui');
const LOOK_TIMEOUT_MS = 10_000;

export interface Look {
  snapshots: Map<NodeName, NodeSnapshot>;
  /** Nodes whose look failed (their container went away, or the engine did). */
  failed: Map<NodeName, string>;
}

export class LabWatch {
  private readonly samplers = new Map<NodeName, Sampler>();
  private readonly recorder: LabRecorder;
  private readonly addresses: Partial<Record<NodeName, string[]>>;
  private cached: Timeline | undefined;
  private dirty = true;
  private stepFrom: number | undefined;
  private readonly signatures = new Map<NodeName, string>();
  /** When a look last saw something new (a segment, a socket's state, a counter), ms since the epoch. */
  lastChange = 0;

  constructor(
    private readonly runtime: Runtime,
    readonly plan: Plan,
    private readonly signal?: AbortSignal,
  ) {
    this.addresses = Object.fromEntries(plan.nodes.map((n) => [n.key, n.interfaces.map((i) => i.ip)]));
    this.recorder = new LabRecorder(plan.topology, this.addresses);
  }

  /** The lab addresses of each node. */
  get nodeAddresses(): Partial<Record<NodeName, string[]>> {
    return this.addresses;
  }

  /** Kernel time of the latest look (ms). */
  get now(): number | undefined {
    return this.recorder.latestClock;
  }

  /** Nodes that record no segments (capture not started there). */
  get captureOff(): NodeName[] {
    return [...this.recorder.off];
  }

  get droppedSegments(): number {
    return this.recorder.droppedSegments;
  }

  /** A new step began (the walk moved on): segment checks count from the latest look. */
  stepBegins(): void {
    this.stepFrom = this.recorder.latestClock;
  }

  /** Look at every node once: sockets, counters, the named commands' status, new segments. */
  async look(commands: string[] = []): Promise<Look> {
    const snapshots = new Map<NodeName, NodeSnapshot>();
    const failed = new Map<NodeName, string>();
    await Promise.all(
      this.plan.nodes.map(async (n) => {
        try {
          snapshots.set(n.key, await this.lookAt(n.key, n.name, commands));
        } catch (e) {
          failed.set(n.key, (e as Error).message);
        }
      }),
    );
    return { snapshots, failed };
  }

  private async lookAt(node: NodeName, container: string, commands: string[]): Promise<NodeSnapshot> {
    const args = [...observeArgs({ iptables: true, commands: new Set(commands) }), ...segmentArgs(this.recorder.cursor(node))];
    let sampler = this.samplers.get(node);
    if (!sampler) this.samplers.set(node, (sampler = new Sampler(this.runtime, container)));
    const s = await sampler.sample(args, { timeoutMs: LOOK_TIMEOUT_MS, ...(this.signal ? { signal: this.signal } : {}) });
    // Without a persistent observer (it could not open, or broke), one exec per look, as the engine does.
    const r = s
      ? { exitCode: s.exitCode, stdout: s.text, stderr: '' }
      : await this.runtime.exec(container, [OBSERVE_PROGRAM, ...args], {
          timeoutMs: LOOK_TIMEOUT_MS,
          ...(this.signal ? { signal: this.signal } : {}),
        });
    if (r.exitCode !== 0) throw new EngineError(`could not observe the ${node}: ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
    const obs = parseObservation(r.stdout);
    const rec = this.recorder.ingest(node, r.stdout, obs.sockets);
    // A new segment, a socket that changed, a counter that moved: the time line has something new.
    const sig = [
      ...obs.sockets.map((x) => `${x.state} ${x.local.host}:${x.local.port} ${x.peer.host}:${x.peer.port}`),
      ...(obs.counters ?? []).map((c) => `${c.table} ${c.chain} ${c.spec} ${c.packets}`),
    ].join('\n');
    if (rec.segments.length || this.signatures.get(node) !== sig) {
      this.dirty = true;
      this.lastChange = Date.now();
    }
    this.signatures.set(node, sig);
    return {
      node,
      at: Date.now(),
      sockets: obs.sockets,
      ...(obs.counters ? { counters: obs.counters } : {}),
      commands: obs.commands,
      // Segment checks count from the start of the step; before this page saw one begin, none are counted.
      segments: this.stepFrom === undefined ? [] : this.recorder.segmentsOf(node, this.stepFrom),
    };
  }

  /**
   * The joined time line, rebuilt only when something new arrived, or while a segment is still in flight (its
   * fate is decided by time passing).
   */
  timeline(): Timeline {
    if (!this.cached || this.dirty || this.cached.transmissions.some((t) => t.fate === 'in-flight')) {
      this.cached = this.recorder.timeline();
      this.dirty = false;
    }
    return this.cached;
  }

  /** Are the lab's containers all still there and running? (Asked when a look fails.) */
  async present(): Promise<boolean> {
    const list = await this.runtime.listContainers({ [LABEL.managed]: 'true', [LABEL.instance]: this.plan.instance });
    return this.plan.nodes.every((n) => list.some((c) => c.name === n.name && (c.state === undefined || c.state === 'running')));
  }

  close(): void {
    for (const s of this.samplers.values()) s.close();
    this.samplers.clear();
    log('closed the observers of %s', this.plan.instance);
  }
}
