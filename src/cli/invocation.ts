// How the student started tcplab, so that every screen that says "in another terminal, run ..." names a command
// they can actually type: `lab` when the `lab` on their PATH is this tcplab (installed with npm install -g),
// `npx lab` when they came through npx (a clone), and otherwise the very `node .../bin/lab.js` they typed.
import { realpathSync } from 'node:fs';
import { delimiter, isAbsolute, join, relative, resolve } from 'node:path';
import { ownFile } from '../paths.js';

const OUR_BIN = ownFile('bin', 'lab.js');

interface Invocation {
  /** process.argv[1]: the script node was given, as the shell or npm passed it. */
  script: string | undefined;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** The real path of a file, or undefined when there is none. */
  realpath: (path: string) => string | undefined;
}

function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/** The words that start tcplab, as this user can type them again (pure: everything it looks at is passed in). */
export function labCommandFor(inv: Invocation, ourBin = OUR_BIN): string {
  const ours = inv.realpath(ourBin) ?? ourBin;
  // npx (npm exec) sets these for the program it runs; a shell the student opens later does not have them.
  const npx = inv.env.npm_command === 'exec' || inv.env.npm_lifecycle_event === 'npx';
  // `lab` on the PATH, if it is this tcplab: the first `lab` the shell would find. Under npx, not in the folders
  // npm put at the front of the PATH for this one run (node_modules/.bin, and the npx cache's, whose `lab` is
  // this very tcplab): another terminal has none of them, and `lab` there is not found.
  for (const dir of (inv.env.PATH ?? '').split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    if (npx && /[\\/](node_modules[\\/]\.bin|node-gyp-bin)[\\/]?$/.test(dir)) continue;
    const found = inv.realpath(join(dir, 'lab'));
    if (found) {
      if (found === ours) return 'lab';
      break;
    }
  }
  if (npx) return 'npx lab';
  if (!inv.script) return 'npx lab';
  const script = resolve(inv.cwd, inv.script);
  const rel = relative(inv.cwd, script);
  const shown = !rel.startsWith('..') && !isAbsolute(rel) ? (rel.includes('/') ? rel : `./${rel}`) : script;
  return `node ${shown}`;
}

let cached: string | undefined;

/** `lab`, `npx lab` or `node bin/lab.js`: what to print before `shell client`, `check`, `status --watch`. */
export function labCommand(): string {
  cached ??= labCommandFor({ script: process.argv[1], env: process.env, cwd: process.cwd(), realpath: realpathOrUndefined });
  return cached;
}
