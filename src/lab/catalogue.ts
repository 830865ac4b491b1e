// The labs shipped in labs/, and how a user names one: a number, a slug, or a path to a file.
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LabError } from '../errors.js';
import { loadLabFile, type LoadedLab } from './load.js';
import { TCP_STATES, type Lab, type TcpState } from './schema.js';
import { ownFile } from '../paths.js';

const LABS_DIR = ownFile('labs');

export function catalogue(dir = LABS_DIR): LoadedLab[] {
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(dir, f));
  return files.map((f) => loadLabFile(f)).sort((a, b) => a.lab.id - b.lab.id);
}

export function resolveLab(ref: string, dir = LABS_DIR): LoadedLab {
  if (/\.ya?ml$/.test(ref) || ref.includes('/')) {
    const path = resolve(ref);
    if (!existsSync(path))
      throw new LabError(`no lab file at ${ref}`, 'give a lab number, a slug from `lab list`, or a path to a .yaml file');
    return loadLabFile(path);
  }
  const named = byFileName(ref, dir);
  if (named) return named;
  const labs = catalogue(dir);
  const name = (l: LoadedLab) => `${l.lab.id} (${l.lab.slug})`;
  if (/^\d+$/.test(ref)) {
    const found = labs.find((l) => l.lab.id === Number(ref));
    if (found) return found;
    throw new LabError(`no lab ${ref}`, `the labs are numbered 1 to ${labs.length}: ${labs.map(name).join(', ')}`);
  }
  const exact = labs.find((l) => l.lab.slug === ref);
  if (exact) return exact;
  // The start of a slug is enough when only one slug starts that way: `lab start basic`.
  const key = ref.toLowerCase();
  const prefixed = labs.filter((l) => l.lab.slug.startsWith(key));
  if (prefixed.length === 1) return prefixed[0]!;
  if (prefixed.length > 1)
    throw new LabError(`'${ref}' is the start of ${prefixed.length} labs`, `which one? ${prefixed.map(name).join(', ')}`);
  const near = nearest(
    key,
    labs.map((l) => l.lab.slug),
  );
  const suggestions = labs.filter((l) => near.includes(l.lab.slug));
  throw new LabError(
    `no lab '${ref}'`,
    suggestions.length
      ? `did you mean ${suggestions.map(name).join(' or ')}? (\`lab list\` shows them all)`
      : `the labs are: ${labs.map(name).join(', ')}`,
  );
}

/**
 * The shipped labs' files are named NN-slug.yaml: a number or a whole slug finds its file by name, and only that
 * one lab is read, not the whole catalogue (a CLI that starts for one lab parses one file). Only a file whose
 * own id or slug is what was asked counts; anything else (a prefix, a typo, no such file) is the catalogue's.
 */
function byFileName(ref: string, dir: string): LoadedLab | undefined {
  const id = /^\d+$/.test(ref) ? Number(ref) : undefined;
  if (id === undefined && !/^[a-z0-9][a-z0-9-]*$/.test(ref)) return undefined;
  const wanted = (f: string) =>
    id !== undefined ? f.startsWith(`${String(id).padStart(2, '0')}-`) : f.endsWith(`-${ref}.yaml`) || f.endsWith(`-${ref}.yml`);
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && wanted(f));
  if (files.length !== 1) return undefined;
  const loaded = loadLabFile(join(dir, files[0]!));
  return (id !== undefined ? loaded.lab.id === id : loaded.lab.slug === ref) ? loaded : undefined;
}

/** Edit distance (insertions, deletions, substitutions), for suggesting a name close to a mistyped one. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * The slugs nearest to what was typed: those that contain it, or one of whose words (or the start of the slug)
 * is a few edits away from it, at most three, nearest first.
 */
export function nearest(typed: string, slugs: string[]): string[] {
  const score = (slug: string): number => {
    if (typed.length >= 3 && slug.includes(typed)) return 0;
    const parts = [slug, ...slug.split('-'), slug.slice(0, typed.length)];
    return Math.min(...parts.map((p) => distance(typed, p)));
  };
  const limit = Math.max(1, Math.floor(typed.length / 3));
  return slugs
    .map((slug) => ({ slug, d: score(slug) }))
    .filter((x) => x.d <= limit)
    .sort((a, b) => a.d - b.d || a.slug.localeCompare(b.slug))
    .slice(0, 3)
    .map((x) => x.slug);
}

/** The TCP states a lab makes observable: every state its expectations look for, CLOSED where it expects absence. */
export function observableStates(lab: Lab): TcpState[] {
  const seen = new Set<TcpState>();
  for (const step of lab.steps) {
    for (const e of [...(step.expect ?? []), ...(step.task?.expect ?? [])]) {
      const st = e.socket?.state;
      if (st) for (const s of Array.isArray(st) ? st : [st]) seen.add(s);
      if (e.absent) seen.add('CLOSED');
    }
  }
  return TCP_STATES.filter((s) => seen.has(s));
}
