// Pure grading: expectations x snapshots -> checks. No Docker, no clock: the engine feeds samples in, and
// these functions say whether each expectation holds in a sample, and whether a series of samples settles it.
import type { CountSpec, Expectation, NodeName, SegmentMatcher, SocketMatcher, TcpState } from '../lab/schema.js';
import { parseDuration } from '../lab/duration.js';
import { expand, UNFILLED } from '../lab/templates.js';
import { formatEndpoint, type Endpoint, type Socket } from '../observe/ss.js';
import { ruleMatches, type RuleCounter } from '../observe/iptables.js';
import { formatSegment, type Segment, type TcpFlag } from '../observe/segments.js';
import type { CommandStatus } from '../observe/agent-protocol.js';

const DEFAULT_WITHIN_MS = 5000;

/** How long an expectation may take to hold, from the start of its wait (ms). */
export function withinOf(e: Expectation): number {
  return e.within ? parseDuration(e.within) : DEFAULT_WITHIN_MS;
}

/** What one node looked like at one moment. Fields are present when the expectations asked for them. */
export interface NodeSnapshot {
  node: NodeName;
  /** ms on the engine's clock */
  at: number;
  sockets: Socket[];
  counters?: RuleCounter[];
  commands?: Record<string, CommandStatus>;
  /** The kernel's clock (ms since the epoch) when ss ran: the clock segments are stamped with. */
  clock?: number;
  /** Segments this node's capture saw since the step began (when an expectation asks for segments). */
  segments?: Segment[];
  /** Why the segments above may not be all that were sent or received (the recorder is off, fell behind, the
   *  kernel dropped some): then a check that absence or a maximum could meet cannot be met. */
  segmentsLost?: string;
  /** The counters were asked for and could not be read (iptables-save failed), and why. */
  countersError?: string;
  /** How many processes of the lab's own commands (probes, answers) were runnable (on a CPU or waiting for one). */
  runnable?: number;
  /** This look could tell nothing of the node (its agent's answer did not parse, the session broke), and why:
   *  no expectation holds in it. */
  unknown?: string;
}

export interface Evaluation {
  holds: boolean;
  /** The lines that show why: matching ss lines, the rule and its counter, the command's status. */
  seen: string[];
}

export interface Check {
  step: string;
  node: NodeName;
  /** The expectation's kind (socket, absent, iptables, command, segments), or command-failed: not an
   *  expectation but a command of the lab (its run, a task's solution or probe, a student's answer) that failed,
   *  as a failed check on the machine that ran it. */
  kind: 'socket' | 'absent' | 'iptables' | 'command' | 'segments' | 'command-failed';
  expected: string;
  /** The expectation with its templates as written ({{server.ip}}, {{variant.port}}): the same in every run and
   *  for every student, so reports can name checks by it. Absent for a command that failed. */
  name?: string;
  seen: string[];
  passed: boolean;
  /** The lab's one-line explanation of the expectation (its `why`), or what went wrong with a command. */
  why?: string;
  /** ms from the start of the wait until it held (passed) or until the deadline (failed). */
  elapsedMs: number;
  task?: boolean;
}

function kindOf(e: Expectation): Exclude<Check['kind'], 'command-failed'> {
  return e.socket ? 'socket' : e.absent ? 'absent' : e.iptables ? 'iptables' : e.segments ? 'segments' : 'command';
}

function states(m: SocketMatcher): TcpState[] | undefined {
  return m.state === undefined ? undefined : Array.isArray(m.state) ? m.state : [m.state];
}

function endpointMatches(pattern: string | undefined, e: Endpoint, vars: Record<string, string>): boolean {
  if (!pattern) return true;
  const text = expand(pattern, vars);
  const i = text.lastIndexOf(':');
  let host = text.slice(0, i);
  const port = text.slice(i + 1);
  if (host.startsWith('[')) host = host.slice(1, -1);
  if (port !== '*') {
    const [lo, hi = lo] = port.split('-').map(Number);
    if (e.port === null || e.port < lo! || e.port > hi!) return false;
  }
  return host === '*' || host === e.host;
}

