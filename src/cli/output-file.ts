// Files and folders a command writes because an option named them (lab new -o, lab grade --junit, ...). A path
// that cannot be written is the user's mistake, not a bug: it is said plainly (exit 2), and said before the
// command does its work, so `lab grade --gradebook typo/g.csv` does not grade a whole class first.
import { mkdirSync, statSync, writeFileSync, type WriteFileOptions } from 'node:fs';
import { dirname } from 'node:path';
import { LabError } from '../errors.js';

function kindOf(path: string): 'folder' | 'file' | undefined {
  try {
    return statSync(path).isDirectory() ? 'folder' : 'file';
  } catch {
    return undefined;
  }
}

/**
 * Throw a LabError unless FILE, named by `option`, can be written: its folder exists, and FILE is not a folder.
 * Creates nothing.
 */
export function checkOutputFile(option: string, file: string): void {
  const folder = dirname(file);
  const kind = kindOf(folder);
  if (kind === undefined)
    throw new LabError(
      `${option} ${file}: the folder ${folder} does not exist`,
      `create it first (mkdir -p ${folder}), or choose another path`,
    );
  if (kind === 'file') throw new LabError(`${option} ${file}: ${folder} is a file, not a folder`, 'choose another path');
  if (kindOf(file) === 'folder') throw new LabError(`${option} ${file}: that is a folder`, 'name a file to write');
}

/**
 * Throw a LabError unless DIR, named by `option`, is a folder or can be made one (mkdir -p): nothing on the way
 * to it is a file. Creates nothing.
 */
export function checkOutputFolder(option: string, dir: string): void {
  for (let p = dir; ; p = dirname(p)) {
    const kind = kindOf(p);
    if (kind === 'folder') return;
    if (kind === 'file')
      throw new LabError(`${option} ${dir}: ${p === dir ? 'that is a file' : `${p} is a file`}, not a folder`, 'choose another folder');
    if (dirname(p) === p) return;
  }
}

/** What a failed write says: the path and the system's reason, without a stack. */
function cannotWrite(option: string, path: string, e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (!err.code) return e;
  const why =
    err.code === 'ENOENT'
      ? `the folder ${dirname(path)} does not exist`
      : err.code === 'EACCES' || err.code === 'EPERM'
        ? 'permission denied'
        : err.code === 'EEXIST'
          ? 'it already exists'
          : err.code === 'EISDIR'
            ? 'that is a folder'
            : err.code === 'ENOTDIR'
              ? 'a part of the path is a file, not a folder'
              : err.message;
  return new LabError(`${option} ${path}: cannot write it: ${why}`, 'choose a path in a folder you can write to');
}

/** writeFileSync, with a failure said as a LabError. */
export function writeOutputFile(option: string, file: string, data: string, options?: WriteFileOptions): void {
  try {
    writeFileSync(file, data, options);
  } catch (e) {
    throw cannotWrite(option, file, e);
  }
}

/** mkdirSync -p, with a failure said as a LabError. */
export function makeOutputFolder(option: string, dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw cannotWrite(option, dir, e);
  }
}
