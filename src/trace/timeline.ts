// The joined record of a lab run: every node's captured segments and socket states on one clock, as one time
// line. Pure: the engine hands in what it observed, renderers (the terminal ladder, ladder.txt/.html, the live
// page) draw the result. Nothing here knows about Docker or the terminal.
//
// Inputs, all stamped with the kernel's CLOCK_REALTIME in ms (see src/observe/segments.ts):
//   - segments: what each node's capture saw (one Segment per node and sighting);
//   - samples: each node's sockets as ss showed them at a moment (only samples that differ need be kept);
//   - counters: iptables counters at a moment, when the engine read them.
// Output (Timeline):
//   - transmissions: one per segment sent, joined across the captures that saw it (the sender's "out", the
//     firewall's "in" and "out", the receiver's "in"), with relative seq/ack like tcpdump's, whether it is a
//     retransmission, and its fate: delivered, lost (and where: the last capture that saw it), in flight, or
//     unknown (its receiver is not a lab machine);
//   - events, in time order: a segment, a socket's state change on one node (with the transmission that caused
//     it, when one did), and a drop that an iptables DROP/REJECT counter saw (the only trace of a segment that
//     a node's own OUTPUT chain dropped: capture sees outgoing segments after OUTPUT).
import type { NodeName, TcpState, Topology } from '../lab/schema.js';
import { formatEndpoint, type Endpoint, type Socket } from '../observe/ss.js';
import type { RuleCounter } from '../observe/iptables.js';
import { connectionKey, type Segment, type TcpFlag } from '../observe/segments.js';

export interface StateSample {
  node: NodeName;
  /** Kernel time, ms since the epoch. */
  at: number;
  sockets: Socket[];
  /** The look at this node before this one (only changed samples are kept): a change happened after it. */
  since?: number;
}

export interface CounterSample {
  node: NodeName;
  at: number;
  counters: RuleCounter[];
}

interface TimelineInput {
  topology: Topology;
  /** The lab addresses of each node (client.ip, firewall.ip.front ...). */
  addresses: Partial<Record<NodeName, string[]>>;
  segments: Segment[];
  samples: StateSample[];
  counters?: CounterSample[];
  /** How far each node's capture has been read (kernel ms); a segment not yet seen by its next hop before
   *  this minus graceMs is still in flight, not lost. Default: the latest time in the input. */
  seenUntil?: Partial<Record<NodeName, number>>;
  /** How long a segment may take from one capture to the next. Default 500 ms. */
  graceMs?: number;
}

export interface Sighting {
  node: NodeName;
  iface: string;
  dir: 'in' | 'out';
  at: number;
}

export type Fate = 'delivered' | 'lost' | 'in-flight' | 'unknown';

export interface Transmission {
  id: number;
  /** connectionKey(): the same for both directions. */
  conn: string;
  src: Endpoint;
  dst: Endpoint;
  /** The lab machines that own src and dst, when they are lab machines. */
  from?: NodeName;
  to?: NodeName;
  flags: TcpFlag[];
  /** Not a TCP segment: an ICMP destination unreachable about this conversation (its code's name), sent by
   *  `from` (the machine that refused it: a firewall, from its own address) to the quoted segment's sender. */
  icmp?: string;
  seq: number;
  ack: number;
  /** Relative to this direction's first SYN (or first segment seen), like tcpdump's. */
  relSeq: number;
  /** Relative to the other direction's; undefined without ACK or before that direction was seen. */
  relAck?: number;
  len: number;
  win: number;
  /** The same sequence range (SYN and FIN count as one) was sent before. */
  retransmission: boolean;
  /** The first sighting (normally the sender's "out"). */
  at: number;
  sightings: Sighting[];
  fate: Fate;
  /** For a lost segment: the last machine whose capture saw it, and what that means. */
  lost?: { node: NodeName; where: string };
}

export type TimelineEvent =
  | { kind: 'segment'; at: number; tx: Transmission }
  | {
      kind: 'state';
      at: number;
      node: NodeName;
      /** The connection (connectionKey), absent for a listener. */
      conn?: string;
      local: Endpoint;
      peer: Endpoint;
      /** undefined: the socket was there at the first look; CLOSED as 'to': it is gone. */
      from?: TcpState;
      to: TcpState;
      /** The transmission that made the change, when one did (id). */
      cause?: number;
      /** When ss saw the new state (the change happened between the previous look and this). */
      seenAt: number;
    }
  | {
      kind: 'drop';
      at: number;
      /** The counter's previous reading. */
      since: number;
      node: NodeName;
      table: string;
      chain: string;
      rule: string;
      packets: number;
    };

