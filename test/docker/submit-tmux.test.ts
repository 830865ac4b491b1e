// lab submit, for real: in tmux, a student walks Lab 2 at a terminal, gets its task wrong in `lab shell client`
// (a REJECT), fixes it, passes `lab check` in a third window, types one more command, and quits. `lab submit`
// then writes what was typed during the task, up to the check that passed, with the server's address as a
// template; and the instructor's `lab grade 2 --submission FILE` replays it in a fresh instance and passes it.
// Then Lab 7 (issue 17 item 7), whose task spans three machines and ends with a Ctrl-C: a listener in one
// terminal, the client in another, the Ctrl-C on the server's nc, `lab check` passing at attempt 2. `lab submit`
// writes one timeline (the listener still without `&`, the Ctrl-C and when), tries it in a fresh instance
// itself and says it passes; `lab grade 7 --submission` passes it too. With the Ctrl-C taken out of the record,
// `lab submit` says plainly that the file would not pass, and why.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, required } from '../helpers/docker.js';
import { LABEL } from '../../src/plan/plan.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { answersOf, validateSubmissionText } from '../../src/submit/submission.js';
import type { SubmissionResult } from '../../src/submit/batch.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { count, haveTmux, pause, studentEnv, terminal } from '../helpers/tmux.js';
import type { LabWork } from '../../src/walk/state-files.js';

afterAll(removeTempDirs);

if (!haveTmux && required) throw new Error('LAB_REQUIRE_DOCKER=1 but tmux is missing: apt-get install -y tmux (see .ci/run)');

const LAB = resolve(import.meta.dirname, '../../bin/lab.js');
const stateDir = tempDir('tcplab-submit-');
const { open, newWindow, screen, type, typeLine, until, command, kill } = terminal(
  `tcplab-submit-${process.pid}`,
  studentEnv({ TCPLAB_STATE_DIR: stateDir }),
);

/** The shell in the lab machine shows its prompt once more than before. */
async function prompt(win: string, times: number): Promise<void> {
  await until(win, 'root@client:/#', { times });
}

