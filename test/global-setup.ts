// Every test run gets a temp folder of its own, given to the tests (and the CLIs they spawn) as TMPDIR, so
// that what a test leaves there is found and named even while other runs share /tmp; the run fails when a
// tcplab-* folder is left in it. Student state (progress, running labs) goes there too, never to ~/.local.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const saved = { TMPDIR: process.env.TMPDIR, TCPLAB_STATE_DIR: process.env.TCPLAB_STATE_DIR };
  // Not named tcplab-*: it is the folder the check looks into, not one it looks for.
  const root = mkdtempSync(join(tmpdir(), 'vitest-tcplab-run-'));
  // Set before the workers start: they and every process they spawn inherit it.
  process.env.TMPDIR = root;
  process.env.TCPLAB_STATE_DIR ??= join(root, 'state');
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    const left = readdirSync(root).filter((name) => name.startsWith('tcplab-'));
    rmSync(root, { recursive: true, force: true });
    if (left.length)
      throw new Error(`the tests left ${left.length} tcplab-* folder(s) in the temp dir: ${left.join(', ')} (remove them in afterAll)`);
  };
}
