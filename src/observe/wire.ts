// The frames between the engine and tcplab-agent (images/node/tcplab-agent.c), in one place. Pure.
//
// A frame is a u32 length of what follows (big-endian), then a u32 sequence number, a u8 kind and fields,
// each a u8 tag, a u32 length and that many bytes. An answer carries its request's sequence number and kind
// 0x80|kind, or ERROR with an 'e' field. Every length is explicit: nothing a lab command, a student or a peer
// prints can start, end or replace a frame or a field, whatever bytes it holds. A frame that does not parse is
// an error of the one answer it was (WireError), never text taken for something else.

export const KIND = { hello: 1, look: 2, run: 3, signal: 4, write: 5, close: 6, wake: 7 } as const;

export const OK = 0x80;
export const ERROR = 0xff;

/** The most one frame may hold: answers carry bounded command output, the counters and at most a few thousand
 *  segments; more is a fault, and reading on would hold any amount of memory. */
export const MAX_FRAME = 32 * 1024 * 1024;

export interface Field {
  tag: number;
  value: Buffer;
}

export interface Frame {
  seq: number;
  kind: number;
  fields: Field[];
}

export class WireError extends Error {
  override name = 'WireError';
}

/** One character's code as a tag: fields are named by letters on both ends (see tcplab-agent.c). */
function tag(letter: string): number {
  return letter.charCodeAt(0);
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

export function field(letter: string, value: Buffer | string = Buffer.alloc(0)): Field {
  return { tag: tag(letter), value: typeof value === 'string' ? Buffer.from(value, 'utf8') : value };
}

function encodeFields(fields: Field[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    const head = Buffer.alloc(5);
    head.writeUInt8(f.tag);
    head.writeUInt32BE(f.value.length, 1);
    parts.push(head, f.value);
  }
  return Buffer.concat(parts);
}

export function encodeFrame(f: Frame): Buffer {
  const body = encodeFields(f.fields);
  const head = Buffer.alloc(9);
  head.writeUInt32BE(5 + body.length, 0);
  head.writeUInt32BE(f.seq >>> 0, 4);
  head.writeUInt8(f.kind, 8);
  return Buffer.concat([head, body]);
}

/** The fields of a frame's body, or of a field that holds fields. Throws WireError on any inconsistency. */
export function decodeFields(buf: Buffer, what = 'frame'): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < 5) throw new WireError(`${what}: a field header is cut short`);
    const t = buf.readUInt8(at);
    const len = buf.readUInt32BE(at + 1);
    if (len > buf.length - at - 5) throw new WireError(`${what}: field '${String.fromCharCode(t)}' runs past the end`);
    out.push({ tag: t, value: buf.subarray(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  return out;
}

/** Collects bytes as they arrive and hands out whole frames. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxFrame = MAX_FRAME) {}

  /** The whole frames now complete. Throws WireError when the stream cannot be frames (then drop the stream:
   *  nothing after a bad length can be trusted to start where a frame starts). */
  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.size < 4) break;
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len < 5) throw new WireError(`a frame of ${len} bytes is too short`);
      if (len > this.maxFrame) throw new WireError(`a frame of ${len} bytes is more than the ${this.maxFrame} allowed`);
      if (this.size < 4 + len) break;
      const whole = this.take(4 + len);
      frames.push({ seq: whole.readUInt32BE(4), kind: whole.readUInt8(8), fields: decodeFields(whole.subarray(9)) });
    }
    return frames;
  }

  /** Bytes received that do not make a whole frame yet. */
  get pending(): number {
    return this.size;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    const all = Buffer.concat(this.chunks);
    this.chunks = [all];
    return all.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    return out;
  }
}

/** Typed reads of a frame's fields. Missing or ill-sized fields are WireErrors naming what was read. */
export class Fields {
  constructor(
    readonly list: Field[],
    private readonly what: string,
  ) {}

  static of(buf: Buffer, what: string): Fields {
    return new Fields(decodeFields(buf, what), what);
  }

  has(letter: string): boolean {
    return this.list.some((f) => f.tag === tag(letter));
  }

  all(letter: string): Buffer[] {
    const t = tag(letter);
    return this.list.filter((f) => f.tag === t).map((f) => f.value);
  }

  get(letter: string): Buffer | undefined {
    const t = tag(letter);
    return this.list.find((f) => f.tag === t)?.value;
  }

  bytes(letter: string): Buffer {
    const v = this.get(letter);
    if (!v) throw new WireError(`${this.what}: no field '${letter}'`);
    return v;
  }

  str(letter: string): string | undefined {
    return this.get(letter)?.toString('utf8');
  }

  u8(letter: string): number | undefined {
    return this.sized(letter, 1)?.readUInt8(0);
  }

  u32(letter: string): number | undefined {
    return this.sized(letter, 4)?.readUInt32BE(0);
  }

  /** A u64 as a number: sequence numbers and nanosecond clocks stay far below 2^53 ns... except clocks, which
   *  callers read with big(). */
  u64(letter: string): number | undefined {
    const v = this.sized(letter, 8);
    return v ? Number(v.readBigUInt64BE(0)) : undefined;
  }

  big(letter: string): bigint | undefined {
    return this.sized(letter, 8)?.readBigUInt64BE(0);
  }

  private sized(letter: string, n: number): Buffer | undefined {
    const v = this.get(letter);
    if (v && v.length !== n) throw new WireError(`${this.what}: field '${letter}' has ${v.length} bytes, not ${n}`);
    return v;
  }
}
