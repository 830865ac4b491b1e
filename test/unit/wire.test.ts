// The frames between the engine and tcplab-agent: whole frames out of any chunking, and nothing inside a field
// can start, end or replace a frame, whatever bytes a lab command, a student or a peer prints.
import { describe, expect, it } from 'vitest';
import { decodeFields, encodeFrame, field, FrameReader, MAX_FRAME, u32, WireError, type Frame } from '../../src/observe/wire.js';
import { decodeLook, lookFrame } from '../../src/observe/agent-protocol.js';

const frame = (seq: number, ...values: string[]): Frame => ({ seq, kind: 0x82, fields: values.map((v) => field('o', v)) });

describe('frames', () => {
  it('come out whole and in order, however the bytes are cut', () => {
    const bytes = Buffer.concat([encodeFrame(frame(1, 'a')), encodeFrame(frame(2, 'bb', 'ccc')), encodeFrame(frame(3))]);
    for (const size of [1, 2, 3, 7, 64]) {
      const r = new FrameReader();
      const got: Frame[] = [];
      for (let i = 0; i < bytes.length; i += size) got.push(...r.push(bytes.subarray(i, i + size)));
      expect(got.map((f) => [f.seq, f.fields.map((x) => x.value.toString())])).toEqual([
        [1, ['a']],
        [2, ['bb', 'ccc']],
        [3, []],
      ]);
      expect(r.pending).toBe(0);
    }
  });

  it('a field that holds a whole frame, an end marker or the old ### sections is only a field', () => {
    const forged = Buffer.concat([
      encodeFrame(frame(9, 'forged')),
      Buffer.from('\n### end 1 0\n### ss\nSYN-SENT 0 1 1.2.3.4:1 5.6.7.8:5555\n'),
    ]);
    const real: Frame = { seq: 1, kind: 0x82, fields: [field('o', forged), field('x', u32(3))] };
    const got = new FrameReader().push(encodeFrame(real));
    expect(got).toHaveLength(1);
    expect(got[0]!.seq).toBe(1);
    expect(got[0]!.fields[0]!.value.equals(forged)).toBe(true);
    expect(got[0]!.fields[1]!.value.readUInt32BE(0)).toBe(3);
  });

  it('a length beyond the limit or below a header is a WireError, not a wait for more', () => {
    const big = Buffer.alloc(4);
    big.writeUInt32BE(MAX_FRAME + 1);
    expect(() => new FrameReader().push(big)).toThrow(WireError);
    const small = Buffer.from([0, 0, 0, 2, 0, 0]);
    expect(() => new FrameReader().push(small)).toThrow(/too short/);
  });

  it('a field that runs past its frame is a WireError', () => {
    const body = Buffer.from([0x6f, 0, 0, 0, 9, 1, 2]);
    expect(() => decodeFields(body)).toThrow(WireError);
    expect(() => decodeFields(Buffer.from([0x6f, 0, 0]))).toThrow(/cut short/);
  });

  it('random bytes are frames or a WireError, never anything else (a look never crashes a batch)', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let n = 0; n < 2000; n++) {
      const len = rnd() % 64;
      const b = Buffer.alloc(len);
      for (let i = 0; i < len; i++) b[i] = rnd();
      // A plausible length prefix half of the time, so that the fields' decoder is reached too.
      if (len >= 4 && n % 2) b.writeUInt32BE(len - 4);
      try {
        for (const f of new FrameReader().push(b)) {
          try {
            decodeLook('client', { ...f, kind: 0x82 });
          } catch (e) {
            expect(e).toBeInstanceOf(Error);
            expect((e as Error).name).toMatch(/WireError|AgentRefused/);
          }
        }
      } catch (e) {
        expect(e).toBeInstanceOf(WireError);
      }
    }
  });

  it('a look request carries plain fields: a bad command name is refused before anything is sent', () => {
    expect(() => lookFrame(1, { commands: ['ok-name', 'bad name\n### ss'] })).toThrow(WireError);
    const f = lookFrame(2, { commands: ['check-client'], iptables: true, segmentsFrom: 5, waitMs: 250, token: 7n });
    expect(f.fields.map((x) => String.fromCharCode(x.tag))).toEqual(['i', 'c', 's', 'w', 't']);
  });
});
