// Runs in each test file's worker before the file: a student state folder of the file's own inside the run's
// (test/global-setup.ts), so that files run two at a time never see each other's running labs or progress. A
// test that sets TCPLAB_STATE_DIR for the CLIs it starts still decides for them.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';

const runState = process.env.TCPLAB_STATE_DIR;
if (runState) {
  mkdirSync(runState, { recursive: true });
  process.env.TCPLAB_STATE_DIR = mkdtempSync(join(runState, 'file-'));
}
