// DOCKER_HOST=ssh://user@host[:port]: tcplab reaches the engine through the user's own ssh (keys, config,
// known_hosts), as the docker CLI does, and grades a lab there. The far side is this machine's engine through
// a private sshd on 127.0.0.1 (test/helpers/sshd.ts).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, required } from '../helpers/docker.js';
import { SSHD, SSHD_INSTALL, TestSshd } from '../helpers/sshd.js';
import { LabRun } from '../reliability/cli.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

if (required && !SSHD) throw new Error(`LAB_REQUIRE_DOCKER=1 but sshd is missing for the ssh:// engine test: ${SSHD_INSTALL}`);

describeDocker('an engine reached over ssh://', (env) => {
  const sshd = new TestSshd();
  const state = mkdtempSync(join(tmpdir(), 'tcplab-ssh-state-'));
  beforeAll(async () => {
    if (SSHD) await sshd.start();
  });
  afterAll(async () => {
    await sshd.stop();
    rmSync(state, { recursive: true, force: true });
  });

  it.skipIf(!SSHD)(
    "DOCKER_HOST=ssh://root@127.0.0.1:PORT: lab grade 1 passes through the user's ssh",
    async () => {
      const host = `ssh://root@127.0.0.1:${sshd.port}`;
      const exit = await new LabRun(['grade', '1', '--json'], {
        env: { DOCKER_HOST: host, PATH: sshd.path('good'), TCPLAB_STATE_DIR: state },
      }).exited;
      const out = JSON.parse(exit.stdout || '{}') as { passed?: boolean; labs?: { instance: string; passed: boolean }[] };
      for (const l of out.labs ?? []) env.track(l.instance);
      expect(exit.code, exit.stderr).toBe(0);
      expect(out.passed).toBe(true);
      expect(out.labs?.[0]?.passed).toBe(true);
      // sshd saw our key log in (not some other way to the engine).
      expect(sshd.log).toMatch(/Accepted publickey for root from 127\.0\.0\.1/);
      expect(await env.leftovers()).toEqual([]);
    },
    120_000,
  );

  it.skipIf(!SSHD)(
    'a key the host does not accept: exit 3, naming the ssh:// endpoint and what ssh said',
    async () => {
      const host = `ssh://root@127.0.0.1:${sshd.port}`;
      const exit = await new LabRun(['grade', '1'], { env: { DOCKER_HOST: host, PATH: sshd.path('bad'), TCPLAB_STATE_DIR: state } }).exited;
      expect(exit.code, exit.stderr).toBe(3);
      expect(exit.stderr).toContain(`cannot reach the Docker engine at ${host} (DOCKER_HOST)`);
      expect(exit.stderr).toMatch(/Permission denied \(publickey\)/);
      expect(exit.stderr).toMatch(/hint:.*ssh-copy-id/);
      expect(exit.stderr).not.toMatch(/internal error|\n\s+at /);
    },
    60_000,
  );
});