/**
 * Does the socket match? `segments`: what its machine's capture saw, for `closed`; without them (a view that
 * only picks the sockets a check is about) `closed` is not judged.
 */
export function socketMatches(m: SocketMatcher, s: Socket, vars: Record<string, string>, segments?: Segment[]): boolean {
  const st = states(m);
  if (st && !st.includes(s.state)) return false;
  // The fields (queues, timer, retransmissions, closed) are judged in one place, which also says why for `seen`.
  if (fieldMisses(m, s, segments).length) return false;
  return endpointMatches(m.local, s.local, vars) && endpointMatches(m.peer, s.peer, vars);
}

const sameEndpoint = (a: Endpoint, b: Endpoint) => a.host === b.host && a.port === b.port;
/** b is at or after a, in 32-bit sequence space. */
const seqAtOrAfter = (b: number, a: number) => (b - a) >>> 0 < 0x80000000;

/**
 * Which side of the socket's own connection (exactly its addresses and ports) closed first, from the segments
 * its machine's capture saw: `first` when one of its FINs left and a FIN of the peer's acknowledged it (the peer
 * closed after it knew), `second` the other way round; undefined when neither (no FIN seen, or a simultaneous
 * close, where each FIN crossed the other). A connection a machine makes with itself is never on the capture.
 */
export function closedOrder(s: Socket, segments: Segment[]): 'first' | 'second' | undefined {
  const fins = segments.filter((g) => !g.icmp && g.flags.includes('FIN'));
  const mine = fins.filter((g) => g.dir === 'out' && sameEndpoint(g.src, s.local) && sameEndpoint(g.dst, s.peer));
  const theirs = fins.filter((g) => g.dir === 'in' && sameEndpoint(g.src, s.peer) && sameEndpoint(g.dst, s.local));
  // A FIN takes the sequence number after its data: acknowledging it means an ack of seq + len + 1 or later.
  const acks = (a: Segment, fin: Segment) => a.flags.includes('ACK') && seqAtOrAfter(a.ack, (fin.seq + fin.len + 1) >>> 0);
  if (mine.some((f) => theirs.some((g) => acks(g, f)))) return 'first';
  if (theirs.some((g) => mine.some((f) => acks(f, g)))) return 'second';
  return undefined;
}

/** SYN|ACK or [SYN, ACK] -> the flags. */
function flagList(f: SegmentMatcher['flags']): TcpFlag[] {
  if (f === undefined) return [];
  return (Array.isArray(f) ? f : f.split('|')) as TcpFlag[];
}

/** A refusal of a connection: a reset, or an ICMP destination unreachable (a "fragmentation needed" is not). */
function isRefusal(s: Segment): boolean {
  return s.icmp ? s.icmp.name !== 'frag-needed' : s.flags.includes('RST');
}

function segmentMatches(m: SegmentMatcher, s: Segment, vars: Record<string, string>): boolean {
  // An ICMP error is seen only by a check that asks for one (`icmp`, `refusal`); every other check is of TCP.
  if (m.refusal) {
    if (!isRefusal(s)) return false;
  } else if (m.icmp !== undefined) {
    if (!s.icmp || (m.icmp !== true && s.icmp.name !== m.icmp)) return false;
  } else if (s.icmp) return false;
  if (m.dir && s.dir !== m.dir) return false;
  if (m.iface && s.iface !== m.iface) return false;
  if (!flagList(m.flags).every((f) => s.flags.includes(f))) return false;
  if (flagList(m.without).some((f) => s.flags.includes(f))) return false;
  if (m.data !== undefined && s.len > 0 !== m.data) return false;
  if (m.retransmission !== undefined && Boolean(s.retransmission) !== m.retransmission) return false;
  if (m.ttl && !countOk(m.ttl, s.ttl, 0)) return false;
  if (m.ipOptions !== undefined && s.ipOptions > 0 !== m.ipOptions) return false;
  return endpointMatches(m.from, s.src, vars) && endpointMatches(m.to, s.dst, vars);
}

/** A forwarded copy leaves within microseconds of its arrival: it is looked for this long after it, and a
 *  segment counts as kept once it arrived this long before the look, with margin (a look may come between the
 *  two). Retransmissions of the same bytes come 200 ms apart or more, so one is not taken for another's copy. */
