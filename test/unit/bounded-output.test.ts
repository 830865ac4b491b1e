// The bounded buffer behind every command's output: exact below the bound, head + marker + tail above it, the
// count of cut bytes exact, memory fixed whatever is pushed (its buffers' sizes, and what the process holds),
// and no character broken at the cut.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { BoundedOutput, CUT_MARKER, cutMarker, utf8End, utf8Start } from '../../src/runtime/bounded-output.js';

/** Push `text` in chunks of the given sizes (cycled), as a stream would deliver it. */
function feed(b: BoundedOutput, data: Buffer, sizes: number[]): BoundedOutput {
  let i = 0;
  for (let at = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    b.push(data.subarray(at, at + n));
    at += n;
  }
  return b;
}

/** Bytes that tell their position: "000000 000001 000002 ..." */
function numbered(bytes: number): Buffer {
  let s = '';
  for (let i = 0; s.length < bytes; i++) s += `${String(i).padStart(6, '0')} `;
  return Buffer.from(s.slice(0, bytes));
}

const MB = 1 << 20;

/** Bytes of ArrayBuffer memory (Buffers) this process holds once garbage is collected. */
function heldArrayBuffers(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().arrayBuffers;
}
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('BoundedOutput', () => {
  it('keeps everything, with no marker, up to head + tail bytes, whatever the chunking', () => {
    for (const sizes of [[1], [3, 7], [16], [100]]) {
      for (const n of [0, 5, 16, 17, 32]) {
        const data = numbered(n);
        const b = feed(new BoundedOutput(16, 16), data, sizes);
        expect(b.toString()).toBe(data.toString());
        expect(b.cutBytes).toBe(0);
        expect(b.total).toBe(n);
      }
    }
  });

  it('beyond the bound: the first and the last bytes, and a marker with the exact count of what was cut', () => {
    const data = numbered(10_000);
    for (const sizes of [[1], [7, 300], [4096], [10_000]]) {
      const b = feed(new BoundedOutput(64, 48), data, sizes);
      const text = b.toString();
      expect(text).toBe(`${data.subarray(0, 64).toString()}\n${cutMarker(10_000 - 112)}\n${data.subarray(10_000 - 48).toString()}`);
      expect(b.cutBytes).toBe(10_000 - 112);
      expect(Number(CUT_MARKER.exec(text)![1])).toBe(b.cutBytes);
      expect(b.total).toBe(10_000);
    }
  });

  it('says the marker as documented', () => {
    expect(cutMarker(104857600)).toBe('[... 104857600 bytes cut ...]');
  });

  it('a tail of 0 keeps only the head; a head of 0 only the tail', () => {
    const data = Buffer.from('abcdefghij');
    expect(feed(new BoundedOutput(4, 0), data, [3]).toString()).toBe('abcd\n[... 6 bytes cut ...]\n');
    expect(feed(new BoundedOutput(0, 4), data, [3]).toString()).toBe('\n[... 6 bytes cut ...]\nghij');
  });

  it('keeps memory fixed: 100 MB pushed keeps buffers no bigger than 1 MB does, and the process holds no more', () => {
    // Each push a chunk of its own, dropped after the push, as a stream delivers them: anything the buffer kept
    // of them (a copy, a view) would stay in memory.
    const push = (b: BoundedOutput, bytes: number) => {
      for (let n = 0; n < bytes; n += 64 * 1024) b.push(Buffer.alloc(64 * 1024, 'x'));
    };
    const one = new BoundedOutput();
    push(one, MB);
    const hundred = new BoundedOutput();
    push(hundred, MB);
    const afterOne = heldArrayBuffers();
    push(hundred, 99 * MB);
    const afterHundred = heldArrayBuffers();
    expect([one.total, hundred.total]).toEqual([MB, 100 * MB]);
    // The buffers: as big after 100 MB as after 1 MB, and no bigger than the head and the tail.
    expect(hundred.keptBytes).toBe(one.keptBytes);
    expect(one.keptBytes).toBe(one.headBytes + one.tailBytes);
    // The process: 99 MB more pushed through it, and what it holds has not grown by even one of them.
    expect(afterHundred - afterOne, `held ${afterOne} bytes after 1 MB, ${afterHundred} after 100 MB`).toBeLessThan(MB);
    expect(hundred.cutBytes).toBe(100 * MB - 64 * 1024);
  });

  it('never keeps a view of a pushed chunk (which would hold the whole chunk in memory)', () => {
    const big = Buffer.alloc(1 << 20, 'a');
    const b = new BoundedOutput(8, 8);
    b.push(big);
    big.fill('b');
    expect(b.toString()).toBe(`aaaaaaaa\n${cutMarker((1 << 20) - 16)}\naaaaaaaa`);
  });

  it('cuts on character boundaries: no broken UTF-8 either side of the marker, and the count includes the split bytes', () => {
    // "€" is 3 bytes, "😀" 4: a 6-byte head ends inside the second "€", and the 7-byte tail starts inside a "😀".
    const data = Buffer.from('ab€€€€€€😀😀cd');
    const b = feed(new BoundedOutput(6, 7), data, [2]);
    const text = b.toString();
    expect(text).not.toContain('\uFFFD');
    expect(text).toBe(`ab€\n${cutMarker(data.length - 5 - 6)}\n😀cd`);
    expect(b.cutBytes).toBe(data.length - 11);
  });

  it('utf8End / utf8Start find sequence boundaries', () => {
    const euro = Buffer.from('€'); // e2 82 ac
    expect(utf8End(Buffer.concat([Buffer.from('a'), euro]))).toBe(4);
    expect(utf8End(Buffer.concat([Buffer.from('a'), euro.subarray(0, 2)]))).toBe(1);
    expect(utf8End(Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]))).toBe(1);
    expect(utf8End(Buffer.from('abc'))).toBe(3);
    expect(utf8End(Buffer.alloc(0))).toBe(0);
    expect(utf8Start(Buffer.concat([euro.subarray(1), Buffer.from('z')]))).toBe(2);
    expect(utf8Start(Buffer.from('z'))).toBe(0);
  });
});
