// Every test run gets a temp folder of its own, given to the tests (and the CLIs they spawn) as TMPDIR, so
// that what a test leaves there is found and named even while other runs share /tmp; the run fails when a
// tcplab-* folder is left in it. Student state (progress, running labs) goes there too, never to ~/.local
// (test/file-setup.ts gives each file a folder of its own inside it).
//
// Each project of vitest.config.ts runs its own global set-up, all in vitest's one main process, each with its
// own copy of this module: the first makes the folder, the others use it, and whichever teardown comes last
// checks and removes it. What they share is kept in that process's environment.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SHARED = 'TCPLAB_TEST_RUN';

interface Shared {
  root: string;
  users: number;
  saved: Record<string, string | undefined>;
}

const read = (): Shared | undefined => (process.env[SHARED] ? (JSON.parse(process.env[SHARED]) as Shared) : undefined);
const write = (s: Shared): void => void (process.env[SHARED] = JSON.stringify(s));

export default function setup(): () => void {
  const shared = read();
  if (shared) write({ ...shared, users: shared.users + 1 });
  else {
    const saved = { TMPDIR: process.env.TMPDIR, TCPLAB_STATE_DIR: process.env.TCPLAB_STATE_DIR };
    // Not named tcplab-*: it is the folder the check looks into, not one it looks for.
    const root = mkdtempSync(join(tmpdir(), 'vitest-tcplab-run-'));
    write({ root, users: 1, saved });
    // Set before the workers start: they and every process they spawn inherit it.
    process.env.TMPDIR = root;
    process.env.TCPLAB_STATE_DIR ??= join(root, 'state');
  }
  return teardown;
}

function teardown(): void {
  const shared = read();
  if (!shared) return;
  if (shared.users > 1) return write({ ...shared, users: shared.users - 1 });
  delete process.env[SHARED];
  for (const [k, v] of Object.entries(shared.saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const left = readdirSync(shared.root).filter((name) => name.startsWith('tcplab-'));
  rmSync(shared.root, { recursive: true, force: true });
  if (left.length)
    throw new Error(`the tests left ${left.length} tcplab-* folder(s) in the temp dir: ${left.join(', ')} (remove them in afterAll)`);
}