const FORWARD_MS = 100;
const FORWARD_SETTLE_MS = 500;

/**
 * `forwarded`: did a segment that arrived at this machine leave it again? Yes when a segment with the same
 * sequence and acknowledgement numbers and length left it (on any interface: a forwarded copy differs in its TTL
 * and, behind an address rewrite, in its addresses and ports; an IP id can be rewritten on the way out and the
 * copy still delivered, so it is not compared) within FORWARD_MS of its arrival; no once it arrived
 * FORWARD_SETTLE_MS before the look and none did; undefined (neither) until then, and for a segment this
 * machine sent itself.
 */
function forwardedBy(segments: readonly Segment[], clock: number): (s: Segment) => boolean | undefined {
  const key = (s: Segment) => `${s.seq} ${s.ack} ${s.len}`;
  const left = new Map<string, number[]>();
  for (const s of segments) if (s.dir === 'out' && !s.icmp) left.set(key(s), [...(left.get(key(s)) ?? []), s.at]);
  return (s) => {
    if (s.dir !== 'in' || s.icmp) return undefined;
    if ((left.get(key(s)) ?? []).some((t) => t >= s.at - 1 && t <= s.at + FORWARD_MS)) return true;
    return s.at <= clock - FORWARD_SETTLE_MS ? false : undefined;
  };
}

/**
 * Nothing matched a check that asks how a segment travelled (its TTL, IP options, whether it was sent on): the
 * segments that match all but that, each with what it had, so a student sees why (at most three).
 */
function nearMisses(
  m: SegmentMatcher,
  snap: NodeSnapshot,
  since: number,
  vars: Record<string, string>,
  sentOn: ((s: Segment) => boolean | undefined) | undefined,
): string[] {
  if (m.ttl === undefined && m.ipOptions === undefined && m.forwarded === undefined) return [];
  const loose: SegmentMatcher = { ...m, ttl: undefined, ipOptions: undefined };
  const near = (snap.segments ?? []).filter((s) => s.at >= since && segmentMatches(loose, s, vars));
  if (!near.length) return [];
  const had = (s: Segment) => {
    const parts: string[] = [];
    if (m.ttl !== undefined) parts.push(`TTL ${s.ttl}`);
    if (m.ipOptions !== undefined) parts.push(s.ipOptions ? `${s.ipOptions} bytes of IP options` : 'no IP options');
    if (m.forwarded !== undefined) {
      const f = sentOn?.(s);
      parts.push(f === undefined ? 'sent on: not known yet' : f ? 'sent on' : 'never sent on');
    }
    return `${formatSegment(s, snap.segments![0]!.at)} (${parts.join(', ')})`;
  };
  const more = near.length > 3 ? [`... ${near.length - 3} more`] : [];
  return [`${near.length} otherwise matching, but not as asked:`, ...near.slice(0, 3).map(had), ...more];
}

function countOk(count: CountSpec | undefined, n: number, defaultMin: number): boolean {
  if (count === undefined) return n >= defaultMin;
  if (typeof count === 'number') return n === count;
  return n >= (count.min ?? 0) && n <= (count.max ?? Infinity);
}

/**
 * Does the expectation hold in this one snapshot?
 * CLOSED is the absence of a connection (netstat never shows one): a socket expectation whose states include
 * CLOSED holds when no socket matching its addresses is in any other state (or, for its other states, as usual).
 */
