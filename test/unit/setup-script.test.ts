// A node's setup runs as one `sh -c` in its container: every command in order, argv kept intact (no word
// splitting or expansion of what the planner wrote), stopping at the first failure and naming it.
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { setupScript } from '../../src/engine/provision.js';

function sh(setup: string[][]) {
  const [cmd, ...args] = setupScript(setup);
  return spawnSync(cmd!, args, { encoding: 'utf8' });
}

describe('setupScript', () => {
  it('runs every command in order with its arguments intact', () => {
    const r = sh([
      ['printf', '%s|', 'a b', "it's", '$(echo x)', '*'],
      ['printf', '%s\n', 'end'],
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("a b|it's|$(echo x)|*|end\n");
  });

  it('stops at the first failing command and names it', () => {
    const r = sh([['true'], ['sh', '-c', 'exit 3'], ['echo', 'never']]);
    expect(r.status).toBe(3);
    expect(r.stdout).not.toContain('never');
    expect(r.stderr).toContain('(sh -c exit 3) exited 3');
  });

  it('is a plain argv for the exec', () => {
    expect(setupScript([['ip', 'route', 'flush', 'exact', '0.0.0.0/0']]).slice(0, 2)).toEqual(['sh', '-c']);
    expect(execFileSync('sh', ['-n', '-c', setupScript([['a'], ['b', 'c d']])[2]!]).toString()).toBe('');
  });
});
