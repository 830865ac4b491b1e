// What tcplab-capture records in a node -> TCP segments as data. Pure: the observer's text in, values out.
//
// A capture line (images/node/tcplab-capture):
//   SECONDS.NANOSECONDS IFNAME IFINDEX in|out HEX ORIGLEN
// HEX holds the IP and TCP headers only. Times are the kernel's CLOCK_REALTIME, the clock tcplab-observe stamps
// its ss section with ("### clock T"): sockets and segments of every node of a lab share one time line (all
// containers share the host's kernel; on Docker Desktop, its VM's).
import type { NodeName } from '../lab/schema.js';
import type { Endpoint } from './ss.js';

export const TCP_FLAGS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'] as const;
export type TcpFlag = (typeof TCP_FLAGS)[number];

export interface Segment {
  /** Whose capture saw it. */
  node: NodeName;
  /** ms since the epoch on the kernel's clock (microsecond precision kept as a fraction). */
  at: number;
  iface: string;
  ifindex: number;
  /** out: this node sent it (after its OUTPUT/POSTROUTING chains); in: it arrived (before PREROUTING/INPUT). */
  dir: 'in' | 'out';
  src: Endpoint;
  dst: Endpoint;
  flags: TcpFlag[];
  /** Raw 32-bit sequence and acknowledgement numbers. */
  seq: number;
  ack: number;
  /** Payload bytes. */
  len: number;
  /** The window field as sent (not scaled). */
  win: number;
  /** IPv4 identification (0 for IPv6): with the tuple, seq and ack it tells one transmission from a retransmission. */
  ipId: number;
  ttl: number;
  /** The captured IP+TCP header bytes (hex) and the packet's full length: what a pcap record needs. */
  hex: string;
  origLen: number;
  /** This node's capture saw the same sequence range from this sender before (set by the recorder). */
  retransmission?: boolean;
}

/** Where the engine is in a node's capture files: file generation and byte offset. gen 0: from the oldest. */
export interface CaptureCursor {
  gen: number;
  offset: number;
}

export const START_CURSOR: CaptureCursor = { gen: 0, offset: 0 };

interface CaptureRead {
  /** Complete lines, in order. */
  lines: string[];
  /** Where the next read starts. */
  next: CaptureCursor;
  /** Files rotated away before they were read: segments lost to tcplab (the node's tmpfs is bounded). */
  gap?: { from: number; to: number };
  /** The node records nothing (tcplab-capture was not started). */
  off: boolean;
  /** The recorder's counters (### capture), when asked. */
  status?: Record<string, number>;
}

/** The arguments that ask tcplab-observe for the segments after a cursor. */
export function segmentArgs(c: CaptureCursor): string[] {
  return ['--segments', String(c.gen), String(c.offset)];
}

/**
 * Read the capture sections of one tcplab-observe answer (the whole text, as printed). Each
 * "### segments G O" section is the file seg.G from byte O, followed by one newline that tcplab-observe adds:
 * a section whose text before that newline does not end in a newline has a last line still being written;
 * that line and every later section are left for the next read, so no line is ever taken in two halves.
 */