export function evaluate(e: Expectation, snap: NodeSnapshot, vars: Record<string, string>): Evaluation {
  // "Can't tell" is never "met": an absence, a count of 0 or a maximum must not hold because nothing was seen.
  if (snap.unknown) return { holds: false, seen: [`can't tell: ${snap.unknown}`] };
  if (e.socket || e.absent) {
    const m = (e.socket ?? e.absent)!;
    if (m.closed && !snap.segments) return { holds: false, seen: ["can't tell which side closed first: this look has no segments"] };
    const wire = m.closed ? snap.segments : undefined;
    const matching = snap.sockets.filter((s) => socketMatches(m, s, vars, wire));
    const seen = matching.map((s) => s.line);
    if (m.closed && snap.segmentsLost) {
      // Segments went unseen: a socket whose close was seen is one, but one whose close was not may be one too.
      // The count lies between those two; the check holds only if it would whatever the missing segments were.
      const most = snap.sockets.filter((s) => socketMatches(m, s, vars)).length;
      const ok = (n: number) => (e.absent ? n === 0 : countOk(m.count, n, 1));
      if (!ok(matching.length) || !ok(most)) return { holds: false, seen: [`can't tell: ${snap.segmentsLost}`, ...seen] };
    }
    if (e.absent) return { holds: matching.length === 0, seen };
    const st = states(m);
    if (st?.includes('CLOSED')) {
      const others: TcpState[] = st.filter((x) => x !== 'CLOSED');
      const byAddress = snap.sockets.filter((s) => socketMatches({ ...m, state: undefined }, s, vars, wire));
      const open = byAddress.filter((s) => s.state !== 'CLOSED');
      const holds = open.length === 0 || (others.length > 0 && open.some((s) => others.includes(s.state)));
      return { holds, seen: open.map((s) => s.line) };
    }
    const holds = countOk(m.count, matching.length, 1);
    return { holds, seen: holds || matching.length ? seen : socketsThere(m, snap.sockets, vars, wire) };
  }
  if (e.segments) {
    const m = e.segments;
    // `last`: a window that slides with the look, on the kernel's clock that stamps the segments too.
    if ((m.last !== undefined || m.forwarded !== undefined) && snap.clock === undefined)
      return { holds: false, seen: ["can't tell: this look has no kernel clock"] };
    const since = m.last === undefined ? -Infinity : snap.clock! - parseDuration(m.last);
    const sentOn = m.forwarded === undefined ? undefined : forwardedBy(snap.segments ?? [], snap.clock!);
    const matching = (snap.segments ?? []).filter(
      (s) => s.at >= since && segmentMatches(m, s, vars) && (sentOn === undefined || sentOn(s) === m.forwarded),
    );
    // The first and the last few: enough to see the retransmissions' spacing without a wall of lines.
    const shown = matching.length <= 6 ? matching : [...matching.slice(0, 3), ...matching.slice(-3)];
    const seen = shown.map((s) => formatSegment(s, snap.segments![0]!.at));
    if (matching.length > 6) seen.splice(3, 0, `... ${matching.length - 6} more`);
    if (matching.length) seen.unshift(`${matching.length} segment${matching.length === 1 ? '' : 's'}:`);
    if (snap.segmentsLost) {
      // Segments went unseen in this window: what was seen still counts towards a minimum, but an absence, an
      // exact count, a maximum or a retransmission flag could be met only by what is missing.
      const max = typeof m.count === 'number' ? m.count : m.count?.max;
      const min = typeof m.count === 'number' ? m.count : (m.count?.min ?? 1);
      // And a segment whose copy leaving went unseen would look kept.
      if (max === undefined && m.retransmission === undefined && m.forwarded === undefined && matching.length >= min)
        return { holds: true, seen };
      return { holds: false, seen: [`can't tell: ${snap.segmentsLost}`, ...seen] };
    }
    const holds = countOk(m.count, matching.length, 1);
    if (!holds && !matching.length) seen.push(...nearMisses(m, snap, since, vars, sentOn));
    return { holds, seen };
  }
  if (e.iptables) {
    const c = e.iptables;
    const table = c.table ?? 'filter';
    const words = c.rule.map((w) => expand(w, vars));
    const chain = (snap.counters ?? []).filter((r) => r.table === table && r.chain === c.chain);
    if (snap.countersError) return { holds: false, seen: [`can't tell: ${snap.countersError}`] };
    const rules = chain.filter((r) => ruleMatches(r, words));
    if (rules.length === 0) {
      // Say what is there instead: the student's REJECT rule, or an empty chain.
      const there = chain.length ? chain.map((r) => `in ${table}/${c.chain}: ${r.line}`) : [`${table}/${c.chain} has no rules`];
      return { holds: false, seen: [`no rule in ${table}/${c.chain} matches ${words.join(' ')}`, ...there.slice(0, 8)] };
    }
    // Several rules with these words: their counters add up (a packet is counted by each rule it matched: see
    // docs/authoring.md), and the check says so.
    const packets = rules.reduce((n, r) => n + r.packets, 0);
    const seen = rules.map((r) => r.line);
    if (rules.length > 1) seen.push(`${rules.length} rules match: ${rules.map((r) => r.packets).join(' + ')} = ${packets} packets`);
    return { holds: countOk(c.packets, packets, 0), seen };
  }
  const c = e.command!;
  const status = snap.commands?.[c.name];
  if (!status) return { holds: false, seen: [`${c.name}: not started`] };
  const summary = status.running ? `${c.name}: running` : `${c.name}: exited ${status.exit}`;
  const seen = [
    summary,
    ...status.output
      .split('\n')
      .filter((l) => l.trim())
      .slice(-5)
      .map((l) => `  ${l}`),
  ];
  let holds = true;
  if (c.running !== undefined && status.running !== c.running) holds = false;
  if (c.exit !== undefined && (status.running || status.exit !== c.exit)) holds = false;
  if (c.output !== undefined && !outputPattern(c.output, vars).test(status.output)) holds = false;
  return { holds, seen };
}

