// The live page's own view of a running lab: its own session with each node's agent (as the walk has), and its
// own recorder with its own segment cursors. The agent keeps segments for every reader (each asks from its
// own cursor), so the page and the walk each see every segment and neither takes one from the other. It only
// reads: it never starts, keeps or removes anything.
import createDebug from 'debug';
import type { NodeName } from '../lab/schema.js';
import type { Plan } from '../plan/plan.js';
import { LABEL } from '../plan/plan.js';
import type { Runtime } from '../runtime/runtime.js';
import { AgentClient } from '../engine/agent-client.js';
import type { NodeSnapshot } from '../grade/grade.js';
import { LabRecorder } from '../trace/recorder.js';
import type { Timeline } from '../trace/timeline.js';

const log = createDebug('lab:ui');

export interface Look {
  snapshots: Map<NodeName, NodeSnapshot>;
  /** Nodes whose look failed (their container went away, or the engine did). */
  failed: Map<NodeName, string>;
}

export class LabWatch {
  private readonly agents = new Map<NodeName, AgentClient>();
  private readonly tokens = new Map<NodeName, bigint>();
  private readonly inflight = new Map<NodeName, Promise<NodeSnapshot>>();
  private readonly latest = new Map<NodeName, NodeSnapshot>();
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
    return [...this.recorder.off.keys()];
  }

  get droppedSegments(): number {
    return this.recorder.droppedSegments;
  }

  /** A new step began (the walk moved on): segment checks count from the latest look. */
  stepBegins(): void {
    this.stepFrom = this.recorder.latestClock;
  }

  /**
   * Look at every node: sockets, counters, the named commands' status, new segments. waitMs: answer as soon as
   * something changed on any node (each node's agent is asked to wait for a change), or after waitMs; a node
   * that did not change keeps its previous snapshot.
   */
  async look(commands: string[] = [], opts: { waitMs?: number } = {}): Promise<Look> {
    const snapshots = new Map<NodeName, NodeSnapshot>();
    const failed = new Map<NodeName, string>();
    const waitMs = opts.waitMs ?? 0;
    const ask = (node: NodeName) => {
      let p = this.inflight.get(node);
      if (!p) {
        p = this.lookAt(node, commands, waitMs).finally(() => this.inflight.delete(node));
        this.inflight.set(node, p);
      }
      return p;
    };
    const settled = this.plan.nodes.map((n) =>
      ask(n.key).then(
        (snap) => {
          this.latest.set(n.key, snap);
          return n.key;
        },
        (e: unknown) => {
          failed.set(n.key, (e as Error).message);
          return n.key;
        },
      ),
    );
    // Without a wait, every node's answer; with one, the first (the others keep waiting for their next round,
    // or their previous snapshot stands).
    if (waitMs > 0 && this.latest.size === this.plan.nodes.length) await Promise.race(settled);
    else await Promise.all(settled);
    for (const n of this.plan.nodes) {
      const snap = this.latest.get(n.key);
      if (snap && !failed.has(n.key)) snapshots.set(n.key, snap);
    }
    return { snapshots, failed };
  }

  private agent(node: NodeName): AgentClient {
    let a = this.agents.get(node);
    if (!a) {
      const container = this.plan.nodes.find((n) => n.key === node)!.name;
      a = new AgentClient(this.runtime, container, node, this.signal ? { signal: this.signal } : {});
      this.agents.set(node, a);
    }
    return a;
  }

  private async lookAt(node: NodeName, commands: string[], waitMs: number): Promise<NodeSnapshot> {
    const from = this.recorder.cursor(node);
    const token = this.tokens.get(node);
    const look = await this.agent(node).look({
      // Always the counters: the agent runs iptables-save only when nf_tables' own dump changed (no fork
      // otherwise), and a wait that asks for them ends when a rule is added or removed or a counter moves.
      iptables: true,
      commands,
      segmentsFrom: from,
      ...(waitMs > 0 && token !== undefined ? { waitMs, token } : {}),
    });
    this.tokens.set(node, look.token);
    const rec = this.recorder.ingest(node, look, from);
    const previous = this.latest.get(node);
    const kept = look.counters ?? previous?.counters;
    // A new segment, a socket that changed, a counter that moved: the time line has something new.
    const sig = [
      ...look.sockets.map((x) => `${x.state} ${x.local.host}:${x.local.port} ${x.peer.host}:${x.peer.port}`),
      ...(look.counters ?? []).map((c) => `${c.table} ${c.chain} ${c.spec} ${c.packets}`),
    ].join('\n');
    if (rec.segments.length || this.signatures.get(node) !== sig) {
      this.dirty = true;
      this.lastChange = Date.now();
    }
    this.signatures.set(node, sig);
    const cmds: NonNullable<NodeSnapshot['commands']> = {};
    for (const [k, v] of Object.entries(look.commands)) if (v) cmds[k] = v;
    return {
      node,
      at: Date.now(),
      sockets: look.sockets,
      clock: look.clock,
      ...(kept ? { counters: kept } : {}),
      commands: cmds,
      // Segment checks count from the start of the step; before this page saw one begin, none are counted.
      segments: this.stepFrom === undefined ? [] : this.recorder.segmentsOf(node, this.stepFrom),
      ...(this.stepFrom !== undefined && this.recorder.lossSince(node, this.stepFrom)
        ? { segmentsLost: this.recorder.lossSince(node, this.stepFrom)! }
        : {}),
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

  /** Every look that waits for a change answers now (the walk moved on in another process, say). */
  async wake(): Promise<void> {
    await Promise.all(
      [...this.inflight.keys()].map((node) =>
        this.agents
          .get(node)
          ?.wake()
          .catch((e: unknown) => log('wake %s: %s', node, (e as Error).message)),
      ),
    );
  }

  /** Are the lab's containers all still there and running? (Asked when a look fails.) */
  async present(): Promise<boolean> {
    const list = await this.runtime.listContainers({ [LABEL.managed]: 'true', [LABEL.instance]: this.plan.instance });
    return this.plan.nodes.every((n) => list.some((c) => c.name === n.name && (c.state === undefined || c.state === 'running')));
  }

  close(): void {
    for (const a of this.agents.values()) a.close();
    this.agents.clear();
    log('closed the agent sessions of %s', this.plan.instance);
  }
}
