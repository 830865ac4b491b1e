// Per-student variants: values a lab derives from the student id, so that every student's task differs a
// little (a port from a range, a target from a list) and an answer copied from another student fails.
// Pure and deterministic: the same lab, variant name and student id give the same value on every machine,
// in the walk (`lab start --student`), in `lab check` and in the replay of `lab grade --submissions`.
import { createHash } from 'node:crypto';
import { userInfo } from 'node:os';
import { LabError } from '../errors.js';
import type { Lab, Variant } from './schema.js';

/** A student id as a roster has it: also a directory name in the Gradescope and PrairieLearn outputs, so no
 *  slashes, no leading dot or dash, nothing a spreadsheet would take for a formula. */
export const STUDENT_ID = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;
export const STUDENT_ID_RULE = 'letters, digits and . _ @ + - (at most 64, starting with a letter or digit)';

/** Whose variants a lab instance gets when no student is named (tests, the benchmark). */
export const REFERENCE_STUDENT = 'reference';

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

/**
 * Who is doing the lab, for its variants: --student, else TCPLAB_STUDENT, else the login name. A name that
 * cannot be a student id is an error only where it matters (a lab with variants, or a submission).
 */
export function resolveStudent(given: string | undefined): { id: string; from: 'option' | 'environment' | 'login' } {
  const check = (id: string, from: 'option' | 'environment' | 'login') => {
    if (!STUDENT_ID.test(id))
      throw new LabError(
        `'${id}' (from ${from === 'option' ? '--student' : from === 'environment' ? 'TCPLAB_STUDENT' : 'your login name'}) cannot be a student id`,
        `a student id has ${STUDENT_ID_RULE}; give one with --student ID`,
      );
    return { id, from };
  };
  if (given !== undefined) return check(given, 'option');
  const env = process.env.TCPLAB_STUDENT;
  if (env) return check(env, 'environment');
  let login = 'student';
  try {
    login = userInfo().username || login;
  } catch {
    // No passwd entry (a container with an arbitrary uid): fall back to a fixed name.
  }
  return check(login, 'login');
}

/** The student a run is for: always when the lab has variants or one was given; otherwise only if the login
 *  name can be a student id (it is kept for `lab submit`, which can be told another). */
export function studentFor(lab: Pick<Lab, 'variants'>, given: string | undefined): string | undefined {
  if (given !== undefined || Object.keys(lab.variants ?? {}).length) return resolveStudent(given).id;
  try {
    return resolveStudent(undefined).id;
  } catch {
    return undefined;
  }
}