/**
 * A command check's output pattern with its templates filled in as literal text: in /to {{server.ip}}/ the
 * address's dots are dots, not "any character", so 198.18.4.3 does not also match 198.18.413.
 */
function outputPattern(pattern: string, vars: Record<string, string>): RegExp {
  const literal = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')]));
  return new RegExp(expand(pattern, literal), 'm');
}

/**
 * No socket matched: say what is there instead, as the iptables check shows the chain's rules. The sockets that
 * share a port with the matcher (the LISTEN socket on 5555 where a SYN_SENT to 5555 was expected), or, when the
 * matcher names no port or nothing shares one, every socket of the node; at most eight.
 */
function socketsThere(m: SocketMatcher, sockets: Socket[], vars: Record<string, string>, segments?: Segment[]): string[] {
  const row = (s: Socket) => `  ${s.state} ${formatEndpoint(s.local)} -> ${formatEndpoint(s.peer)}`;
  const head = `no ${describeMatcher(m, vars)}`;
  // The state and the addresses match, a field does not (timer, queues, retransmissions): say which, and what
  // the socket had, rather than list the socket as if it were something else.
  const near = sockets.filter((s) => socketMatches(withoutFields(m), s, vars));
  const fieldsOff = near.map((s) => ({ s, off: fieldMisses(m, s, segments) })).filter((x) => x.off.length);
  if (fieldsOff.length)
    return [
      `${head}; ${fieldsOff.length === 1 ? 'the socket' : 'the sockets'} with that state and those addresses:`,
      ...fieldsOff.slice(0, 8).map(({ s, off }) => `${row(s)}: ${off.join('; ')}`),
    ];
  const port = (pattern: string | undefined): number | undefined => {
    const p = pattern ? expand(pattern, vars).split(':').pop() : undefined;
    return p && /^\d+$/.test(p) ? Number(p) : undefined;
  };
  const ports = new Set([port(m.local), port(m.peer)].filter((p): p is number => p !== undefined));
  const related = sockets.filter((s) => ports.has(s.local.port ?? -1) || ports.has(s.peer.port ?? -1));
  const shown = (related.length ? related : sockets).slice(0, 8);
  if (shown.length === 0) return [`${head}; no TCP sockets at all`];
  return [`${head}; there is${related.length ? ` on port ${[...ports].join(', ')}` : ''}:`, ...shown.map(row)];
}

function describeMatcher(m: SocketMatcher, vars: Record<string, string>): string {
  const st = states(m);
  const parts = [`${st ? st.join('|') : 'any'} socket`];
  if (m.local) parts.push(`local ${expand(m.local, vars)}`);
  if (m.peer) parts.push(`peer ${expand(m.peer, vars)}`);
  for (const f of FIELDS) if (m[f] !== undefined) parts.push(`${f} ${f === 'timer' ? m.timer : countWords(m[f] as CountSpec)}`);
  if (m.closed) parts.push(`closed ${m.closed} on the wire`);
  return parts.join(', ');
}

