// What a lab run keeps of its observations, bounded: segments, socket states and drop counters of every node,
// on the kernel's clock, ready for buildTimeline(). Pure (no I/O): the engine feeds it each answer of a node's
// agent (observe/agent-protocol.ts), and asks it which segment cursor to send with the next look.
import type { NodeName, Topology } from '../lab/schema.js';
import type { Socket } from '../observe/ss.js';
import type { RuleCounter } from '../observe/iptables.js';
import type { Segment } from '../observe/segments.js';
import type { Look } from '../observe/agent-protocol.js';
import { buildTimeline, type CounterSample, type StateSample, type Timeline } from './timeline.js';

interface RecorderLimits {
  /** Segments kept per lab: the first `head` and the latest `tail`; those in between are counted. */
  segmentsHead: number;
  segmentsTail: number;
  /** State samples kept per lab (only samples where some socket's state changed are kept at all). */
  samples: number;
}

/** Connections (per direction and node) whose sequence numbers are followed for retransmissions. */
const MAX_TRACKED = 10_000;

/** For messages: how many segments a node's agent keeps (its ring, tcplab-agent.c). */
const RING_HINT = '16384';

const DEFAULT_LIMITS: RecorderLimits = { segmentsHead: 5000, segmentsTail: 15000, samples: 4000 };

/** One answer of a node's agent, as kept. */
interface Observation {
  node: NodeName;
  /** Kernel time of the socket snapshot (ms since the epoch). */
  clock: number;
  sockets: Socket[];
  counters?: RuleCounter[];
  /** Segments new since the previous look. */
  segments: Segment[];
}

/** Where segments went missing for a reader: the agent's ring moved past them, the kernel dropped them, or the
 *  node records nothing. Each with the kernel time it was noticed at; a check whose window holds one cannot
 *  tell "nothing was sent" from "nothing was seen". */
interface SegmentLoss {
  /** Kernel time of the look that noticed it; the loss happened between the look before it and this one. */
  at: number;
  /** Kernel time of the previous look (undefined: since the lab began). */
  since?: number;
  reason: string;
}

/** A bounded list: the first `head` items, then a ring of the latest `tail`; how many fell out between. */
export class HeadTail<T> {
  private readonly first: T[] = [];
  private readonly ring: T[] = [];
  private start = 0;
  dropped = 0;

  constructor(
    private readonly head: number,
    private readonly tail: number,
  ) {}

  push(x: T): void {
    if (this.first.length < this.head) {
      this.first.push(x);
      return;
    }
    if (this.tail === 0) {
      this.dropped++;
      return;
    }
    if (this.ring.length < this.tail) this.ring.push(x);
    else {
      this.ring[this.start] = x;
      this.start = (this.start + 1) % this.tail;
      this.dropped++;
    }
  }

  get length(): number {
    return this.first.length + this.ring.length;
  }

  items(): T[] {
    return [...this.first, ...this.ring.slice(this.start), ...this.ring.slice(0, this.start)];
  }
}

export class LabRecorder {
  /** Per node: the sequence number of the next segment to ask its agent for. */
  private readonly cursors = new Map<NodeName, number>();
  /** Per node: the agent's count of the kernel's drops, as last read. */
  private readonly drops = new Map<NodeName, number>();
  private readonly losses = new Map<NodeName, SegmentLoss[]>();
  private readonly segments: HeadTail<Segment>;
  private readonly samples: HeadTail<StateSample>;
  private readonly counters: HeadTail<CounterSample>;
  private readonly lastState = new Map<NodeName, string>();
  /** The kernel time of each node's latest look, kept or not. */
  private readonly lastLook = new Map<NodeName, number>();
  private readonly lastCounters = new Map<NodeName, string>();
  private readonly seenUntil: Partial<Record<NodeName, number>> = {};
  /** Per node and direction: the connection's first SYN and the highest sequence number sent, to spot retransmissions. */
  private readonly sent = new Map<string, { syn?: number; top: number }>();
  /** Segments the nodes' agents no longer held when asked, or the kernel dropped. */
  gaps = 0;
  /** Nodes whose agent said it records nothing, and why. */
  readonly off = new Map<NodeName, string>();

  constructor(
    readonly topology: Topology,
    readonly addresses: Partial<Record<NodeName, string[]>>,
    limits: RecorderLimits = DEFAULT_LIMITS,
  ) {
    this.segments = new HeadTail(limits.segmentsHead, limits.segmentsTail);
    this.samples = new HeadTail(Math.ceil(limits.samples / 4), Math.floor((limits.samples * 3) / 4));
    this.counters = new HeadTail(Math.ceil(limits.samples / 4), Math.floor((limits.samples * 3) / 4));
  }

  /** The segment cursor for the next look at this node (1: from the first its agent recorded). */
  cursor(node: NodeName): number {
    return this.cursors.get(node) ?? 1;
  }