export interface Connection {
  key: string;
  /** The side that sent the first SYN (or the first segment seen), and the other. */
  a: Endpoint;
  b: Endpoint;
  aNode?: NodeName;
  bNode?: NodeName;
}

export interface Timeline {
  /** The earliest time in the input (kernel ms), for relative times. */
  t0: number;
  /** Columns, left to right: client, firewall (routed labs), server. */
  nodes: NodeName[];
  addresses: Partial<Record<NodeName, string[]>>;
  connections: Connection[];
  transmissions: Transmission[];
  events: TimelineEvent[];
}

const DEFAULT_GRACE_MS = 500;
/** Sightings of one segment at two captures further apart than this are two transmissions. */
const MATCH_WINDOW_MS = 2000;

function columnsOf(topology: Topology): NodeName[] {
  return topology === 'routed' ? ['client', 'firewall', 'server'] : ['client', 'server'];
}

export function buildTimeline(input: TimelineInput): Timeline {
  const owner = new Map<string, NodeName>();
  for (const [node, ips] of Object.entries(input.addresses) as [NodeName, string[]][]) for (const ip of ips) owner.set(ip, node);
  const transmissions = joinSightings(input.segments, owner);
  numberSequences(transmissions);
  decideFates(transmissions, input, owner);
  const events: TimelineEvent[] = transmissions.map((tx) => ({ kind: 'segment', at: tx.at, tx }));
  events.push(...stateEvents(input.samples, transmissions));
  events.push(...dropEvents(input.counters ?? []));
  // Equal times: a state change placed just before or after its segment is already offset by its time.
  events.sort((x, y) => x.at - y.at || order(x) - order(y));
  const times = [...input.segments.map((s) => s.at), ...input.samples.map((s) => s.at), ...(input.counters ?? []).map((c) => c.at)];
  return {
    t0: times.length ? Math.min(...times) : 0,
    nodes: columnsOf(input.topology),
    addresses: input.addresses,
    connections: connectionsOf(transmissions, owner, events),
    transmissions,
    events,
  };
}

/** At equal times: segments, then states, then drops (a counter is read after what it counted happened). */
function order(e: TimelineEvent): number {
  return e.kind === 'segment' ? 0 : e.kind === 'state' ? 1 : 2;
}

function endpointKey(e: Endpoint): string {
  return formatEndpoint(e);
}

/** Group the sightings of each segment (same tuple, seq, ack, flags, length) into transmissions. */
function joinSightings(segments: Segment[], owner: Map<string, NodeName>): Transmission[] {
  const sorted = [...segments].sort((a, b) => a.at - b.at);
  const groups = new Map<string, Transmission[]>();
  const out: Transmission[] = [];
  for (const s of sorted) {
    const key = `${endpointKey(s.src)}>${endpointKey(s.dst)} ${s.seq} ${s.ack} ${s.flags.join(',')} ${s.len} ${s.ipId} ${s.icmp?.name ?? ''}`;
    // An ICMP error comes from the machine that refused the segment, not from the end it was going to.
    const sender = owner.get(s.icmp ? s.icmp.sender : s.src.host);
    const sighting: Sighting = { node: s.node, iface: s.iface, dir: s.dir, at: s.at };
    const list = groups.get(key) ?? [];
    groups.set(key, list);
    // The sender's own "out" always starts a new transmission (a retransmission looks the same on the wire);
    // any other sighting joins the latest transmission that has not been seen there yet.
    const isSend = s.dir === 'out' && s.node === sender;
    let tx = isSend
      ? undefined
      : [...list]
          .reverse()
          .find(
            (t) => s.at - t.at <= MATCH_WINDOW_MS && !t.sightings.some((x) => x.node === s.node && x.dir === s.dir && x.iface === s.iface),
          );
    if (!tx) {
      const from = sender;
      const to = owner.get(s.dst.host);
      tx = {
        id: out.length + 1,
        conn: connectionKey(s),
        src: s.src,
        dst: s.dst,
        ...(from ? { from } : {}),
        ...(to ? { to } : {}),
        flags: s.flags,
        ...(s.icmp ? { icmp: s.icmp.name } : {}),
        seq: s.seq,
        ack: s.ack,
        relSeq: 0,
        len: s.len,
        win: s.win,
        retransmission: false,
        at: s.at,
        sightings: [],
        fate: 'unknown',
      };
      list.push(tx);
      out.push(tx);
    }
    tx.sightings.push(sighting);
  }
  return out;
}