/** What a socket check asks of a socket besides its state and addresses. */
const FIELDS = ['timer', 'sendQ', 'recvQ', 'retransmits', 'retransTotal'] as const;

function withoutFields(m: SocketMatcher): SocketMatcher {
  const { timer: _t, sendQ: _s, recvQ: _r, retransmits: _x, retransTotal: _y, closed: _c, ...rest } = m;
  return rest;
}

/** A count in words, for a field as the lab file names it: 3, at least 1, at most 0, 1 to 3. */
function countWords(c: CountSpec): string {
  if (typeof c === 'number') return String(c);
  if (c.min !== undefined && c.max !== undefined) return c.min === c.max ? String(c.min) : `${c.min} to ${c.max}`;
  return c.min !== undefined ? `at least ${c.min}` : c.max !== undefined ? `at most ${c.max}` : 'any';
}

/** The fields of a socket that its check's demands do not allow, each with what the socket had. */
function fieldMisses(m: SocketMatcher, s: Socket, segments?: Segment[]): string[] {
  const off: string[] = [];
  if (m.closed !== undefined && segments) {
    const order = closedOrder(s, segments);
    if (order !== m.closed)
      off.push(
        `closed ${order ?? "unknown (no FIN of this connection's acknowledged by the other side's on the wire)"}, expected ${m.closed}`,
      );
  }
  const timer = s.timer?.name ?? 'off';
  if (m.timer !== undefined && timer !== m.timer) off.push(`timer ${timer}, expected ${m.timer}`);
  if (m.sendQ !== undefined && !countOk(m.sendQ, s.sendQ, 0)) off.push(`sendQ ${s.sendQ}, expected ${countWords(m.sendQ)}`);
  if (m.recvQ !== undefined && !countOk(m.recvQ, s.recvQ, 0)) off.push(`recvQ ${s.recvQ}, expected ${countWords(m.recvQ)}`);
  const retransmits = s.timer?.retransmits ?? 0;
  if (m.retransmits !== undefined && !countOk(m.retransmits, retransmits, 0))
    off.push(`retransmits ${retransmits}, expected ${countWords(m.retransmits)}`);
  if (m.retransTotal !== undefined) {
    // Without ss -i (an older observer), a socket has no lifetime total: it cannot meet a demand on it.
    if (!s.info) off.push(`retransTotal not known (this observer does not run ss -i), expected ${countWords(m.retransTotal)}`);
    else if (!countOk(m.retransTotal, s.info.retrans?.total ?? 0, 0))
      off.push(`retransTotal ${s.info.retrans?.total ?? 0}, expected ${countWords(m.retransTotal)}`);
  }
  return off;
}

