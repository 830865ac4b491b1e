// TCP segments as data: the IP and TCP headers a node's agent recorded (images/node/tcplab-agent.c), decoded.
// Pure. Times are the kernel's CLOCK_REALTIME, the clock the agent stamps its socket snapshots with: sockets
// and segments of every node of a lab share one time line (all containers share the host's kernel; on Docker
// Desktop, its VM's).
import type { IcmpName, NodeName } from '../lab/schema.js';
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
  /** Bytes of IPv4 options after the 20-byte header (IHL above 5): a source route, a record route, a timestamp...
   *  0 when none, and always for IPv6, whose segments with extension headers the capture does not keep. */
  ipOptions: number;
  /** The captured IP+TCP header bytes (hex) and the packet's full length: what a pcap record needs. */
  hex: string;
  origLen: number;
  /** This node's capture saw the same sequence range from this sender before (set by the recorder). */
  retransmission?: boolean;
  /** Not a TCP segment: an ICMP "destination unreachable" about one (what REJECT sends with --reject-with
   *  icmp-...). src and dst are then those of the TCP conversation it answers, as a reset would carry them:
   *  src is the end the quoted segment was sent to, dst its sender; seq is the quoted segment's. */
  icmp?: IcmpError;
}

export interface IcmpError {
  /** ICMP type and code (3 for IPv4, 1 for IPv6). */
  type: number;
  code: number;
  /** The code in iptables' words without their prefix: port-unreachable, admin-prohibited... */
  name: IcmpName;
  /** The address the ICMP message came from (a firewall that rejects sends it from its own). */
  sender: string;
}

const ICMP4_NAMES: Record<number, IcmpName> = {
  0: 'net-unreachable',
  1: 'host-unreachable',
  2: 'proto-unreachable',
  3: 'port-unreachable',
  4: 'frag-needed',
  9: 'net-prohibited',
  10: 'host-prohibited',
  13: 'admin-prohibited',
};
const ICMP6_NAMES: Record<number, IcmpName> = {
  0: 'no-route',
  1: 'admin-prohibited',
  3: 'addr-unreachable',
  4: 'port-unreachable',
  5: 'policy-fail',
  6: 'reject-route',
};

type Headers = Pick<Segment, 'src' | 'dst' | 'flags' | 'seq' | 'ack' | 'len' | 'win' | 'ipId' | 'ttl' | 'ipOptions' | 'icmp'>;

/** An ICMP destination unreachable (IPv4 type 3, IPv6 type 1) whose quoted datagram is a TCP segment: at
 *  `at`, the ICMP header; the quoted IP header follows it. At least the quoted ports and sequence number. */
function parseIcmp(
  b: Buffer,
  at: number,
  v6: boolean,
  outer: { src: string; ipId: number; ttl: number; ipOptions: number },
): Headers | undefined {
  const type = b[at];
  if (type !== (v6 ? 1 : 3)) return undefined;
  const code = b[at + 1]!;
  const q = b.subarray(at + 8);
  let qsrc: string, qdst: string, tcpAt: number;
  if (v6) {
    if (q.length < 48 || q[0]! >> 4 !== 6 || q[6] !== 6) return undefined;
    qsrc = ipv6(q.subarray(8, 24));
    qdst = ipv6(q.subarray(24, 40));
    tcpAt = 40;
  } else {
    const ihl = (q[0]! & 0x0f) * 4;
    if (q.length < 28 || q[0]! >> 4 !== 4 || ihl < 20 || q[9] !== 6 || q.length < ihl + 8) return undefined;
    qsrc = [...q.subarray(12, 16)].join('.');
    qdst = [...q.subarray(16, 20)].join('.');
    tcpAt = ihl;
  }
  const t = q.subarray(tcpAt);
  return {
    src: { host: qdst, port: t.readUInt16BE(2) },
    dst: { host: qsrc, port: t.readUInt16BE(0) },
    flags: [],
    seq: t.readUInt32BE(4),
    ack: 0,
    len: 0,
    win: 0,
    ipId: outer.ipId,
    ttl: outer.ttl,
    ipOptions: outer.ipOptions,
    icmp: { type, code, name: (v6 ? ICMP6_NAMES : ICMP4_NAMES)[code] ?? 'other', sender: outer.src },
  };
}

/** IPv4 or IPv6 header followed by a TCP header, or by an ICMP destination unreachable about a TCP segment. */
export function parseHeaders(b: Buffer): Headers | undefined {
  if (b.length < 20) return undefined;
  const version = b[0]! >> 4;
  let src: string, dst: string, tcpAt: number, ipPayload: number, ipId: number, ttl: number, ipOptions: number;
  if (version === 4) {
    const ihl = (b[0]! & 0x0f) * 4;
    if (b[9] === 1 && ihl >= 20 && b.length >= ihl + 8)
      return parseIcmp(b, ihl, false, {
        src: [...b.subarray(12, 16)].join('.'),
        ipId: b.readUInt16BE(4),
        ttl: b[8]!,
        ipOptions: ihl - 20,
      });
    // A header shorter than 20 bytes is not one (the agent keeps none): its options would count below none.
    if (b[9] !== 6 || ihl < 20 || b.length < ihl + 20) return undefined;
    ipPayload = b.readUInt16BE(2) - ihl;
    ipId = b.readUInt16BE(4);
    ttl = b[8]!;
    ipOptions = ihl - 20;
    src = [...b.subarray(12, 16)].join('.');
    dst = [...b.subarray(16, 20)].join('.');
    tcpAt = ihl;
  } else if (version === 6) {
    if (b[6] === 58 && b.length >= 48) return parseIcmp(b, 40, true, { src: ipv6(b.subarray(8, 24)), ipId: 0, ttl: b[7]!, ipOptions: 0 });
    if (b.length < 60 || b[6] !== 6) return undefined;
    ipPayload = b.readUInt16BE(4);
    ipId = 0;
    ttl = b[7]!;
    // Next header TCP: no extension headers (the capture keeps no other IPv6 segment, and neither does this).
    ipOptions = 0;
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
    ipOptions,
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
  if (s.icmp)
    return `${t}${s.dir} ${s.iface} ICMP ${s.icmp.name} from ${s.icmp.sender} about ${s.dst.host}:${s.dst.port} > ${s.src.host}:${s.src.port} seq ${s.seq}`;
  const ack = s.flags.includes('ACK') ? ` ack ${s.ack}` : '';
  const rtx = s.retransmission ? ' (retransmission)' : '';
  return `${t}${s.dir} ${s.iface} ${s.src.host}:${s.src.port} > ${s.dst.host}:${s.dst.port} [${flagLetters(s.flags)}] seq ${s.seq}${ack} win ${s.win} length ${s.len}${rtx}`;
}
