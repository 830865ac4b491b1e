// Per-student variants: values a lab derives from the student id, so that every student's task differs a
// little (a port from a range, a target from a list) and an answer copied from another student fails.
// Pure and deterministic: the same lab, variant name and student id give the same value on every machine,
// in the walk (`lab start --student`), in `lab check` and in the replay of `lab grade --submissions`.
import { createHash } from 'node:crypto';
import type { Lab, Variant } from './schema.js';

/** The template name of a variant: {{variant.port}}. */
export function variantTemplate(name: string): string {
  return `variant.${name}`;
}

function pick(v: Variant, hash: bigint): string {
  if ('range' in v) {
    const [lo, hi] = v.range[0] <= v.range[1] ? v.range : [v.range[1], v.range[0]];
    return String(lo + Number(hash % BigInt(hi - lo + 1)));
  }
  return String(v.choices[Number(hash % BigInt(v.choices.length))]);
}

/**
 * Every variant's value for this student, as template values ({'variant.port': '5637'}). The hash covers the
 * lab's slug and the variant's name too, so two labs (or two variants of one lab) do not move in step.
 */
export function variantValues(lab: Pick<Lab, 'slug' | 'variants'>, student: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(lab.variants ?? {})) {
    const digest = createHash('sha256').update(`tcplab-variant\n${lab.slug}\n${name}\n${student}`).digest();
    out[variantTemplate(name)] = pick(v, digest.readBigUInt64BE(0));
  }
  return out;
}