/** A human description of the expectation, with templates filled in. */
export function describeExpectation(e: Expectation, vars: Record<string, string>, opts: { timing?: boolean } = {}): string {
  const within = e.within ?? `${DEFAULT_WITHIN_MS / 1000}s`;
  const tail = opts.timing === false ? '' : e.for ? ` for ${e.for} (within ${within})` : ` within ${within}`;
  if (e.socket || e.absent) {
    const m = (e.socket ?? e.absent)!;
    const st = states(m);
    const parts = [st ? st.join('|') : 'any state'];
    if (m.local) parts.push(`local ${expand(m.local, vars)}`);
    if (m.peer) parts.push(`peer ${expand(m.peer, vars)}`);
    if (m.sendQ !== undefined) parts.push(`send-q ${countText(m.sendQ)}`);
    if (m.recvQ !== undefined) parts.push(`recv-q ${countText(m.recvQ)}`);
    if (m.timer !== undefined) parts.push(m.timer === 'off' ? 'no timer' : `timer ${m.timer}`);
    if (m.retransmits !== undefined) parts.push(`retransmits ${countText(m.retransmits)}`);
    if (m.retransTotal !== undefined) parts.push(`retransmitted in all ${countText(m.retransTotal)}`);
    if (m.closed) parts.push(`closed ${m.closed} on the wire`);
    const count =
      m.count === undefined ? '' : typeof m.count === 'number' ? ` x${m.count}` : ` x[${m.count.min ?? 0}..${m.count.max ?? '∞'}]`;
    return `${e.on}: ${e.socket ? '' : 'no '}socket ${parts.join(', ')}${count}${tail}`;
  }
  if (e.segments) {
    const m = e.segments;
    const parts: string[] = [];
    const c = m.count ?? { min: 1 };
    const n = typeof c === 'number' ? (c === 0 ? 'no' : `exactly ${c}`) : c.max === undefined ? `at least ${c.min ?? 0}` : countText(c);
    const flags = flagList(m.flags);
    const without = flagList(m.without);
    // "at least 1 FIN segment", "exactly 1 refusal": one is singular.
    const one = typeof c === 'number' ? c === 1 : c.max === undefined ? (c.min ?? 0) === 1 : c.max === 1 && c.min === 1;
    const s = one ? '' : 's';
    if (flags.length) parts.push(flags.join('|'));
    if (m.refusal) parts.push(`refusal${s} (a reset or an ICMP destination unreachable)`);
    else if (m.icmp !== undefined) parts.push(`ICMP ${m.icmp === true ? 'destination unreachable' : m.icmp} error${s} about TCP`);
    else parts.push(`${m.retransmission === true ? 'retransmitted ' : m.retransmission === false ? 'first-sent ' : ''}segment${s}`);
    if (without.length) parts.push(`without ${without.join('|')}`);
    if (m.data !== undefined) parts.push(m.data ? 'with data' : 'without data');
    if (m.ttl) parts.push(`with TTL ${countText(m.ttl)}`);
    if (m.ipOptions !== undefined) parts.push(m.ipOptions ? 'with IP options' : 'with no IP options');
    if (m.forwarded !== undefined) parts.push(m.forwarded ? 'sent on' : 'never sent on');
    if (m.from) parts.push(`from ${expand(m.from, vars)}`);
    if (m.to) parts.push(`to ${expand(m.to, vars)}`);
    if (m.dir) parts.push(m.dir === 'in' ? 'arriving' : 'leaving');
    if (m.iface) parts.push(`on interface ${m.iface}`);
    return `${e.on}: ${n} ${parts.join(' ')} on the wire${m.last ? ` in the last ${m.last}` : ''}${tail}`;
  }
  if (e.iptables) {
    const c = e.iptables;
    const p = c.packets;
    const n = typeof p === 'number' ? `= ${p}` : p.max === undefined ? `>= ${p.min ?? 0}` : `${p.min ?? 0}..${p.max}`;
    return `${e.on}: iptables ${c.table ?? 'filter'}/${c.chain} rule [${c.rule.map((w) => expand(w, vars)).join(' ')}] matched ${n} packets${tail}`;
  }
  const c = e.command!;
  const parts = [];
  if (c.running !== undefined) parts.push(c.running ? 'still running' : 'finished');
  if (c.exit !== undefined) parts.push(`exit status ${c.exit}`);
  if (c.output !== undefined) parts.push(`output matching /${expand(c.output, vars)}/`);
  return `${e.on}: command ${c.name} ${parts.join(', ')}${tail}`;
}

/** 3, at least 2, at most 4, 1..3 */
function countText(c: CountSpec): string {
  if (typeof c === 'number') return `= ${c}`;
  if (c.max === undefined) return `>= ${c.min ?? 0}`;
  if (c.min === undefined || c.min === 0) return `<= ${c.max}`;
  return `${c.min}..${c.max}`;
}

export interface Sample {
  at: number;
  evaluation: Evaluation;
}

type Decision = { done: false } | { done: true; passed: boolean; at: number; sample: Sample };

/**
 * Was the lab quiet from `from` to `to`: did its own commands' processes (probes, answers) have the CPU they
 * needed, on every machine? undefined: yes. 'pending': not known yet (a machine has not been looked at since
 * `to`). Otherwise why not, and the time of the last look that saw them waiting, after which a hold may begin.
 */
export type Quiet = (from: number, to: number) => undefined | 'pending' | { busy: string; until: number };

const CANT_TELL_LASTED = "can't tell whether it lasted";
/** Does this text (a check's seen line, or a warning that quotes one) say that a state that must last could not be
 *  judged, the lab's own commands having been kept waiting for a CPU? Such a miss says nothing about the answer. */
