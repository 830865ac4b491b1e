// A command's output kept within a fixed size whatever the command prints: the first bytes, the last bytes
// and a count of what was dropped in between (as Docker's json-file log driver and CI log viewers do). A lab or
// a student can make a command print without end (`yes`); holding all of it made `lab grade` grow to about a
// gigabyte for a 100 MB print, and nothing anyone reads needs more than the start and the end.
// Pure: bytes in, text out. images/node/tcplab-run keeps a background command's output the same way and
// writes the same marker.

/** Bytes kept from the start and from the end of each stream of a command, unless a caller asks otherwise. */
const HEAD_BYTES = 32 * 1024;
const TAIL_BYTES = 32 * 1024;

/** The line put where bytes were dropped. */
export function cutMarker(bytes: number): string {
  return `[... ${bytes} bytes cut ...]`;
}

/** Matches a cut marker; group 1 is the number of bytes cut. */
export const CUT_MARKER = /\[\.\.\. (\d+) bytes cut \.\.\.\]/;

export class BoundedOutput {
  private head: Buffer | undefined;
  private headLength = 0;
  /** The last bytes seen, in a ring: `ringStart` is the oldest byte once the ring is full. */
  private ring: Buffer | undefined;
  private ringLength = 0;
  private ringStart = 0;
  /** Every byte pushed, kept or not. */
  total = 0;

  constructor(
    readonly headBytes = HEAD_BYTES,
    readonly tailBytes = TAIL_BYTES,
  ) {
    if (!(headBytes >= 0 && tailBytes >= 0)) throw new RangeError('head and tail sizes must be >= 0');
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    let rest = chunk;
    if (this.headLength < this.headBytes) {
      const take = Math.min(this.headBytes - this.headLength, rest.length);
      this.head ??= Buffer.alloc(this.headBytes);
      // Copies, never views: a view would keep the whole chunk (and what it was sliced from) alive.
      rest.copy(this.head, this.headLength, 0, take);
      this.headLength += take;
      rest = rest.subarray(take);
    }
    if (rest.length === 0 || this.tailBytes === 0) return;
    this.ring ??= Buffer.alloc(this.tailBytes);
    if (rest.length >= this.tailBytes) {
      rest.copy(this.ring, 0, rest.length - this.tailBytes);
      this.ringStart = 0;
      this.ringLength = this.tailBytes;
      return;
    }
    // Write at the end of what is kept, wrapping around; the oldest bytes are overwritten.
    let at = (this.ringStart + this.ringLength) % this.tailBytes;
    const first = Math.min(rest.length, this.tailBytes - at);
    rest.copy(this.ring, at, 0, first);
    rest.copy(this.ring, 0, first);
    at = (at + rest.length) % this.tailBytes;
    const grown = this.ringLength + rest.length;
    if (grown > this.tailBytes) {
      this.ringLength = this.tailBytes;
      this.ringStart = at;
    } else this.ringLength = grown;
  }

  /** Bytes of memory held for what is kept: the head's and the tail's buffers, which never grow past their bounds. */
  get keptBytes(): number {
    return (this.head?.length ?? 0) + (this.ring?.length ?? 0);
  }

  /** Bytes dropped so far (those the text leaves out, including a character split by the cut). */
  get cutBytes(): number {
    return this.read().cut;
  }

  toString(): string {
    return this.read().text;
  }

  private tail(): Buffer {
    if (!this.ring || this.ringLength === 0) return Buffer.alloc(0);
    if (this.ringLength < this.tailBytes) return this.ring.subarray(0, this.ringLength);
    return Buffer.concat([this.ring.subarray(this.ringStart), this.ring.subarray(0, this.ringStart)]);
  }

  /** The text kept (with a marker where bytes were dropped) and how many bytes it leaves out. */
  read(): { text: string; cut: number } {
    const head = this.head?.subarray(0, this.headLength) ?? Buffer.alloc(0);
    const tail = this.tail();
    const dropped = this.total - head.length - tail.length;
    if (dropped === 0) return { text: Buffer.concat([head, tail]).toString('utf8'), cut: 0 };
    // Cut on character boundaries, so that the text holds no broken character either side of the marker.
    const h = head.subarray(0, utf8End(head));
    const t = tail.subarray(utf8Start(tail));
    const cut = this.total - h.length - t.length;
    return { text: `${h.toString('utf8')}\n${cutMarker(cut)}\n${t.toString('utf8')}`, cut };
  }
}

/** Length of `b` without a UTF-8 sequence that its end cuts short. */
export function utf8End(b: Buffer): number {
  for (let k = 1; k <= Math.min(4, b.length); k++) {
    const c = b[b.length - k]!;
    if ((c & 0xc0) === 0x80) continue; // a continuation byte: the sequence starts further back
    const need = c < 0x80 ? 1 : c >> 5 === 0b110 ? 2 : c >> 4 === 0b1110 ? 3 : c >> 3 === 0b11110 ? 4 : 1;
    return need <= k ? b.length : b.length - k;
  }
  return b.length;
}

/** Offset of the first byte of `b` that does not continue a sequence begun before it. */
export function utf8Start(b: Buffer): number {
  let k = 0;
  while (k < Math.min(3, b.length) && (b[k]! & 0xc0) === 0x80) k++;
  return k;
}