  /**
   * Keep one answer of a node's agent. `from` is the cursor the look asked from. Looks may overlap (a long poll
   * and a plain look at once): segments already kept are skipped by their sequence number, and a snapshot
   * older than the node's latest is not a state change.
   */
  ingest(node: NodeName, look: Look, from?: number): Observation {
    const since = this.lastLook.get(node);
    const segments: Segment[] = [];
    const read = look.segments;
    if (read) {
      const cursor = this.cursor(node);
      const lost = (reason: string) => {
        const list = this.losses.get(node) ?? [];
        if (list.length < 1000) list.push({ at: look.clock, ...(since !== undefined ? { since } : {}), reason });
        this.losses.set(node, list);
      };
      if (read.off) {
        if (!this.off.has(node)) lost(`${node} records no segments: ${read.off}`);
        this.off.set(node, read.off);
      } else this.off.delete(node);
      if (from !== undefined && read.missed > 0 && from >= cursor) {
        this.gaps += read.missed;
        lost(`${read.missed} segment${read.missed === 1 ? '' : 's'} of ${node} went by unread (its agent keeps the latest ${RING_HINT})`);
      }
      const before = this.drops.get(node);
      if (before !== undefined && read.kernelDrops > before) {
        this.gaps += read.kernelDrops - before;
        lost(
          `the kernel dropped ${read.kernelDrops - before} segment${read.kernelDrops - before === 1 ? '' : 's'} before ${node}'s agent read them`,
        );
      } else if (before === undefined && read.kernelDrops > 0 && cursor === 1) {
        lost(`the kernel dropped ${read.kernelDrops} segments before ${node}'s agent read them`);
      }
      this.drops.set(node, Math.max(before ?? 0, read.kernelDrops));
      read.segments.forEach((s, i) => {
        if (read.seqs[i]! >= cursor) segments.push(s);
      });
      if (read.next > cursor) this.cursors.set(node, read.next);
      for (const s of segments) {
        this.markRetransmission(s);
        this.segments.push(s);
      }
    }
    const obs: Observation = { node, clock: look.clock, sockets: look.sockets, segments };
    if (look.counters) obs.counters = look.counters;
    const latest = this.lastLook.get(node);
    if (latest !== undefined && look.clock < latest) return obs; // an older snapshot, answered late
    this.seenUntil[node] = Math.max(this.seenUntil[node] ?? 0, look.clock);
    const sig = look.sockets
      .map((s) => `${s.local.host}:${s.local.port}|${s.peer.host}:${s.peer.port}|${s.state}`)
      .sort()
      .join(' ');
    if (this.lastState.get(node) !== sig) {
      this.lastState.set(node, sig);
      this.samples.push({ node, at: look.clock, sockets: look.sockets, ...(since !== undefined ? { since } : {}) });
    }
    this.lastLook.set(node, look.clock);
    if (look.counters) {
      const csig = look.counters.map((r) => `${r.table} ${r.chain} ${r.spec} ${r.packets}`).join('\n');
      if (this.lastCounters.get(node) !== csig) {
        this.lastCounters.set(node, csig);
        this.counters.push({ node, at: look.clock, counters: look.counters });
      }
    }
    return obs;
  }

  /** Why this node's segments since `from` (kernel ms; undefined: since the lab began) may be incomplete, or
   *  undefined when every segment of that window was seen. */
  lossSince(node: NodeName, from?: number): string | undefined {
    const list = this.losses.get(node) ?? [];
    const hit = list.find((l) => from === undefined || l.at >= from);
    if (hit) return hit.reason;
    const off = this.off.get(node);
    return off !== undefined ? `${node} records no segments: ${off}` : undefined;
  }

  private markRetransmission(s: Segment): void {
    const span = s.len + (s.flags.includes('SYN') ? 1 : 0) + (s.flags.includes('FIN') ? 1 : 0);
    if (span === 0) return;
    // Per interface and direction: a firewall sees each forwarded segment twice (in on one side, out on the
    // other), and the second sighting is not a second sending.
    const key = `${s.node} ${s.iface} ${s.dir} ${s.src.host}:${s.src.port}>${s.dst.host}:${s.dst.port}`;
    const end = (s.seq + span) >>> 0;
    const st = this.sent.get(key);
    // A SYN with another initial sequence number is a new connection on the same ports (after TIME_WAIT, say).
    const fresh = s.flags.includes('SYN') && st?.syn !== s.seq;
    if (!st || fresh) {
      if (this.sent.size >= MAX_TRACKED) this.sent.delete(this.sent.keys().next().value!);
      this.sent.set(key, { ...(s.flags.includes('SYN') ? { syn: s.seq } : {}), top: end });
      return;
    }
    // Sequence numbers wrap at 2^32: compare as a signed 32-bit difference.
    if (((end - st.top) | 0) <= 0) s.retransmission = true;
    else {
      delete s.retransmission;
      st.top = end;
    }
  }

  /** The latest kernel time any look reported. */
  get latestClock(): number | undefined {
    const t = Object.values(this.seenUntil);
    return t.length ? Math.max(...t) : undefined;
  }

  /** One node's segments at or after `from` (kernel ms; undefined: all kept). */
  segmentsOf(node: NodeName, from?: number): Segment[] {
    return this.segments.items().filter((s) => s.node === node && (from === undefined || s.at >= from));
  }

  /** Every segment kept so far, in capture order per node. */
  allSegments(): Segment[] {
    return this.segments.items();
  }

  /** Segments that fell out of the bounded store, and those the nodes rotated away unread. */
  get droppedSegments(): number {
    return this.segments.dropped;
  }

  /** Bytes the store holds, roughly (for the benchmark): segments' header bytes and fields, and samples. */
  approxBytes(): number {
    let n = 0;
    for (const s of this.segments.items()) n += 120 + s.hex.length + s.iface.length;
    for (const s of this.samples.items()) for (const k of s.sockets) n += 100 + k.line.length + (k.info?.line.length ?? 0);
    for (const c of this.counters.items()) for (const r of c.counters) n += 60 + r.line.length;
    return n;
  }

  timeline(opts: { graceMs?: number } = {}): Timeline {
    return buildTimeline({
      topology: this.topology,
      addresses: this.addresses,
      segments: this.segments.items(),
      samples: this.samples.items(),
      counters: this.counters.items(),
      seenUntil: { ...this.seenUntil },
      ...(opts.graceMs !== undefined ? { graceMs: opts.graceMs } : {}),
    });
  }
}