export const cantTellLasted = (text: string): boolean => text.includes(CANT_TELL_LASTED);

/**
 * Settle an expectation from the samples so far (in time order), the wait having started at `start`.
 * Passes once it has held continuously for `for` (0: one sample) starting no later than the deadline;
 * fails when the deadline has passed and no run that began in time is still going.
 *
 * A state that must last (`for`) proves something only if what would end it could run meanwhile: a client's
 * nc that another lab's fork bomb keeps off the CPU connects to nobody, and "no SYN_RECV on the server for
 * 1s" would hold for an answer that does nothing. So with `quiet`, a hold counts only over a window in which
 * every machine's own commands were seen not waiting to run, before, during and after it; a window that
 * saw them waiting starts again after that look, and a check that never gets a quiet window is not met ("can't
 * tell" is never "met").
 */
export function decide(e: Expectation, samples: Sample[], start: number, now: number, quiet?: Quiet): Decision {
  const within = e.within ? parseDuration(e.within) : DEFAULT_WITHIN_MS;
  const hold = e.for ? parseDuration(e.for) : 0;
  const deadline = start + within;
  /** Index of the first sample of the run that holds now. */
  let run: number | undefined;
  let starved: string | undefined;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    if (!s.evaluation.holds) {
      run = undefined;
      if (s.at > deadline) break;
      continue;
    }
    if (run === undefined) {
      if (s.at > deadline) break;
      run = i;
    }
    while (run !== undefined && s.at - samples[run]!.at >= hold) {
      const q = hold > 0 && quiet ? quiet(samples[run]!.at, s.at) : undefined;
      if (q === undefined) return { done: true, passed: true, at: s.at, sample: s };
      if (q === 'pending') return { done: false };
      starved = q.busy;
      // Begin again with the run's first sample after the look that saw them waiting (and after this start,
      // which that look may have come before), if it began in time.
      let j: number = run + 1;
      while (j <= i && samples[j]!.at <= q.until) j++;
      run = j <= i && samples[j]!.at <= deadline ? j : undefined;
    }
  }
  const last = samples[samples.length - 1];
  if (now > deadline && run === undefined && last) {
    const sample = starved
      ? { ...last, evaluation: { ...last.evaluation, seen: [...last.evaluation.seen, `${CANT_TELL_LASTED}: ${starved}`] } }
      : last;
    return { done: true, passed: false, at: last.at, sample };
  }
  return { done: false };
}

export function toCheck(
  step: string,
  e: Expectation,
  vars: Record<string, string>,
  d: Decision & { done: true },
  start: number,
  task = false,
): Check {
  const seen = d.sample.evaluation.seen.length ? d.sample.evaluation.seen : ['(nothing matching)'];
  return {
    step,
    node: e.on,
    kind: kindOf(e),
    expected: describeExpectation(e, vars),
    name: describeExpectation(e, UNFILLED),
    seen,
    passed: d.passed,
    ...(e.why ? { why: e.why } : {}),
    elapsedMs: Math.max(0, d.at - start),
    ...(task ? { task } : {}),
  };
}

/** A lab command that failed, as a failed check on the node that ran it. */
export function commandFailure(step: string, node: NodeName, message: string): Check {
  return { step, node, kind: 'command-failed', expected: "the step's commands succeed", seen: [message], passed: false, elapsedMs: 0 };
}

export interface StepResult {
  id: string;
  title: string;
  checks: Check[];
  passed: boolean;
}

export interface LabResult {
  lab: { id: number; slug: string; title: string };
  instance: string;
  passed: boolean;
  steps: StepResult[];
  score: { passed: number; total: number };
  durationMs: number;
  error?: string;
  /** The run stopped early, and why: nothing left could change its score (grading submissions only). */
  settled?: string;
}

export function summarize(lab: LabResult['lab'], instance: string, steps: StepResult[], durationMs: number, error?: string): LabResult {
  const checks = steps.flatMap((s) => s.checks);
  const passed = checks.filter((c) => c.passed).length;
  return {
    lab,
    instance,
    passed: !error && checks.length > 0 && passed === checks.length,
    steps,
    score: { passed, total: checks.length },
    durationMs,
    ...(error ? { error } : {}),
  };
}
