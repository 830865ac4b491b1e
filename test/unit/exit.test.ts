// The launcher ends the process once a command has returned, even when something the command opened is still
// open (an engine request that never answered, a session a removed container took with it): a leak must never
// keep a student's terminal. CI once saw `lab ui` print why it stopped and then never exit.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'exit-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// Loaded before tcplab: a handle that never closes, as a leak would be.
const leak = join(dir, 'leak.cjs');
writeFileSync(leak, 'setInterval(() => {}, 1000);\n');

function lab(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--require', leak, 'bin/lab.js', ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, NO_COLOR: '1', ...env },
  });
}

describe('the process ends when the command does', () => {
  it('with the exit code and the output of the command, though a handle is still open', () => {
    const ok = lab(['list']);
    expect(ok.error).toBeUndefined(); // not killed by the timeout
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/incomplete-handshake/);
    const bad = lab(['no-such-command']);
    expect(bad.error).toBeUndefined();
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown command 'no-such-command'/);
  });

  it('names what was left open, for developers (DEBUG=lab)', () => {
    const r = lab(['list'], { DEBUG: 'lab' });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/still open after the command ended: .*Timeout/);
  });

  it('says nothing of leaks when nothing was left open', () => {
    const r = spawnSync(process.execPath, ['bin/lab.js', 'list'], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, DEBUG: 'lab' },
    });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/still open/);
  });
});
