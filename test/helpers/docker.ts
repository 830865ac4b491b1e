// Docker-backed tests: skipped where no engine is reachable, but failing (not skipping) when
// LAB_REQUIRE_DOCKER=1, as CI sets it. Every test removes what it created; afterAll checks by label.
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { DockerRuntime } from '../../src/runtime/docker.js';
import { ensureImage } from '../../src/engine/image.js';
import { LABEL } from '../../src/plan/plan.js';
import { removeInstance } from '../../src/engine/teardown.js';

export const required = process.env.LAB_REQUIRE_DOCKER === '1';

async function reachable(): Promise<boolean> {
  try {
    await new DockerRuntime().info();
    return true;
  } catch {
    return false;
  }
}

const dockerReachable = await reachable();
if (required && !dockerReachable) {
  throw new Error('LAB_REQUIRE_DOCKER=1 but no Docker engine is reachable: start dockerd (see .ci/run) or unset LAB_REQUIRE_DOCKER');
}

/** describe() for tests that need a real engine; the image is built (or found) once per file. */
export function describeDocker(name: string, fn: (env: DockerTestEnv) => void): void {
  describe.skipIf(!dockerReachable)(name, () => {
    const env = new DockerTestEnv();
    beforeAll(async () => {
      env.image = await ensureImage(env.runtime, () => {});
    });
    afterAll(async () => {
      // Whatever a failing test left, remove it, then make sure nothing of ours remains.
      for (const id of env.instances) await removeInstance(env.runtime, id);
      const left = await env.leftovers();
      expect(left, 'containers or networks left behind').toEqual([]);
    });
    fn(env);
  });
}

class DockerTestEnv {
  runtime = new DockerRuntime();
  image = '';
  /** Instance ids this file created; leftovers are looked for among these only (other processes may run labs). */
  instances = new Set<string>();

  track(id: string): string {
    this.instances.add(id);
    return id;
  }

  async leftovers(): Promise<string[]> {
    const out: string[] = [];
    for (const id of this.instances) {
      const labels = { [LABEL.managed]: 'true', [LABEL.instance]: id };
      out.push(...(await this.runtime.listContainers(labels)).map((c) => `container ${c.name}`));
      out.push(...(await this.runtime.listNetworks(labels)).map((n) => `network ${n.name}`));
    }
    return out;
  }
}
