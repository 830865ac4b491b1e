import { describe, expect, it } from 'vitest';
import {
  connectionKey,
  flagLetters,
  flagNames,
  parseHeaders,
  parseSegmentLine,
  readCapture,
  segmentArgs,
} from '../../src/observe/segments.js';
import { parseSs } from '../../src/observe/ss.js';
import { loadCaptureFixture } from '../helpers/capture-fixtures.js';

// A SYN the client sent in the direct fixture (recorded from the image by scripts/capture-fixtures.mjs).
const SYN =
  '1795657286.116009910 eth0 441 out 4500003cbabe400040069fd2c612aa02c612aa03bdbc15b358df92ca00000000a002faf0e0590000020405b40402080a2a6e6af7000000000103030a 60';

describe('parseSegmentLine on lines tcplab-capture wrote in the image', () => {
  it('reads time, interface, direction, addresses, flags, seq/ack, length and window', () => {
    const s = parseSegmentLine('client', SYN)!;
    expect(s.at).toBeCloseTo(1795657286116.01, 2);
    expect(s).toMatchObject({
      node: 'client',
      iface: 'eth0',
      ifindex: 441,
      dir: 'out',
      src: { host: '198.18.170.2', port: 48572 },
      dst: { host: '198.18.170.3', port: 5555 },
      flags: ['SYN'],
      seq: 0x58df92ca,
      ack: 0,
      len: 0,
      win: 64240,
      ipId: 0xbabe,
      ttl: 64,
      origLen: 60,
    });
    expect(flagLetters(s.flags)).toBe('S');
  });

  it('counts the payload from the IP length, not the captured bytes (headers only are kept)', () => {
    const f = loadCaptureFixture('direct');
    const data = f.answers
      .client!.join('\n')
      .split('\n')
      .map((l) => parseSegmentLine('client', l))
      .find((s) => s?.flags.includes('PSH'))!;
    expect(data.len).toBe(6); // "hello\n"
    expect(flagLetters(data.flags)).toBe('P.');
    expect(flagNames(data.flags)).toBe('ACK');
  });

  it('rejects lines that are not segments', () => {
    expect(parseSegmentLine('client', '')).toBeUndefined();
    expect(parseSegmentLine('client', SYN.slice(0, 60))).toBeUndefined();
    expect(parseSegmentLine('client', SYN.replace(' out ', ' sideways '))).toBeUndefined();
    // UDP (protocol 17) is not TCP.
    expect(parseSegmentLine('client', SYN.replace('40069fd2', '40119fd2'))).toBeUndefined();
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
  });

  it('names a connection the same way from both ends', () => {
    const a = { src: { host: '198.18.0.2', port: 40000 }, dst: { host: '198.18.0.3', port: 5555 } };
    expect(connectionKey(a)).toBe(connectionKey({ src: a.dst, dst: a.src }));
  });
});

describe('readCapture: the observer sections, read without ever splitting a line', () => {
  it('takes whole lines and moves the cursor past them', () => {
    const text = `### clock 1.5\n### ss\n### segments 1 100\n${SYN}\n${SYN}\n\n`;
    const r = readCapture(text, { gen: 1, offset: 100 });
    expect(r.lines).toEqual([SYN, SYN]);
    expect(r.next).toEqual({ gen: 1, offset: 100 + 2 * (SYN.length + 1) });
    expect(segmentArgs(r.next)).toEqual(['--segments', '1', String(100 + 2 * (SYN.length + 1))]);
  });

  it('leaves a line still being written, and every later file, for the next look', () => {
    const half = SYN.slice(0, 40);
    const text = `### segments 2 0\n${SYN}\n${half}\n### segments 3 0\n${SYN}\n\n`;
    const r = readCapture(text, { gen: 2, offset: 0 });
    expect(r.lines).toEqual([SYN]);
    expect(r.next).toEqual({ gen: 2, offset: SYN.length + 1 });
  });

  it('goes on to the next file when one is complete, and reports files rotated away unread', () => {
    const text = `### segments-gap 1 3\n### segments 3 0\n${SYN}\n\n### segments 4 0\n\n`;
    const r = readCapture(text, { gen: 1, offset: 5 });
    expect(r.gap).toEqual({ from: 1, to: 3 });
    expect(r.lines).toEqual([SYN]);
    expect(r.next).toEqual({ gen: 4, offset: 0 });
  });

  it('says when no recorder runs, and reads the recorder status', () => {
    expect(readCapture('### ss\n### capture off\n', { gen: 0, offset: 0 }).off).toBe(true);
    const r = readCapture('### capture\npid 14\nsegments 9\nkernel_drops 0\ngen 1\n', { gen: 0, offset: 0 });
    expect(r.status).toEqual({ pid: 14, segments: 9, kernel_drops: 0, gen: 1 });
  });
});

describe('parseSs with tcp_info lines (ss -tanoiH, as the observer asks)', () => {
  it('keeps the timer with its retransmissions and the info line with retrans and unacked', () => {
    const f = loadCaptureFixture('direct');
    const answer = f.answers.client!.find((a) => /SYN-SENT.*timer:\(on,\S+,1\)/.test(a))!;
    const ss = /^### ss\n([\s\S]*?)(?=^### )/m.exec(answer)![1]!;
    const sockets = parseSs(ss);
    const synSent = sockets.find((s) => s.state === 'SYN_SENT')!;
    expect(synSent.timer).toMatchObject({ name: 'on', retransmits: 1 });
    expect(synSent.sendQ).toBe(1);
    expect(synSent.info).toMatchObject({ rtoMs: 1000, unacked: 1, retrans: { current: 0, total: 1 } });
    // Every socket line became a socket; info lines did not.
    expect(sockets.length).toBe(ss.split('\n').filter((l) => /^\S/.test(l) && !l.includes('127.0.0.11')).length);
  });
});
