// Every lab of the catalogue, graded in real containers: each must pass because the kernel really showed the
// states, counters and command results its expectations name. The helper checks nothing is left behind.
import { expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { catalogue } from '../../src/lab/catalogue.js';
import { newInstanceId } from '../../src/engine/provision.js';
import { runLab } from '../../src/engine/run-lab.js';

const labs = catalogue();

describeDocker('the lab catalogue in real containers', (env) => {
  it.each(labs.map((l) => [l.lab.id, l.lab.slug, l.lab] as const))(
    'lab %i (%s) passes',
    async (_id, _slug, lab) => {
      const instance = env.track(newInstanceId());
      const result = await runLab(env.runtime, lab, { image: env.image, instance });
      const failed = result.steps.flatMap((s) =>
        s.checks.filter((c) => !c.passed).map((c) => `${s.id}: ${c.expected}; seen ${c.seen.join(' | ')}`),
      );
      expect(result.error, 'lab error').toBeUndefined();
      expect(failed, 'failed checks').toEqual([]);
      expect(result.score.total).toBeGreaterThan(0);
      expect(result.passed).toBe(true);
      expect(await env.leftovers(), 'containers or networks of this lab left behind').toEqual([]);
    },
    120_000,
  );
});
