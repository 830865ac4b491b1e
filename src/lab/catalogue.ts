// The labs shipped in labs/, and how a user names one: a number, a slug, or a path to a file.
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabError } from '../errors.js';
import { loadLabFile, type LoadedLab } from './load.js';
import { TCP_STATES, type Lab, type TcpState } from './schema.js';

const LABS_DIR = fileURLToPath(new URL('../../labs', import.meta.url));

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
  const labs = catalogue(dir);
  const found = /^\d+$/.test(ref) ? labs.find((l) => l.lab.id === Number(ref)) : labs.find((l) => l.lab.slug === ref);
  if (!found) {
    throw new LabError(`no lab '${ref}'`, `the labs are: ${labs.map((l) => `${l.lab.id} (${l.lab.slug})`).join(', ')}`);
  }
  return found;
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
