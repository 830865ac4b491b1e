// How a graded answer's commands are replayed and reported, by the real CLI against the real engine (Lab 2's
// task): a command that ended on its own is reported ended, with its exit status (`running: false, exit: N`, as
// docs/instructors.md shows it), in the timeline form and in the older per-machine form alike; and one that had
// ended before the student's next command is waited for before that command starts, however long it took, so
// that the next one (a `kill -9 -1`, say) cannot reach it. test/unit/answer-replay.test.ts covers the order and
// the timing on a fake host; this is what the node's agent (tcplab-agent student --interrupt-on-eof) and the
// engine make of it.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import type { SubmissionResult } from '../../src/submit/batch.js';

const run = promisify(execFile);
const bin = new URL('../../bin/lab.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'tcplab-replay-'));
const RULE = 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP';

const files: Record<string, string> = {
  // Every command ended on its own, as the student's prompt came back: none is running at the checks.
  'alice.yaml': `student: alice
lab: 2
answers:
  drop-syn:
    - client: ${RULE}
      at: 0s
      exit: 0
    - client: sleep 1; echo slept
      at: 1s
      exit: 0
    - client: "true"
      at: 2s
      exit: 0
    - client: iptables -S OUTPUT
      at: 2.5s
      exit: 0
    - client: exit 3
      at: 3s
      exit: 3
`,
  // The older form: the machine's lines ended (nothing was left running).
  'bob.yaml': `student: bob
lab: 2
answers:
  drop-syn:
    client: |
      ${RULE}
`,
  // A command that took 4 s and had ended before the next one, which kills every process the student may: the
  // replay waits for the first (longer than its slack after a start, since the student waited 5.5 s), so the
  // kill cannot end it.
  'carol.yaml': `student: carol
lab: 2
answers:
  drop-syn:
    - client: ${RULE}
      at: 0s
      exit: 0
    - client: sleep 4; echo slow
      at: 0.5s
      exit: 0
    - client: kill -9 -1
      at: 6s
`,
};

describeDocker('lab grade: how an answer was replayed', (env) => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports each command that ended with its exit status, and waits for it before the next command', async () => {
    const subs = join(dir, 'submissions');
    mkdirSync(subs, { recursive: true });
    for (const [name, text] of Object.entries(files)) writeFileSync(join(subs, name), text);
    let stdout = '';
    let stderr = '';
    let code = 0;
    try {
      ({ stdout, stderr } = await run('node', [bin, 'grade', '2', '--submissions', subs, '--parallel', '3', '--retries', '0', '--json'], {
        env: { ...process.env, TCPLAB_STATE_DIR: dir },
      }));
    } catch (e) {
      ({ stdout, stderr, code } = e as { code: number; stdout: string; stderr: string });
    }
    const doc = JSON.parse(stdout) as { submissions: SubmissionResult[] };
    for (const r of doc.submissions) if (r.instance) env.track(r.instance);
    const by = Object.fromEntries(doc.submissions.map((r) => [r.student, r]));
    const answer = (step: string, command: string, rest: object) => ({ step, node: 'client', command, ...rest });

    expect(by.alice!.answers).toEqual([
      answer('drop-syn', RULE, { running: false, exit: 0, output: '' }),
      answer('drop-syn', 'sleep 1; echo slept', { running: false, exit: 0, output: 'slept' }),
      answer('drop-syn', 'true', { running: false, exit: 0, output: '' }),
      answer('drop-syn', 'iptables -S OUTPUT', {
        running: false,
        exit: 0,
        output: expect.stringMatching(/^-P OUTPUT ACCEPT\n-A OUTPUT -p tcp -m tcp --dport 5555 .*-j DROP$/),
      }),
      answer('drop-syn', 'exit 3', { running: false, exit: 3, output: '' }),
    ]);
    expect(by.bob!.answers).toEqual([answer('drop-syn', RULE, { running: false, exit: 0, output: '' })]);
    const carol = by.carol!.answers!;
    expect(carol.slice(0, 2)).toEqual([
      answer('drop-syn', RULE, { running: false, exit: 0, output: '' }),
      // Ended by itself before the kill started: not killed by it (137), and its output all there.
      answer('drop-syn', 'sleep 4; echo slow', { running: false, exit: 0, output: 'slow' }),
    ]);
    expect(carol[2]).toMatchObject({ command: 'kill -9 -1', running: false });
    // The right rule, whatever came after it: every one passes.
    for (const r of doc.submissions) expect(r, `${r.student}: ${stderr}`).toMatchObject({ gradable: true, passed: true, score: 20 });
    expect(code).toBe(0);
    expect(await env.leftovers()).toEqual([]);
  });
});
