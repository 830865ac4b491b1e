// Compose detection without depending on what this machine has installed: the probe is given answers.
import { describe, expect, it } from 'vitest';
import { COMPOSE_INSTALL, findCompose, missingComposeError, type Probe } from '../helpers/compose.js';

const answers =
  (a: Record<string, string | undefined>): Probe =>
  async (argv) =>
    a[argv.join(' ')];

describe('Compose detection', () => {
  it('prefers `docker compose` (v2) when both are installed', async () => {
    const c = await findCompose(answers({ 'docker compose': '2.29.7', 'docker-compose': '1.29.2' }));
    expect(c).toEqual({ argv: ['docker', 'compose'], version: '2.29.7', major: 2 });
  });

  it('falls back to docker-compose (v1) when the docker CLI has no compose plugin', async () => {
    // `docker compose version --short` on a CLI without the plugin fails ("unknown command"): the probe says undefined.
    const c = await findCompose(answers({ 'docker-compose': '1.29.2' }));
    expect(c).toEqual({ argv: ['docker-compose'], version: '1.29.2', major: 1 });
  });

  it('takes a standalone docker-compose 2.x as v2, and a leading v off the version', async () => {
    expect(await findCompose(answers({ 'docker-compose': 'v2.24.0' }))).toEqual({ argv: ['docker-compose'], version: '2.24.0', major: 2 });
  });

  it('ignores an answer that is not a version (a docker CLI that prints help for an unknown command)', async () => {
    expect(await findCompose(answers({ 'docker compose': 'Usage:  docker [OPTIONS] COMMAND' }))).toBeUndefined();
  });

  it('finds nothing when neither is there, and the error names the install command', async () => {
    expect(await findCompose(answers({}))).toBeUndefined();
    expect(missingComposeError().message).toContain('apt-get install -y docker-compose');
    expect(missingComposeError().message).toContain(COMPOSE_INSTALL);
  });
});