const MOD = 2 ** 32;

/** Relative seq/ack per direction (tcpdump's), and retransmissions: a range sent again. */
function numberSequences(txs: Transmission[]): void {
  const isn = new Map<string, number>();
  const highest = new Map<string, number>();
  for (const tx of txs) {
    if (tx.icmp) continue; // its seq is the refused segment's, of the other direction
    const dirKey = `${endpointKey(tx.src)}>${endpointKey(tx.dst)}`;
    if (!isn.has(dirKey) || (tx.flags.includes('SYN') && !highest.has(dirKey))) isn.set(dirKey, tx.seq);
    const base = isn.get(dirKey)!;
    tx.relSeq = (tx.seq - base + MOD) % MOD;
    const back = isn.get(`${endpointKey(tx.dst)}>${endpointKey(tx.src)}`);
    if (tx.flags.includes('ACK') && back !== undefined) tx.relAck = (tx.ack - back + MOD) % MOD;
    const span = tx.len + (tx.flags.includes('SYN') ? 1 : 0) + (tx.flags.includes('FIN') ? 1 : 0);
    const end = tx.relSeq + span;
    const top = highest.get(dirKey);
    if (span > 0 && top !== undefined && end <= top) tx.retransmission = true;
    if (span > 0 && (top === undefined || end > top)) highest.set(dirKey, end);
    // A pure ACK marks the direction as seen, so that a later SYN does not reset its numbering.
    if (top === undefined && span === 0) highest.set(dirKey, tx.relSeq);
  }
}

function decideFates(txs: Transmission[], input: TimelineInput, owner: Map<string, NodeName>): void {
  const grace = input.graceMs ?? DEFAULT_GRACE_MS;
  const latest = Math.max(0, ...input.segments.map((s) => s.at), ...input.samples.map((s) => s.at));
  const until = (n: NodeName) => input.seenUntil?.[n] ?? latest;
  const routed = input.topology === 'routed';
  for (const tx of txs) {
    const to = tx.to;
    if (!to) {
      tx.fate = 'unknown';
      continue;
    }
    if (tx.sightings.some((s) => s.node === to && s.dir === 'in')) {
      tx.fate = 'delivered';
      continue;
    }
    const last = tx.sightings[tx.sightings.length - 1]!;
    // The next capture that should have seen it: the firewall between two routed endpoints, else the receiver.
    const viaFirewall = routed && tx.from !== 'firewall' && to !== 'firewall';
    const fwIn = tx.sightings.some((s) => s.node === 'firewall' && s.dir === 'in');
    const fwOut = tx.sightings.some((s) => s.node === 'firewall' && s.dir === 'out');
    const next: NodeName = viaFirewall && !fwOut ? 'firewall' : to;
    if (until(next) < last.at + grace) {
      tx.fate = 'in-flight';
      continue;
    }
    tx.fate = 'lost';
    if (viaFirewall && fwIn && !fwOut) {
      const inIface = tx.sightings.find((s) => s.node === 'firewall' && s.dir === 'in')!.iface;
      tx.lost = { node: 'firewall', where: `in on the firewall's ${inIface}, never out: dropped by the firewall` };
    } else if (viaFirewall && !fwIn) {
      tx.lost = { node: last.node, where: `sent by the ${last.node}, never reached the firewall` };
    } else {
      tx.lost = { node: last.node, where: `sent by the ${last.node}, never reached the ${to}` };
    }
    void owner;
  }
}

function connectionsOf(txs: Transmission[], owner: Map<string, NodeName>, events: TimelineEvent[]): Connection[] {
  const seen = new Map<string, Connection>();
  // A connection whose segments never reached the wire (dropped in its sender's OUTPUT) is known by its socket.
  for (const e of [...events].sort((x, y) => x.at - y.at)) {
    if (e.kind !== 'state' || !e.conn || seen.has(e.conn) || txs.some((t) => t.conn === e.conn)) continue;
    seen.set(e.conn, {
      key: e.conn,
      a: e.local,
      b: e.peer,
      aNode: e.node,
      ...(owner.get(e.peer.host) ? { bNode: owner.get(e.peer.host)! } : {}),
    });
  }
  for (const tx of txs) {
    if (seen.has(tx.conn)) continue;
    // The side that sent the first segment seen (a SYN for a connection opened under capture).
    const c: Connection = { key: tx.conn, a: tx.src, b: tx.dst };
    const an = owner.get(tx.src.host);
    const bn = owner.get(tx.dst.host);
    if (an) c.aNode = an;
    if (bn) c.bNode = bn;
    seen.set(tx.conn, c);
  }
  return [...seen.values()];
}

