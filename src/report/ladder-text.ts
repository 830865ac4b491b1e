// The packet ladder as plain text: one column per machine (client | firewall | server), time going down,
// an arrow per segment with its flags and relative seq/ack, an X where a segment died, and each side's state
// written on its own line between the segments that changed it. ASCII only and no colour, so it reads the same
// in a terminal, a log, a file and a diff; it fits the width it is given.
import type { NodeName } from '../lab/schema.js';
import { formatEndpoint } from '../observe/ss.js';
import { dropVerb, statesAt, type Timeline, type TimelineEvent, type Transmission } from '../trace/timeline.js';

interface LadderOptions {
  /** Columns to fit in; at least MIN_WIDTH is used. */
  width: number;
  /** Only events in [from, to] (kernel ms); states before `from` are written first. */
  from?: number;
  to?: number;
  /** At most this many rows of events: the first and the last half are kept, the middle is counted. */
  maxRows?: number;
  /** Times are shown relative to this (kernel ms); default: the timeline's t0. */
  origin?: number;
}

const MIN_WIDTH = 56;
const TIME_WIDTH = 9;

export function renderLadder(t: Timeline, opts: LadderOptions): string {
  const width = Math.max(MIN_WIDTH, Math.floor(opts.width));
  const from = opts.from ?? -Infinity;
  const to = opts.to ?? Infinity;
  const origin = opts.origin ?? (Number.isFinite(from) ? from : t.t0);
  const nodes = t.nodes;
  const lanes = lanePositions(nodes.length, width);
  const laneOf = new Map(nodes.map((n, i) => [n, lanes[i]!]));
  // A FORWARD drop shows as the arrow that dies at the firewall: its counter would say it twice.
  const events = t.events.filter((e) => e.at >= from && e.at <= to && !(e.kind === 'drop' && e.chain === 'FORWARD'));
  const conns = new Set<string>();
  for (const e of events) {
    if (e.kind === 'segment') conns.add(e.tx.conn);
    else if (e.kind === 'state' && e.conn) conns.add(e.conn);
  }
  // With more than one connection in view, a letter tells them apart.
  const tags = new Map<string, string>();
  if (conns.size > 1) [...conns].forEach((c, i) => tags.set(c, i < 26 ? String.fromCharCode(97 + i) : String(i)));
  const tag = (conn: string | undefined) => (conn && tags.has(conn) ? `${tags.get(conn)}:` : '');

  const lines: string[] = [];
  lines.push(header(nodes, lanes, width));
  lines.push(addressLine(t, nodes, lanes, width));
  for (const [key, letter] of tags) {
    const c = t.connections.find((x) => x.key === key);
    if (c) lines.push(clip(`  ${letter} = ${formatEndpoint(c.a)} -> ${formatEndpoint(c.b)}`, width));
  }
  // Where each side stands when the window opens.
  if (Number.isFinite(from)) {
    const before = statesAt(t, from - 1e-6).filter((s) => !s.conn || conns.has(s.conn) || s.peer.port === null);
    for (const s of before) lines.push(stateRow(laneOf.get(s.node), s.node, `${tag(s.conn)}${s.state}${portHint(s)}`, lanes, width, ''));
  }
  let rows = events.map((e) => renderEvent(e));
  const max = opts.maxRows ?? Infinity;
  if (rows.length > max) {
    const head = Math.ceil(max / 2);
    const tail = Math.floor(max / 2);
    const skipped = rows.length - head - tail;
    rows = [...rows.slice(0, head), [centered(`... ${skipped} more events ...`, width)], ...rows.slice(rows.length - tail)];
  }
  for (const r of rows) lines.push(...r);
  if (events.length === 0) lines.push(centered('(no segments and no state changes)', width));
  return lines.map((l) => l.trimEnd()).join('\n') + '\n';

  function renderEvent(e: TimelineEvent): string[] {
    const time = timeLabel(e.at - origin);
    if (e.kind === 'state') {
      const label = `${tag(e.conn)}${e.to}${e.conn ? '' : portHint(e)}`;
      return [stateRow(laneOf.get(e.node), e.node, label, lanes, width, time)];
    }
    if (e.kind === 'drop') {
      const lane = laneOf.get(e.node) ?? lanes[0]!;
      const text = `X ${e.node} ${e.chain} ${dropVerb(e)} ${e.packets}: ${e.rule}`;
      return [place(lanes, width, time, lane, text, nodes.indexOf(e.node) === nodes.length - 1 ? 'left' : 'right')];
    }
    return [arrowRow(e.tx, time)];
  }

  function arrowRow(tx: Transmission, time: string): string {
    const a = tx.from ? laneOf.get(tx.from) : undefined;
    const b = tx.to ? laneOf.get(tx.to) : undefined;
    const label = `${tag(tx.conn)}${segmentLabel(tx)}`;
    const row = baseRow(lanes, width, time);
    if (a === undefined || b === undefined) {
      // From or to a machine outside the lab: written at the side that saw it.
      const seen = laneOf.get(tx.sightings[0]!.node) ?? lanes[0]!;
      return overlay(row, seen + 2, `? ${formatEndpoint(tx.src)} > ${formatEndpoint(tx.dst)} ${label}`.slice(0, width - seen - 2)).join('');
    }
    const right = b > a;
    // Where the arrow ends: at the receiver, or at the lane of the machine where it died.
    let end = b;
    let mark = right ? '>' : '<';
    if (tx.fate === 'lost' && tx.lost) {
      const lostLane = laneOf.get(tx.lost.node)!;
      end = lostLane === a ? a + (right ? 4 : -4) : lostLane + (right ? 3 : -3);
      mark = 'X';
    } else if (tx.fate === 'in-flight') mark = '~';
    const lo = Math.min(a, end);
    const hi = Math.max(a, end);
    for (let x = lo + 1; x < hi; x++) row[x] = '-';
    // Through the firewall: a + where it was forwarded.
    for (const n of nodes)
      if (n !== tx.from && n !== tx.to && tx.sightings.some((s) => s.node === n) && laneOf.get(n)! > lo && laneOf.get(n)! < hi)
        row[laneOf.get(n)!] = '+';
    if (right) row[hi - 1] = mark;
    else row[lo + 1] = mark;
    const span = hi - lo - 3;
    const text = fit(label, span - 2);
    const start = right ? lo + 2 : hi - 1 - text.length - 1;
    overlay(row, Math.max(lo + 2, start), ` ${text} `.slice(0, span));
    if (tx.fate === 'lost' && tx.lost && end !== b) {
      // Beside the X, up to the next lane: "dropped" at a router, "not received" when it never got there.
      const note = tx.lost.node === tx.from ? 'not received' : 'dropped';
      const room = right ? b - end - 2 : end - a - 2;
      const text = fit(note, room);
      if (right) overlay(row, end + 1, ` ${text}`);
      else overlay(row, end - 1 - text.length, `${text} `);
    }
    return row.join('');
  }
}

