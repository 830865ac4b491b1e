// lab submit, for real: in tmux, a student walks Lab 2 at a terminal, gets its task wrong in `lab shell client`
// (a REJECT), fixes it, passes `lab check` in a third window, types one more command, and quits. `lab submit`
// then writes what was typed during the task, up to the check that passed, with the server's address as a
// template; and the instructor's `lab grade 2 --submission FILE` replays it in a fresh instance and passes it.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, required } from '../helpers/docker.js';
import { LABEL } from '../../src/plan/plan.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { answersOf, validateSubmissionText } from '../../src/submit/submission.js';
import type { SubmissionResult } from '../../src/submit/batch.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { haveTmux, studentEnv, terminal } from '../helpers/tmux.js';

afterAll(removeTempDirs);

if (!haveTmux && required) throw new Error('LAB_REQUIRE_DOCKER=1 but tmux is missing: apt-get install -y tmux (see .ci/run)');

const LAB = resolve(import.meta.dirname, '../../bin/lab.js');
const stateDir = tempDir('tcplab-submit-');
const { open, type, typeLine, until, command, kill } = terminal(`tcplab-submit-${process.pid}`, studentEnv({ TCPLAB_STATE_DIR: stateDir }));

/** The shell in the lab machine shows its prompt once more than before. */
async function prompt(win: string, times: number): Promise<void> {
  await until(win, 'root@client:/#', { times });
}

describeDocker('lab submit through a real terminal', (denv) => {
  beforeAll(() => {
    if (!haveTmux) return;
    open('lab', ['shell', 'term']);
  });
  afterAll(() => {
    if (haveTmux) kill();
  });

  it.skipIf(!haveTmux)('hands in the commands of the task, up to the check that passed, and they grade as passed', async () => {
    typeLine('lab', `node ${LAB} start 2 --student alice`);
    const started = await until('lab', /Lab instance ([0-9a-f]{8}) ready/, { ms: 120_000 });
    const id = denv.track(/Lab instance ([0-9a-f]{8}) ready/.exec(started)![1]!);
    const server = /server (198\.1[89]\.\d+\.\d+)/.exec(await until('lab', /Machines: .*server 198\./))![1]!;
    await until('lab', 'Check my work');

    typeLine('shell', `node ${LAB} shell client`);
    await prompt('shell', 1);
    typeLine('shell', 'iptables -I OUTPUT -p tcp --dport 5555 -j REJECT');
    await prompt('shell', 2);
    let r = await command('term', `node ${LAB} check`);
    expect(r.code).toBe(1);
    typeLine('shell', `ip route get ${server} >/dev/null`);
    await prompt('shell', 3);
    typeLine('shell', 'iptables -D OUTPUT -p tcp --dport 5555 -j REJECT; iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP');
    await prompt('shell', 4);
    r = await command('term', `node ${LAB} check`);
    expect(r.code).toBe(0);
    // After the check that passed: not part of the answer.
    typeLine('shell', 'iptables -S OUTPUT');
    await prompt('shell', 5);
    // The command named is the one this student can type (lab, npx lab or node .../lab.js: it depends on how the
    // tests were started), and a long one may wrap.
    await until('lab', /✓ task done \(checked by `[^`]*check`, attempt 2\)/);
    await until('lab', /Recorded 3 commands you typed for this task/);
    typeLine('shell', 'exit');

    // Quit at the menu after the step (the last of its seven choices): the lab goes, the record stays.
    await until('lab', '❯ Continue to the next step');
    type('lab', 'Down', 'Down', 'Down', 'Down', 'Down', 'Down');
    await until('lab', '❯ Quit (removes the lab unless --keep)');
    type('lab', 'Enter');
    await until('lab', /Removed the lab/);
    const labels = { [LABEL.managed]: 'true', [LABEL.instance]: id };
    for (const deadline = Date.now() + 20_000; ;) {
      if ((await denv.runtime.listContainers(labels)).length === 0) break;
      if (Date.now() > deadline) throw new Error(`instance ${id} left behind`);
      await new Promise((res) => setTimeout(res, 200));
    }

    // The student hands in, offline as far as the file goes.
    const file = join(stateDir, 'alice-lab2.yaml');
    r = await command('term', `node ${LAB} submit -o ${file}`);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/wrote .*alice-lab2\.yaml: lab 2 \(incomplete-handshake\) for alice, 1 of 1 tasks/);
    const text = readFileSync(file, 'utf8');
    const loaded = validateSubmissionText(text, resolveLab('2').lab);
    expect(loaded.ok).toBe(true);
    expect(loaded.ok && loaded.submission.student).toBe('alice');
    // One timeline: each command on its machine, in the order typed, with how it ended.
    const answer = loaded.ok ? answersOf(loaded.submission)['drop-syn'] : undefined;
    expect(answer?.map((a) => [a.node, a.script, a.end?.by, a.end?.by === 'exit' ? a.end.exit : undefined])).toEqual([
      ['client', 'iptables -I OUTPUT -p tcp --dport 5555 -j REJECT', 'exit', 0],
      ['client', 'ip route get {{server.ip}} >/dev/null', 'exit', 0],
      ['client', 'iptables -D OUTPUT -p tcp --dport 5555 -j REJECT; iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP', 'exit', 0],
    ]);
    expect(text).toContain('(lab check passed at attempt 2)');
    expect(text).not.toContain('iptables -S OUTPUT');
    expect(text).not.toContain(server);

    // The instructor grades it: replayed in a fresh instance, the wrong rule and its fix included, it passes.
    const json = join(stateDir, 'grade.json');
    r = await command('term', `node ${LAB} grade 2 --submission ${file} --json > ${json}`, 180_000);
    const graded = JSON.parse(readFileSync(json, 'utf8')) as { submissions: SubmissionResult[] };
    const g = graded.submissions[0]!;
    if (g.instance) denv.track(g.instance);
    expect(g).toMatchObject({ student: 'alice', gradable: true, passed: true });
    expect(g.score).toBe(g.maxScore);
    expect(r.code).toBe(0);
  });
});
