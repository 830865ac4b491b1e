// What a lab run keeps of its observations, bounded: segments, socket states and drop counters of every node,
// on the kernel's clock, ready for buildTimeline(). Pure (no I/O): the engine feeds it each tcplab-observe
// answer, and asks it which capture cursor to send with the next look.
import type { NodeName, Topology } from '../lab/schema.js';
import { parseSs, type Socket } from '../observe/ss.js';
import { parseIptablesSave, type RuleCounter } from '../observe/iptables.js';
import { parseSegments, readCapture, START_CURSOR, type CaptureCursor, type Segment } from '../observe/segments.js';
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

const DEFAULT_LIMITS: RecorderLimits = { segmentsHead: 5000, segmentsTail: 15000, samples: 4000 };

/** One tcplab-observe answer, read. */
interface Observation {
  node: NodeName;
  /** Kernel time of the ss snapshot (ms since the epoch), when the observer printed "### clock". */
  clock?: number;
  sockets: Socket[];
  counters?: RuleCounter[];
  /** Segments new since the previous look. */
  segments: Segment[];
}

/** "### clock 1795657050.058489" -> ms. */
export function readClock(text: string): number | undefined {
  const m = /^### clock (\d+)(?:[.,](\d+))?\s*$/m.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * 1000 + Number(`0.${m[2] ?? '0'}`) * 1000;
}

function section(text: string, name: string): string | undefined {
  const re = new RegExp(`^### ${name}\\n([\\s\\S]*?)(?=^### |(?![\\s\\S]))`, 'm');
  const m = re.exec(text);
  return m ? m[1] : undefined;
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
  private readonly cursors = new Map<NodeName, CaptureCursor>();
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
  /** Segments the node's own files rotated away before they were read. */
  gaps = 0;
  /** Nodes whose observer said no recorder runs there. */
  readonly off = new Set<NodeName>();

  constructor(
    readonly topology: Topology,
    readonly addresses: Partial<Record<NodeName, string[]>>,
    limits: RecorderLimits = DEFAULT_LIMITS,
  ) {
    this.segments = new HeadTail(limits.segmentsHead, limits.segmentsTail);
    this.samples = new HeadTail(Math.ceil(limits.samples / 4), Math.floor((limits.samples * 3) / 4));
    this.counters = new HeadTail(Math.ceil(limits.samples / 4), Math.floor((limits.samples * 3) / 4));
  }

  /** What to add to the next look at this node: tcplab-observe's --segments GEN OFFSET. */
  cursor(node: NodeName): CaptureCursor {
    return this.cursors.get(node) ?? START_CURSOR;
  }

  /** Read one answer of `tcplab-observe --segments GEN OFFSET` (the cursor given by cursor(node)). */
  ingest(node: NodeName, text: string, parsedSockets?: Socket[]): Observation {
    const clock = readClock(text);
    const sockets = parsedSockets ?? parseSs(section(text, 'ss') ?? '');
    const read = readCapture(text, this.cursor(node));
    if (read.off) this.off.add(node);
    if (read.gap) this.gaps++;
    this.cursors.set(node, read.next);
    const segments = parseSegments(node, read.lines);
    for (const s of segments) {
      this.markRetransmission(s);
      this.segments.push(s);
    }
    const obs: Observation = { node, sockets, segments };
    if (clock !== undefined) {
      obs.clock = clock;
      this.seenUntil[node] = Math.max(this.seenUntil[node] ?? 0, clock);
      const sig = sockets
        .map((s) => `${s.local.host}:${s.local.port}|${s.peer.host}:${s.peer.port}|${s.state}`)
        .sort()
        .join(' ');
      const since = this.lastLook.get(node);
      if (this.lastState.get(node) !== sig) {
        this.lastState.set(node, sig);
        this.samples.push({ node, at: clock, sockets, ...(since !== undefined ? { since } : {}) });
      }
      this.lastLook.set(node, clock);
    }
    const ipt = section(text, 'iptables');
    if (ipt !== undefined) {
      const counters = parseIptablesSave(ipt);
      obs.counters = counters;
      const sig = counters.map((r) => `${r.table} ${r.chain} ${r.spec} ${r.packets}`).join('\n');
      if (clock !== undefined && this.lastCounters.get(node) !== sig) {
        this.lastCounters.set(node, sig);
        this.counters.push({ node, at: clock, counters });
      }
    }
    return obs;
  }

  private markRetransmission(s: Segment): void {
    const span = s.len + (s.flags.includes('SYN') ? 1 : 0) + (s.flags.includes('FIN') ? 1 : 0);
    if (span === 0) return;
    const key = `${s.node} ${s.src.host}:${s.src.port}>${s.dst.host}:${s.dst.port}`;
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