/** "SYN seq 0", "SYN|ACK seq 0 ack 1", "ACK ack 1", "PSH|ACK 1:6 ack 1", with "rtx" for a retransmission;
 *  "ICMP admin-prohibited" for an ICMP error about a segment. */
export function segmentLabel(tx: Transmission): string {
  if (tx.icmp) return `ICMP ${tx.icmp}`;
  const parts = [(['SYN', 'FIN', 'RST', 'PSH', 'ACK'] as const).filter((f) => tx.flags.includes(f)).join('|') || 'none'];
  if (tx.len > 0) parts.push(`${tx.relSeq}:${tx.relSeq + tx.len}`);
  else if (tx.flags.includes('SYN') || tx.flags.includes('FIN') || tx.flags.includes('RST')) parts.push(`seq ${tx.relSeq}`);
  if (tx.relAck !== undefined) parts.push(`ack ${tx.relAck}`);
  if (tx.len > 0) parts.push(`len ${tx.len}`);
  if (tx.retransmission) parts.push('rtx');
  return parts.join(' ');
}

function portHint(s: { peer: { port: number | null }; local: { port: number | null } }): string {
  return s.peer.port === null && s.local.port !== null ? ` :${s.local.port}` : '';
}

function lanePositions(n: number, width: number): number[] {
  const left = TIME_WIDTH + 1;
  const right = width - 2;
  if (n === 1) return [left];
  return Array.from({ length: n }, (_, i) => Math.round(left + ((right - left) * i) / (n - 1)));
}

function baseRow(lanes: number[], width: number, time: string): string[] {
  const row = Array.from({ length: width }, () => ' ');
  for (const x of lanes) row[x] = '|';
  overlay(row, 0, time.padStart(TIME_WIDTH - 1));
  return row;
}

function overlay(row: string[], at: number, text: string): string[] {
  for (let i = 0; i < text.length && at + i < row.length; i++) if (at + i >= 0) row[at + i] = text[i]!;
  return row;
}

function place(lanes: number[], width: number, time: string, lane: number, text: string, side: 'left' | 'right'): string {
  const row = baseRow(lanes, width, time);
  if (side === 'right') overlay(row, lane, fit(text, width - lane));
  else {
    const t = fit(text, lane + 1 - TIME_WIDTH);
    overlay(row, lane + 1 - t.length, t);
  }
  return row.join('');
}

function stateRow(lane: number | undefined, node: NodeName, state: string, lanes: number[], width: number, time: string): string {
  if (lane === undefined) return '';
  const text = `[${state}]`;
  const row = baseRow(lanes, width, time);
  const i = lanes.indexOf(lane);
  if (i === lanes.length - 1) overlay(row, Math.max(TIME_WIDTH, lane + 1 - text.length), text);
  else if (i === 0) overlay(row, lane, text);
  else overlay(row, Math.max(TIME_WIDTH, lane - Math.floor(text.length / 2)), text);
  void node;
  return row.join('');
}

function header(nodes: NodeName[], lanes: number[], width: number): string {
  const row = Array.from({ length: width }, () => ' ');
  overlay(row, 0, 'time (s)');
  nodes.forEach((n, i) => {
    const x = lanes[i]!;
    const at = i === 0 ? x : i === nodes.length - 1 ? x + 1 - n.length : x - Math.floor(n.length / 2);
    overlay(row, at, n);
  });
  return row.join('');
}

function addressLine(t: Timeline, nodes: NodeName[], lanes: number[], width: number): string {
  const row = Array.from({ length: width }, () => ' ');
  nodes.forEach((n, i) => {
    const ips = (t.addresses[n] ?? []).join(',');
    if (!ips) return;
    const x = lanes[i]!;
    const at = i === 0 ? x : i === nodes.length - 1 ? x + 1 - ips.length : x - Math.floor(ips.length / 2);
    overlay(row, Math.max(0, at), ips);
  });
  return row.join('');
}

function centered(text: string, width: number): string {
  return ' '.repeat(Math.max(0, Math.floor((width - text.length) / 2))) + text;
}

function timeLabel(ms: number): string {
  return time(ms / 1000);
}

function time(s: number): string {
  return s.toFixed(3);
}

function fit(text: string, n: number): string {
  if (n <= 0) return '';
  return text.length <= n ? text : `${text.slice(0, Math.max(0, n - 1))}~`;
}

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}~`;
}
