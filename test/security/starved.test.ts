// A state that must last (`for`) proves something only if what would end it could run meanwhile. Seen in a
// class graded on one busy host: another lab's fork bomb kept Lab 2's probe (nc, on the client) off the CPU,
// so "no SYN_RECV or ESTABLISHED on the server for 1s" held at every look, and a null answer earned its 6
// points. Now each machine's agent says how many processes of the lab's own commands (probes, answers, lab
// commands: its process groups) are runnable, and a hold counts only over a window in which none were, on
// every machine (decide() and quietOf(), tested on their own in test/unit/grade.test.ts).
//
// Here the lab's own command that cannot be done is a busy loop on the client: always runnable, as the probe's
// nc is while the host is starved. A student's own busy loop (lab shell, outside the agent) must not stop a
// hold: it is not what a check waits on, and a student could use it to keep a right answer from being met.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import type { Task } from '../../src/lab/schema.js';
import type { Instance } from '../../src/engine/instance.js';
import { createInstance } from '../../src/engine/provision.js';
import { bareLab } from '../helpers/lab.js';

const docker = promisify(execFile);
const lab = bareLab(994, 'starved-test');
const SPIN = 'while :; do :; done';

/** A task whose check is an absence that must last, with `probe` run first. */
const task = (probe: Task['probe']): Task => ({
  prompt: 'p',
  solution: [],
  ...(probe ? { probe } : {}),
  expect: [{ on: 'server', absent: { state: ['ESTABLISHED'], local: '*:5555' }, for: '1s', within: '3s' }],
});

describeDocker('a state that must last, while the lab could act', (env) => {
  let inst: Instance;
  beforeAll(async () => {
    inst = await createInstance(env.runtime, lab, { image: env.image, instance: env.track(`stv${Date.now().toString(36).slice(-5)}`) });
  });
  afterAll(async () => {
    await inst?.down();
  });

  it("is not met while one of the lab's own commands stays runnable, and says it can't tell", async () => {
    const [check] = await inst.checkTask('s', task([{ on: 'client', run: ['sh', '-c', SPIN], name: 'spin', background: true }]));
    expect(check!.passed, check!.seen.join('\n')).toBe(false);
    expect(check!.seen.join('\n')).toMatch(/can't tell whether it lasted: 1 of the lab's own processes on client was runnable/);
  });

  it("is met the same way with nothing of the lab's running, and with a student's own busy loop in their shell", async () => {
    const [quiet] = await inst.checkTask('s', task(undefined));
    expect(quiet!.passed, quiet!.seen.join('\n')).toBe(true);
    // As `lab shell` would run it: docker exec as the student (root), not through the agent.
    await docker('docker', ['exec', '-d', inst.container('client'), 'sh', '-c', SPIN]);
    try {
      const [check] = await inst.checkTask('s', task(undefined));
      expect(check!.passed, check!.seen.join('\n')).toBe(true);
    } finally {
      await docker('docker', ['exec', inst.container('client'), 'pkill', '-f', SPIN]);
    }
  });
});