/** States entered by sending (the app called connect/close): the segment follows the change. */
const ENTERED_BY_SENDING: Partial<Record<TcpState, TcpFlag>> = { SYN_SENT: 'SYN', FIN_WAIT_1: 'FIN', LAST_ACK: 'FIN' };
/** States entered on receipt of a segment with this flag. */
const ENTERED_BY_RECEIPT: Partial<Record<TcpState, TcpFlag>> = {
  SYN_RECV: 'SYN',
  ESTABLISHED: 'ACK',
  CLOSE_WAIT: 'FIN',
  CLOSING: 'FIN',
  TIME_WAIT: 'FIN',
  FIN_WAIT_2: 'ACK',
};
/** How far before or after its cause a state change is placed, so that it sorts on the right side of it. */
const NUDGE_MS = 0.0005;
/** How long after a look's clock its ss may still see a change (a look takes this long at most on a busy host). */
const LOOK_SLACK_MS = 250;

function socketKey(s: Socket): string {
  return `${endpointKey(s.local)}|${endpointKey(s.peer)}`;
}

function stateEvents(samples: StateSample[], txs: Transmission[]): TimelineEvent[] {
  const byNode = new Map<NodeName, StateSample[]>();
  for (const s of samples) byNode.set(s.node, [...(byNode.get(s.node) ?? []), s]);
  // Sightings per node and connection, in time order, to find what caused a change.
  const sightings = new Map<string, { tx: Transmission; s: Sighting }[]>();
  for (const tx of txs)
    for (const s of tx.sightings) {
      const k = `${s.node} ${tx.conn}`;
      sightings.set(k, [...(sightings.get(k) ?? []), { tx, s }]);
    }
  const events: TimelineEvent[] = [];
  for (const [node, list] of byNode) {
    list.sort((a, b) => a.at - b.at);
    let prev = new Map<string, Socket>();
    let prevAt: number | undefined;
    for (const [i, sample] of list.entries()) {
      const now = new Map(sample.sockets.map((s) => [socketKey(s), s]));
      const changes: { s: Socket; from?: TcpState; to: TcpState }[] = [];
      for (const [k, s] of now) {
        const before = prev.get(k);
        if (!before) changes.push({ s, ...(prevAt === undefined ? {} : { from: 'CLOSED' as TcpState }), to: s.state });
        else if (before.state !== s.state) changes.push({ s, from: before.state, to: s.state });
      }
      for (const [k, s] of prev) if (!now.has(k)) changes.push({ s, from: s.state, to: 'CLOSED' });
      for (const c of changes) {
        const conn = c.s.peer.port === null ? undefined : connectionKey({ src: c.s.local, dst: c.s.peer });
        // Without a segment to go by, the change happened some time since the last look; a new listener must
        // come before anything that connected to it, so it goes just after that look.
        const lastLook = sample.since ?? prevAt;
        let at = c.to === 'LISTEN' && lastLook !== undefined ? lastLook + NUDGE_MS : sample.at;
        let cause: number | undefined;
        const after = sample.since ?? prevAt;
        if (conn && after !== undefined) {
          const seen = sightings.get(`${node} ${conn}`) ?? [];
          const inInterval = seen.filter((x) => x.s.at > after && x.s.at <= sample.at);
          // A look's clock is read before ss runs, and on a busy machine ss runs tens of ms later: it can show
          // a state caused by a segment stamped after the clock (CLOSE_WAIT at 15.873, its FIN at 15.879). Without
          // a cause before the clock, one just after it counts, never past the node's next sample.
          const late = Math.min(sample.at + LOOK_SLACK_MS, list[i + 1]?.at ?? Infinity);
          const found =
            findCause(c.from, c.to, inInterval) ??
            findCause(
              c.from,
              c.to,
              seen.filter((x) => x.s.at > sample.at && x.s.at < late),
            );
          if (found) {
            cause = found.tx.id;
            at = found.s.at + (found.s.dir === 'out' ? -NUDGE_MS : NUDGE_MS);
          }
        }
        events.push({
          kind: 'state',
          at,
          node,
          ...(conn ? { conn } : {}),
          local: c.s.local,
          peer: c.s.peer,
          ...(c.from ? { from: c.from } : {}),
          to: c.to,
          ...(cause !== undefined ? { cause } : {}),
          seenAt: sample.at,
        });
      }
      prev = now;
      prevAt = sample.at;
    }
  }
  return events;
}

