import { describe, expect, it } from 'vitest';
import { connectionKey, flagLetters, flagNames, parseHeaders } from '../../src/observe/segments.js';
import { decodeLook, decodeSocket, formatTimerValue } from '../../src/observe/agent-protocol.js';
import { encodeFrame, field, FrameReader, u32, u64 } from '../../src/observe/wire.js';
import { loadCaptureFixture } from '../helpers/capture-fixtures.js';

const direct = loadCaptureFixture('direct');
const segmentsOf = (node: 'client' | 'server') => direct.answers[node]!.flatMap((a) => a.look.segments?.segments ?? []);

describe('segments the agent recorded in the image (test/fixtures/capture, real frames)', () => {
  it('reads time, interface, direction, addresses, flags, seq/ack, length and window of the first SYN', () => {
    const s = segmentsOf('client').find((x) => x.flags.includes('SYN') && !x.flags.includes('ACK'))!;
    expect(s).toMatchObject({
      node: 'client',
      iface: 'eth0',
      dir: 'out',
      src: { host: direct.vars['client.ip'] },
      dst: { host: direct.vars['server.ip'], port: 5555 },
      flags: ['SYN'],
      ack: 0,
      len: 0,
      win: 64240,
      ttl: 64,
    });
    expect(s.ifindex).toBeGreaterThan(0);
    expect(s.origLen).toBe(60);
    // On the kernel's clock: the SYN was sent after the first look and before the last.
    const clocks = direct.answers.client!.map((a) => a.look.clock);
    expect(s.at).toBeGreaterThan(clocks[0]!);
    expect(s.at).toBeLessThan(clocks[clocks.length - 1]!);
    expect(flagLetters(s.flags)).toBe('S');
  });

  it('counts the payload from the IP length, not the captured bytes (headers only are kept)', () => {
    const data = segmentsOf('client').find((s) => s.flags.includes('PSH'))!;
    expect(data.len).toBe(6); // "hello\n"
    expect(flagLetters(data.flags)).toBe('P.');
    expect(flagNames(data.flags)).toBe('ACK');
  });

  it('every segment is seen once per reader: the cursors of successive looks follow each other', () => {
    const a = direct.answers.client!;
    for (let i = 1; i < a.length; i++) expect(a[i]!.from).toBe(a[i - 1]!.look.segments!.next);
    expect(a.every((x) => x.look.segments!.missed === 0 && x.look.segments!.kernelDrops === 0)).toBe(true);
  });

  it('a record whose headers are not TCP is skipped, the others kept', () => {
    const rec = (seq: number, hdr: Buffer) =>
      field('G', Buffer.concat([u64(seq), u64(1_000_000_000n), u32(2), u32(hdr.length), Buffer.from([1]), Buffer.alloc(16), hdr]));
    const syn = Buffer.from(segmentsOf('client')[0]!.hex, 'hex');
    const udp = Buffer.from(syn);
    udp[9] = 17;
    const frame = encodeFrame({
      seq: 1,
      kind: 0x82,
      fields: [field('t', u64(1)), field('T', u64(1n)), rec(5, syn), rec(6, udp), field('N', u64(7)), field('O', u64(1))],
    });
    const look = decodeLook('client', new FrameReader().push(frame)[0]!, 5);
    expect(look.segments!.seqs).toEqual([5]);
    expect(look.segments!.next).toBe(7);
  });

  it('reads IPv6 headers too', () => {
    const b = Buffer.alloc(60);
    b[0] = 0x60;
    b.writeUInt16BE(20 + 5, 4); // payload: TCP header + 5 bytes
    b[6] = 6;
    b[7] = 64;
    b.writeUInt16BE(0xfd00, 8);
    b[23] = 1;
    b.writeUInt16BE(0xfd00, 24);
    b[39] = 2;
    b.writeUInt16BE(40000, 40);
    b.writeUInt16BE(5555, 42);
    b.writeUInt32BE(7, 44);
    b[52] = 5 << 4;
    b[53] = 0x18; // PSH|ACK
    const h = parseHeaders(b)!;
    expect(h.src).toEqual({ host: 'fd00::1', port: 40000 });
    expect(h.dst).toEqual({ host: 'fd00::2', port: 5555 });
    expect(h.len).toBe(5);
    expect(h.flags).toEqual(['PSH', 'ACK']);
    expect(h.ipOptions).toBe(0);
  });

  it('counts the IPv4 options (a source route) and reads the TCP header after them', () => {
    const syn = Buffer.from(segmentsOf('client').find((x) => x.flags.includes('SYN'))!.hex, 'hex');
    expect(syn[0]).toBe(0x45);
    expect(parseHeaders(syn)!.ipOptions).toBe(0);
    // The same SYN with the option a socket gets from IP_OPTIONS [NOP, LSRR len 7 ptr 4, a hop]: IHL 7, 28 bytes.
    const option = Buffer.from([1, 131, 7, 4, 198, 18, 0, 2]);
    const routed = Buffer.concat([syn.subarray(0, 20), option, syn.subarray(20)]);
    routed[0] = 0x47;
    routed.writeUInt16BE(syn.readUInt16BE(2) + option.length, 2);
    const h = parseHeaders(routed)!;
    const plain = parseHeaders(syn)!;
    expect(h.ipOptions).toBe(8);
    expect({ ...h, ipOptions: 0 }).toEqual(plain);
    // A header length below 20 bytes is no IPv4 header: not a segment, rather than one with fewer options than none.
    const short = Buffer.from(syn);
    short[0] = 0x44;
    expect(parseHeaders(short)).toBeUndefined();
  });

  it('names a connection the same way from both ends', () => {
    const a = { src: { host: '198.18.0.2', port: 40000 }, dst: { host: '198.18.0.3', port: 5555 } };
    expect(connectionKey(a)).toBe(connectionKey({ src: a.dst, dst: a.src }));
  });
});

describe('sockets as the agent reads them (sock_diag with tcp_info)', () => {
  it('keep the timer with its retransmissions and tcp_info with retrans and unacked, and print as ss does', () => {
    const answer = direct.answers.client!.find((a) => a.look.sockets.some((s) => s.state === 'SYN_SENT' && s.timer?.retransmits === 1))!;
    const synSent = answer.look.sockets.find((s) => s.state === 'SYN_SENT')!;
    expect(synSent.timer).toMatchObject({ name: 'on', retransmits: 1 });
    expect(synSent.sendQ).toBe(1);
    expect(synSent.info).toMatchObject({ rtoMs: 1000, unacked: 1, retrans: { current: 0, total: 1 } });
    expect(synSent.line).toMatch(/^SYN-SENT 0 1 \S+:\d+ \S+:5555 timer:\(on,\d[\d.]*(ms|sec),1\)$/);
  });

  it('print timers as ss does (iproute2 print_ms_timer)', () => {
    expect(formatTimerValue(1692)).toBe('1.692ms');
    expect(formatTimerValue(58_000)).toBe('58sec');
    expect(formatTimerValue(90_000)).toBe('1min30sec');
    expect(formatTimerValue(200)).toBe('200ms');
    expect(formatTimerValue(12_345)).toBe('12sec');
  });

  it('a record of the wrong size, state or family is a WireError, never a guess', () => {
    expect(() => decodeSocket(Buffer.alloc(10))).toThrow(/socket record/);
    const bad = Buffer.alloc(112);
    bad[0] = 4;
    bad[1] = 99;
    expect(() => decodeSocket(bad)).toThrow(/state 99/);
  });
});