export function readCapture(text: string, from: CaptureCursor): CaptureRead {
  const out: CaptureRead = { lines: [], next: { ...from }, off: false };
  const headers = [...text.matchAll(/^### (.*)$/gm)];
  let stopped = false;
  headers.forEach((h, i) => {
    const title = h[1]!.trim();
    const bodyStart = h.index + h[0].length + 1;
    const bodyEnd = i + 1 < headers.length ? headers[i + 1]!.index : text.length;
    const body = bodyStart <= bodyEnd ? text.slice(bodyStart, bodyEnd) : '';
    let m: RegExpExecArray | null;
    if (title === 'capture off') out.off = true;
    else if ((m = /^segments-gap (\d+) (\d+)$/.exec(title))) out.gap = { from: Number(m[1]), to: Number(m[2]) };
    else if (title === 'capture') out.status = parseStatus(body);
    else if ((m = /^segments (\d+) (\d+)$/.exec(title)) && !stopped) {
      const gen = Number(m[1]);
      const offset = Number(m[2]);
      // Drop the newline tcplab-observe added after the file's bytes.
      const content = body.endsWith('\n') ? body.slice(0, -1) : body;
      const parts = content.split('\n');
      const tail = parts.pop()!; // '' when content ended with a newline (or was empty): every line is whole
      const whole = parts.filter((l) => l.length > 0);
      out.lines.push(...whole);
      const consumed = parts.reduce((n, l) => n + l.length + 1, 0);
      out.next = { gen, offset: offset + consumed };
      if (tail.length > 0) stopped = true;
    }
  });
  return out;
}

function parseStatus(body: string): Record<string, number> {
  const r: Record<string, number> = {};
  for (const line of body.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) r[k] = Number(v);
  }
  return r;
}

/** One capture line -> a segment; undefined for a line that is not one (a different protocol, a torn line). */
export function parseSegmentLine(node: NodeName, line: string): Segment | undefined {
  const f = line.trim().split(/\s+/);
  if (f.length !== 6) return undefined;
  const [time, iface, ifindex, dir, hex, origLen] = f as [string, string, string, string, string, string];
  const tm = /^(\d+)\.(\d{1,9})$/.exec(time);
  if (!tm || (dir !== 'in' && dir !== 'out') || !/^(?:[0-9a-f]{2})+$/i.test(hex)) return undefined;
  const at = Number(tm[1]) * 1000 + Number(tm[2]!.padEnd(9, '0')) / 1e6;
  const b = Buffer.from(hex, 'hex');
  const h = parseHeaders(b);
  if (!h) return undefined;
  return { node, at, iface, ifindex: Number(ifindex), dir, ...h, hex: hex.toLowerCase(), origLen: Number(origLen) };
}

export function parseSegments(node: NodeName, lines: string[]): Segment[] {
  const out: Segment[] = [];
  for (const l of lines) {
    const s = parseSegmentLine(node, l);
    if (s) out.push(s);
  }
  return out;
}

type Headers = Pick<Segment, 'src' | 'dst' | 'flags' | 'seq' | 'ack' | 'len' | 'win' | 'ipId' | 'ttl'>;

/** IPv4 or IPv6 header followed by a TCP header. */
export function parseHeaders(b: Buffer): Headers | undefined {
  if (b.length < 20) return undefined;
  const version = b[0]! >> 4;
  let src: string, dst: string, tcpAt: number, ipPayload: number, ipId: number, ttl: number;
  if (version === 4) {
    const ihl = (b[0]! & 0x0f) * 4;
    if (b[9] !== 6 || b.length < ihl + 20) return undefined;
    ipPayload = b.readUInt16BE(2) - ihl;
    ipId = b.readUInt16BE(4);
    ttl = b[8]!;
    src = [...b.subarray(12, 16)].join('.');
    dst = [...b.subarray(16, 20)].join('.');
    tcpAt = ihl;
  } else if (version === 6) {
    if (b.length < 60 || b[6] !== 6) return undefined;
    ipPayload = b.readUInt16BE(4);
    ipId = 0;
    ttl = b[7]!;
    src = ipv6(b.subarray(8, 24));
    dst = ipv6(b.subarray(24, 40));
    tcpAt = 40;
  } else return undefined;
  const t = b.subarray(tcpAt);
  const doff = (t[12]! >> 4) * 4;
  const bits = t[13]!;
  const flags = TCP_FLAGS.filter((_, i) => bits & (1 << i));
  return {
    src: { host: src, port: t.readUInt16BE(0) },
    dst: { host: dst, port: t.readUInt16BE(2) },
    flags,
    seq: t.readUInt32BE(4),
    ack: t.readUInt32BE(8),
    len: Math.max(0, ipPayload - doff),
    win: t.readUInt16BE(14),
    ipId,
    ttl,
  };
}

export function ipv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // The longest run of zero groups becomes '::' (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** tcpdump's flag letters: S, S., P., F., R, R., . for a pure ACK. */
export function flagLetters(flags: readonly TcpFlag[]): string {
  const letters: [TcpFlag, string][] = [
    ['SYN', 'S'],
    ['FIN', 'F'],
    ['PSH', 'P'],
    ['RST', 'R'],
    ['URG', 'U'],
    ['ECE', 'E'],
    ['CWR', 'W'],
  ];
  const s = letters.filter(([f]) => flags.includes(f)).map(([, l]) => l);
  if (flags.includes('ACK')) s.push('.');
  return s.join('') || 'none';
}

/** SYN|ACK, FIN|ACK, RST, ACK ... as the article writes them (PSH, ECE and CWR left out). */
export function flagNames(flags: readonly TcpFlag[]): string {
  const main = (['SYN', 'FIN', 'RST', 'ACK'] as const).filter((f) => flags.includes(f));
  return main.join('|') || flags.join('|') || 'none';
}

/** The connection a segment belongs to, the same string both ways: lower endpoint first. */
export function connectionKey(s: Pick<Segment, 'src' | 'dst'>): string {
  const a = `${s.src.host}:${s.src.port}`;
  const b = `${s.dst.host}:${s.dst.port}`;
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

/** tcpdump-like, for a check's "seen": "+1.008s out eth0 198.18.0.2:40000 > 198.18.0.3:5555 [S] seq 123 win 64240 length 0". */
export function formatSegment(s: Segment, origin?: number): string {
  const t = origin === undefined ? '' : `+${((s.at - origin) / 1000).toFixed(3)}s `;
  const ack = s.flags.includes('ACK') ? ` ack ${s.ack}` : '';
  const rtx = s.retransmission ? ' (retransmission)' : '';
  return `${t}${s.dir} ${s.iface} ${s.src.host}:${s.src.port} > ${s.dst.host}:${s.dst.port} [${flagLetters(s.flags)}] seq ${s.seq}${ack} win ${s.win} length ${s.len}${rtx}`;
}
