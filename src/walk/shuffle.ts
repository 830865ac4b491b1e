// The choices of a prediction in an order of their own for each student: the lab file's order often puts the
// answer first, and a student who notices learns to pick the first choice rather than to think. The order comes
// from a hash of the student, the lab and the step, so a re-run shows the same order (a student who comes back
// finds the question as they left it) while the student at the next desk sees another.
import { createHash } from 'node:crypto';

/** A small seeded generator (mulberry32): the same seed gives the same sequence on every platform. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The items in an order fixed by `key` (Fisher-Yates with a generator seeded from the key's hash). */
export function shuffled<T>(items: readonly T[], key: string): T[] {
  const seed = createHash('sha256').update(key).digest().readUInt32LE(0);
  const next = generator(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Keys to type for the choices: a, b, c ... */
export function choiceKeys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String.fromCharCode(97 + i));
}