function findCause(
  from: TcpState | undefined,
  to: TcpState,
  list: { tx: Transmission; s: Sighting }[],
): { tx: Transmission; s: Sighting } | undefined {
  const has = (x: { tx: Transmission }, f: TcpFlag | undefined) => !f || x.tx.flags.includes(f);
  const sent = ENTERED_BY_SENDING[to];
  if (sent) return list.find((x) => x.s.dir === 'out' && has(x, sent)) ?? list.find((x) => x.s.dir === 'out');
  if (to === 'CLOSED') {
    const rst = list.find((x) => x.tx.flags.includes('RST'));
    if (rst) return rst;
    if (from === 'LAST_ACK' || from === 'CLOSING') return [...list].reverse().find((x) => x.s.dir === 'in' && has(x, 'ACK'));
    return undefined;
  }
  // On the closing side, what the peer sent before our own FIN left (data, their ACKs) changed nothing.
  const ourFin = list.find((x) => x.s.dir === 'out' && x.tx.flags.includes('FIN'));
  const closing = to === 'FIN_WAIT_2' || to === 'TIME_WAIT' || to === 'CLOSING';
  const ins = list.filter((x) => x.s.dir === 'in' && (!closing || !ourFin || x.s.at >= ourFin.s.at));
  const active = from === undefined || from === 'CLOSED' || from === 'SYN_SENT';
  if (to === 'ESTABLISHED' && active) {
    const synAck = ins.find((x) => has(x, 'SYN') && has(x, 'ACK'));
    if (synAck) return synAck;
  }
  const flag = to === 'TIME_WAIT' && from === 'CLOSING' ? 'ACK' : ENTERED_BY_RECEIPT[to];
  // Only a segment that can make this change is its cause; without one, the change stays where ss saw it.
  return flag ? ins.find((x) => has(x, flag)) : undefined;
}

const DROP_TARGET = /(?:^|\s)-j\s+(DROP|REJECT)(?:\s|$)/;

/** What a drop event's rule did, in a word: a REJECT answers (a reset or an ICMP error), a DROP says nothing. */
export function dropVerb(e: { rule: string }): 'dropped' | 'rejected' {
  return DROP_TARGET.exec(e.rule)?.[1] === 'REJECT' ? 'rejected' : 'dropped';
}

function dropEvents(samples: CounterSample[]): TimelineEvent[] {
  const events: TimelineEvent[] = [];
  const byNode = new Map<NodeName, CounterSample[]>();
  for (const s of samples) byNode.set(s.node, [...(byNode.get(s.node) ?? []), s]);
  for (const [node, list] of byNode) {
    list.sort((a, b) => a.at - b.at);
    for (let i = 1; i < list.length; i++) {
      const before = new Map(list[i - 1]!.counters.map((r) => [`${r.table} ${r.chain} ${r.spec}`, r.packets]));
      for (const r of list[i]!.counters) {
        if (!DROP_TARGET.test(r.spec)) continue;
        // A rule added since the last reading: everything it counted happened in between.
        const delta = r.packets - (before.get(`${r.table} ${r.chain} ${r.spec}`) ?? 0);
        if (delta > 0)
          events.push({
            kind: 'drop',
            at: list[i]!.at,
            since: list[i - 1]!.at,
            node,
            table: r.table,
            chain: r.chain,
            rule: r.spec,
            packets: delta,
          });
      }
    }
  }
  return events;
}

/** Each node's state per connection (and listeners) as of time `at`: what the ladder writes above its first row. */
export function statesAt(t: Timeline, at: number): { node: NodeName; conn?: string; local: Endpoint; peer: Endpoint; state: TcpState }[] {
  const last = new Map<string, { node: NodeName; conn?: string; local: Endpoint; peer: Endpoint; state: TcpState }>();
  for (const e of t.events) {
    if (e.at > at) break;
    if (e.kind !== 'state') continue;
    const k = `${e.node} ${endpointKey(e.local)} ${endpointKey(e.peer)}`;
    if (e.to === 'CLOSED') last.delete(k);
    else last.set(k, { node: e.node, ...(e.conn ? { conn: e.conn } : {}), local: e.local, peer: e.peer, state: e.to });
  }
  return [...last.values()];
}

/** Events in a window (kernel ms); what a ladder of one step draws, besides the states standing at its start. */
export function eventsIn(t: Timeline, from?: number, to?: number): TimelineEvent[] {
  return t.events.filter((e) => (from === undefined || e.at >= from) && (to === undefined || e.at <= to));
}
