// A node's captured segments as a pcap file that tcpdump, tshark and Wireshark read. Pure: segments in, bytes
// out. Link type LINUX_SLL2 (276, libpcap 1.10 and later), the one `tcpdump -i any` writes: each record keeps
// the interface index and the direction (incoming, or outgoing from this machine), which a routed lab's
// firewall needs to tell "in on front" from "out on back". Only headers were captured, so each record holds the
// IP and TCP headers and says how long the packet really was (tcpdump prints "length N" from the IP header).
import type { Segment } from '../observe/segments.js';

export const LINKTYPE_LINUX_SLL2 = 276;
/** Nanosecond-resolution pcap. */
const MAGIC_NS = 0xa1b23c4d;
const SLL2_LEN = 20;
const PACKET_HOST = 0;
const PACKET_OUTGOING = 4;
const ARPHRD_ETHER = 1;

export function writePcap(segments: Segment[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(MAGIC_NS, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeInt32LE(0, 8); // thiszone
  header.writeUInt32LE(0, 12); // sigfigs
  header.writeUInt32LE(262144, 16); // snaplen
  header.writeUInt32LE(LINKTYPE_LINUX_SLL2, 20);
  const records: Buffer[] = [header];
  for (const s of [...segments].sort((a, b) => a.at - b.at)) {
    const ip = Buffer.from(s.hex, 'hex');
    const rec = Buffer.alloc(16 + SLL2_LEN + ip.length);
    const sec = Math.floor(s.at / 1000);
    const ns = Math.min(999_999_999, Math.round((s.at - sec * 1000) * 1e6));
    rec.writeUInt32LE(sec, 0);
    rec.writeUInt32LE(ns, 4);
    rec.writeUInt32LE(SLL2_LEN + ip.length, 8);
    rec.writeUInt32LE(SLL2_LEN + Math.max(s.origLen, ip.length), 12);
    const version = ip[0]! >> 4;
    rec.writeUInt16BE(version === 6 ? 0x86dd : 0x0800, 16); // protocol
    rec.writeUInt16BE(0, 18); // reserved
    rec.writeUInt32BE(s.ifindex >>> 0, 20);
    rec.writeUInt16BE(ARPHRD_ETHER, 24);
    rec.writeUInt8(s.dir === 'out' ? PACKET_OUTGOING : PACKET_HOST, 26);
    rec.writeUInt8(0, 27); // no link-layer address was captured
    ip.copy(rec, 16 + SLL2_LEN);
    records.push(rec);
  }
  return Buffer.concat(records);
}

/** The records of a pcap written by writePcap, for tests: time (ms), direction, interface index, IP bytes. */
export function readPcap(b: Buffer): { at: number; dir: 'in' | 'out'; ifindex: number; ip: Buffer; origLen: number }[] {
  if (b.readUInt32LE(0) !== MAGIC_NS || b.readUInt32LE(20) !== LINKTYPE_LINUX_SLL2) throw new Error('not a tcplab pcap');
  const out = [];
  for (let i = 24; i + 16 <= b.length;) {
    const incl = b.readUInt32LE(i + 8);
    const rec = b.subarray(i + 16, i + 16 + incl);
    out.push({
      at: b.readUInt32LE(i) * 1000 + b.readUInt32LE(i + 4) / 1e6,
      dir: rec[10] === PACKET_OUTGOING ? ('out' as const) : ('in' as const),
      ifindex: rec.readUInt32BE(4),
      ip: rec.subarray(SLL2_LEN),
      origLen: b.readUInt32LE(i + 12) - SLL2_LEN,
    });
    i += 16 + incl;
  }
  return out;
}
