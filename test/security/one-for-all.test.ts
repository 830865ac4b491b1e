// Red team, fourth round: an answer for the whole class. Lab 1 gives each student a port of their own (a
// variant), so that a classmate's file, copied, fails. An answer written for every port of the range at once (a
// listener on each of 5600-5699 and a connection to each) fits every student and can be handed round: the task
// now asks that the client asked for connections to the student's own port, not to a hundred.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { expectOnlyHonestPasses, gradeAnswers, lab1Honest, lab1Port } from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-one-for-all-'));

describeDocker('red team: one answer for every student', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("Lab 1: a listener and a connection on every variant's port is not an answer for the student's own", async () => {
    const port = lab1Port('honest-after-tries');
    const by = await gradeAnswers(dir, '1', 'your-turn', {
      honest: lab1Honest(),
      // Fifteen connections refused while no listener was up (a student who started on the wrong side), then
      // the right answer.
      'honest-after-tries': [
        { on: 'client', script: `for i in $(seq 15); do nc -z -w 1 {{server.ip}} ${port}; done`, at: '0s', exit: 1 },
        { on: 'server', script: `nc -l ${port}`, at: '3s' },
        { on: 'client', script: `echo hi | nc -q0 {{server.ip}} ${port}`, at: '4s', exit: 0 },
      ],
      'every-port': [
        { on: 'server', script: 'for p in $(seq 5600 5699); do nc -l $p & done; wait', at: '0s' },
        { on: 'client', script: 'for p in $(seq 5600 5699); do echo hi | nc -q0 -w 1 {{server.ip}} $p; done; true', at: '1s', exit: 0 },
      ],
    });
    expectOnlyHonestPasses(by, ['every-port']);
  });
});
