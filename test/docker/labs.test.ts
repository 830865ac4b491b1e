// Labs 1 and 2 against a real engine: every check must pass because the kernel showed the state.
import { expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { newInstanceId } from '../../src/engine/provision.js';
import { runLab } from '../../src/engine/run-lab.js';
import type { LabEvent } from '../../src/engine/events.js';

describeDocker("the article's exercises in real containers", (env) => {
  for (const ref of ['1', '2']) {
    it(`lab ${ref} passes, with both sides observed`, async () => {
      const { lab } = resolveLab(ref);
      const events: LabEvent[] = [];
      const instance = env.track(newInstanceId());
      const result = await runLab(env.runtime, lab, { image: env.image, instance, emit: (e) => events.push(e) });
      const failed = result.steps.flatMap((s) => s.checks).filter((c) => !c.passed);
      expect(failed, JSON.stringify(failed, null, 2)).toEqual([]);
      expect(result.passed).toBe(true);
      expect(result.score.total).toBe(lab.steps.reduce((n, s) => n + (s.expect?.length ?? 0) + (s.task?.expect.length ?? 0), 0));
      // Every socket check was settled by a real ss line from the container.
      for (const c of result.steps.flatMap((s) => s.checks).filter((x) => x.kind === 'socket')) {
        expect(c.seen.join('\n')).toMatch(/^(ESTAB|SYN-SENT|SYN-RECV|LISTEN|TIME-WAIT|FIN-WAIT-\d|CLOSE-WAIT|LAST-ACK|CLOSING)\s/m);
      }
      expect(events.filter((e) => e.type === 'teardown')).toHaveLength(1);
      expect(await env.leftovers()).toEqual([]);
    });
  }

  it('a wrong expectation fails: the grader is not a rubber stamp', async () => {
    const { lab } = resolveLab('2');
    // Same lab, but claim the server reaches ESTABLISHED while its SYN|ACKs are dropped.
    const wrong = structuredClone(lab);
    const step = wrong.steps.find((s) => s.id === 'connect-half-open')!;
    step.expect = [{ on: 'server', socket: { state: 'ESTABLISHED', local: '{{server.ip}}:5555' }, within: '2s' }];
    wrong.steps = wrong.steps.slice(0, wrong.steps.indexOf(step) + 1);
    const result = await runLab(env.runtime, wrong, { image: env.image, instance: env.track(newInstanceId()) });
    expect(result.passed).toBe(false);
    const bad = result.steps.at(-1)!.checks[0]!;
    expect(bad.passed).toBe(false);
    // What it saw is listed socket by socket (after the first line, which says what is missing): none ESTABLISHED.
    expect(bad.seen.join('\n')).toMatch(/^no ESTABLISHED socket/);
    expect(bad.seen.join('\n').split('\n').slice(1).join('\n')).not.toMatch(/ESTAB/);
  });
});