/** Type a command at a lab machine's shell prompt, as a person does, and wait for the next prompt. */
async function atPrompt(win: string, cmd: string): Promise<void> {
  const prompts = count(screen(win), /^root@\w+:\/# /m);
  typeLine(win, cmd);
  await until(win, /^root@\w+:\/# /m, { times: prompts + 1 });
}

/** The walk's menu with this choice highlighted is the last thing on the screen. */
async function menu(win: string, choice: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const lines = screen(win).trimEnd().split('\n');
    if (lines.slice(-14).some((l) => l.includes(`❯ ${choice}`))) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ❯ ${choice}; the screen:\n${lines.slice(-30).join('\n')}`);
    await pause(100);
  }
}

/** Walk on until the step whose header is `header`: Enter at each menu, the first choice at each prediction. */
async function walkTo(win: string, header: string, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  let seen = '';
  for (;;) {
    const text = screen(win).trimEnd();
    if (text.includes(header)) return;
    const lines = text.split('\n');
    const tail = lines.slice(-14);
    const state = `${lines.length}:${tail.join('\n')}`;
    if (state !== seen) {
      if (tail.some((l) => l.includes('❯ Continue to the next step'))) {
        seen = state;
        type(win, 'Enter');
      } else if (tail.some((l) => l.startsWith('? Predict:')) && tail.some((l) => /^ {2}a\) /.test(l))) {
        seen = state;
        type(win, 'a', 'Enter');
      }
    }
    if (Date.now() > deadline) throw new Error(`timed out walking to ${header}; the screen:\n${lines.slice(-30).join('\n')}`);
    await pause(200);
  }
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
    r = await command('term', `node ${LAB} submit -o ${file} --no-verify`);
    expect(r.code).toBe(0);
    expect(r.out).toContain('not tried: --no-verify');
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

  it.skipIf(!haveTmux)(
    'Lab 7: a listener, the client in another terminal, a Ctrl-C on the server: the hand-in passes as lab check did',
    { timeout: 900_000 },
    async () => {
      for (const w of ['lab7', 'fw', 'srv', 'cli']) newWindow(w);
      typeLine('lab7', `node ${LAB} start 7 --student bob`);
      const started = await until('lab7', /Lab instance ([0-9a-f]{8}) ready/, { ms: 120_000 });
      const id = denv.track(/Lab instance ([0-9a-f]{8}) ready/.exec(started)![1]!);
      await walkTo('lab7', '── Step 5/5');
      await menu('lab7', 'Check my work');
      const text = screen('lab7');
      const server = /Machines: .*server (198\.1[89]\.\d+\.\d+)/.exec(text)![1]!;

      // The rule, in the firewall's shell.
      typeLine('fw', `node ${LAB} shell firewall`);
      await until('fw', /^root@firewall:\/# /m);
      await atPrompt('fw', `iptables -A FORWARD -s ${server} -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP`);
      // The listener in the server's, left running in the foreground (no &).
      typeLine('srv', `node ${LAB} shell server`);
      await until('srv', /^root@server:\/# /m);
      typeLine('srv', 'nc -l 5556');
      for (const deadline = Date.now() + 20_000; ;) {
        const st = await command('term', `node ${LAB} status`);
        if (/LISTEN.*:5556/.test(st.out)) break;
        if (Date.now() > deadline) throw new Error(`the server never listened on 5556:\n${st.out}`);
        await pause(300);
      }
      // The client in a third terminal, also left running.
      typeLine('cli', `node ${LAB} shell client`);
      await until('cli', /^root@client:\/# /m);
      typeLine('cli', `nc ${server} 5556`);
      for (const deadline = Date.now() + 20_000; ;) {
        const st = await command('term', `node ${LAB} status`);
        if (/ESTAB.*:5556/.test(st.out)) break;
        if (Date.now() > deadline) throw new Error(`the client never connected:\n${st.out}`);
        await pause(300);
      }
      // Too early: nobody has closed yet.
      let r = await command('term', `node ${LAB} check`);
      expect(r.code, r.out).toBe(1);
      await until('lab7', /✗ not yet \(checked by `[^`]*check`, attempt 1\)|✗ not yet \(`[^`]*check`, attempt 1\)/);
      // Ctrl-C on the server's nc: its prompt comes back.
      type('srv', 'C-c');
      await until('srv', /^root@server:\/# /m, { times: 2 });
      r = await command('term', `node ${LAB} check`);
      expect(r.code, r.out).toBe(0);
      await until('lab7', /✓ task done \(checked by `[^`]*check`, attempt 2\)/);
      await until('lab7', /Recorded 3 commands you typed for this task/);
      typeLine('fw', 'exit');
      typeLine('srv', 'exit');
      await menu('lab7', 'Finish the lab');
      type('lab7', 'Enter');
      await until('lab7', /Removed the lab/, { ms: 60_000 });
      await gone(id);

      // The hand-in: written, then tried once in a fresh instance by lab submit itself.
      const file = join(stateDir, 'bob-lab7.yaml');
      r = await command('term', `node ${LAB} submit 7 -o ${file}`, 300_000);
      expect(r.out).toMatch(/wrote .*bob-lab7\.yaml: lab 7 \(fin-wait-1\) for bob, 1 of 1 tasks/);
      expect(r.out).toMatch(/✓ it passes: tried once in a fresh instance of lab 7 \(fin-wait-1\), every check met, (\d+)\/\1 points/);
      expect(r.code, r.out).toBe(0);
      const yaml = readFileSync(file, 'utf8');
      expect(yaml).toContain('(lab check passed at attempt 2)');
      expect(yaml).not.toContain(server);
      expect(yaml).not.toMatch(/&\s*$/m);
      const loaded = validateSubmissionText(yaml, resolveLab('7').lab);
      expect(loaded.ok ? [] : loaded.problems).toEqual([]);
      const timeline = loaded.ok ? answersOf(loaded.submission)['your-turn']! : [];
      expect(timeline.map((a) => [a.node, a.script, a.end?.by])).toEqual([
        ['firewall', 'iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP', 'exit'],
        ['server', 'nc -l 5556', 'ctrl-c'],
        ['client', 'nc {{server.ip}} 5556', undefined],
      ]);
      const [, listener, client] = timeline;
      // The Ctrl-C came after the client connected, and the file says when.
      expect(listener!.end?.by === 'ctrl-c' && listener!.end.at).toBeGreaterThan(client!.at!);
      expect(yaml).toMatch(/- client: nc \{\{server\.ip\}\} 5556\n\s+at: [\d.]+s # still running when the task ended/);

      // The instructor's grade agrees.
      const json = join(stateDir, 'grade7.json');
      r = await command('term', `node ${LAB} grade 7 --submission ${file} --json > ${json}`, 300_000);
      const g = (JSON.parse(readFileSync(json, 'utf8')) as { submissions: SubmissionResult[] }).submissions[0]!;
      if (g.instance) denv.track(g.instance);
      expect(g, JSON.stringify(g, null, 2)).toMatchObject({ student: 'bob', gradable: true, passed: true });
      expect(g.score).toBe(g.maxScore);
      expect(r.code).toBe(0);

      // Without the Ctrl-C (taken out of the walk's record by hand), lab submit says plainly it would not pass.
      const record = join(stateDir, 'work', 'fin-wait-1.json');
      const work = JSON.parse(readFileSync(record, 'utf8')) as LabWork;
      for (const e of work.tasks['your-turn']!.timeline!) if (e.end?.by === 'ctrl-c') delete e.end;
      writeFileSync(record, JSON.stringify(work));
      const bad = join(stateDir, 'bob-lab7-no-ctrl-c.yaml');
      r = await command('term', `node ${LAB} submit 7 --verify -o ${bad}`, 300_000);
      expect(r.out).toMatch(/wrote .*bob-lab7-no-ctrl-c\.yaml: lab 7 \(fin-wait-1\) for bob, 1 of 1 tasks/);
      const flat = r.out.replace(/\s+/g, ' ');
      expect(flat).toMatch(/✗ it would not pass: tried once in a fresh instance of lab 7 \(fin-wait-1\), \d+\/\d+ points/);
      expect(flat).toMatch(/your-turn: \d+\/\d+, not met: .*FIN_WAIT_1/);
      expect(flat).toMatch(/server: nc -l 5556: you: still running; replayed: still running at the checks/);
      expect(flat).toContain('the file is written, and it is yours to hand in or not');
      expect(r.code, r.out).toBe(1);
      expect(readFileSync(bad, 'utf8')).not.toContain('ctrl-c:');

      // No engine: the file is still written; it says it was not tried, and --verify makes that an error.
      const nowhere = 'DOCKER_HOST=unix:///nonexistent/docker.sock';
      r = await command('term', `${nowhere} node ${LAB} submit 7 -o ${bad}`);
      expect(r.out.replace(/\s+/g, ' ')).toMatch(/not tried: no container engine answered/);
      expect(r.code, r.out).toBe(0);
      r = await command('term', `${nowhere} node ${LAB} submit 7 --verify -o ${bad}`);
      expect(r.out.replace(/\s+/g, ' ')).toMatch(/error: --verify: no container engine answered/);
      expect(r.code, r.out).toBe(3);
      r = await command('term', `node ${LAB} submit 7 --verify --no-verify -o ${bad}`);
      expect(r.out).toMatch(/give --verify or --no-verify, not both/);
      expect(r.code, r.out).toBe(2);
    },
  );

  async function gone(id: string): Promise<void> {
    const labels = { [LABEL.managed]: 'true', [LABEL.instance]: id };
    for (const deadline = Date.now() + 20_000; ;) {
      if ((await denv.runtime.listContainers(labels)).length === 0) return;
      if (Date.now() > deadline) throw new Error(`instance ${id} left behind`);
      await pause(200);
    }
  }
});
