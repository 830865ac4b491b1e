// A student at a real terminal, 80 columns wide: tmux runs `lab start 2` in one window, `lab shell client` in a
// second and `lab check` / `lab status` / `lab list` in a third; keys are typed with send-keys and the screens
// read with capture-pane. Lab 2's task is done the way a careful student does it: a wrong rule first (lab check
// fails with a hint and shows what is there), then the article's rule, tried with nc and looked at with
// netstat before `lab check` passes. Predictions are lettered, nothing is chosen for the student, and nothing
// on the screen gives the answer away before it is typed. Then: a shell in the second terminal that ends with
// the lab says why; Ctrl-C at a menu exits 130 and leaves nothing; another user's lab on the same engine is
// never entered; closing the terminal removes the lab. No line of any screen is wider than the terminal (so
// nothing was broken mid-word by the terminal). Every wait polls the screen with a deadline.
import { readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, required } from '../helpers/docker.js';
import { LABEL } from '../../src/plan/plan.js';
import { createInstance, newInstanceId } from '../../src/engine/provision.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { count, haveTmux, pause, studentEnv, terminal } from '../helpers/tmux.js';

afterAll(removeTempDirs);

if (!haveTmux && required) throw new Error('LAB_REQUIRE_DOCKER=1 but tmux is missing: apt-get install -y tmux (see .ci/run)');

const ROOT = resolve(import.meta.dirname, '../..');
const WIDTH = 80;
const stateDir = tempDir('tcplab-ui-');
// This test's own user name: other people's labs on a shared engine (all running as root here) are not its own.
const USER = `student${process.pid}`;
const env = studentEnv({ TCPLAB_STATE_DIR: stateDir, TCPLAB_USER: USER });
const {
  open,
  screen,
  type,
  typeLine: run,
  until,
  command,
  kill,
  tmux,
  newWindow: newWindowIn,
} = terminal(`tcplab-test-${process.pid}`, env);
const newWindow = (name: string) => newWindowIn(name, ROOT);

/** Text with every run of white space as one space: what a wrapped paragraph says, wherever it was broken. */
const flat = (text: string) => text.replace(/\s+/g, ' ');

/** The active prompt is the last thing on the screen: its highlighted choice. */
async function menu(win: string, choice: string, ms = 30_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const lines = screen(win).trimEnd().split('\n');
    if (lines.slice(-14).some((l) => l.includes(`❯ ${choice}`))) return lines.join('\n');
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for the menu with ❯ ${choice}; the screen:\n${lines.slice(-30).join('\n')}`);
    await pause(100);
  }
}

/** Wait for a prediction prompt; its screen and the letter each choice got. */
async function prediction(win: string, ms = 30_000): Promise<{ screen: string; letters: Map<string, string> }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = screen(win).trimEnd();
    const lines = text.split('\n');
    const at = lines.map((l) => l.startsWith('? Predict:')).lastIndexOf(true);
    const after = at >= 0 ? lines.slice(at + 1) : [];
    const letters = new Map(after.flatMap((l) => [...l.matchAll(/^ {2}([a-h])\) (.+)$/g)].map((m) => [m[2]!, m[1]!] as const)));
    if (at >= 0 && letters.size >= 2 && at > lines.length - 14) return { screen: text, letters };
    if (Date.now() > deadline) throw new Error(`timed out waiting for a prediction; the screen:\n${lines.slice(-30).join('\n')}`);
    await pause(100);
  }
}

/** Answer a prediction by typing the letter its choice was given. */
async function predict(win: string, choice: string): Promise<string> {
  const p = await prediction(win);
  const letter = p.letters.get(choice);
  expect(letter, `"${choice}" among the choices ${[...p.letters.keys()].join(', ')}`).toBeDefined();
  type(win, letter!, 'Enter');
  return p.screen;
}

/** Type a command at a lab machine's shell prompt, as a person does: after the prompt, and until the next. */
async function atPrompt(win: string, cmd: string): Promise<void> {
  const prompts = count(screen(win), /^root@\w+:\/# /m);
  run(win, cmd);
  await until(win, /^root@\w+:\/# /m, { times: prompts + 1, ms: 30_000 });
}

/**
 * Lines wider than the terminal, which the terminal had to break (anywhere, mid-word included). The lines the
 * test typed itself at a shell prompt are not tcplab's and are left out.
 */
function tooWide(win: string): string[] {
  return screen(win)
    .split('\n')
    .filter((l) => [...l].length > WIDTH && !/^(\$ |root@\w+:\S*# )/.test(l));
}

describeDocker('lab start at an 80-column terminal, driven through tmux', (denv) => {
  const started = performance.now();
  const windows = new Set<string>();
  beforeAll(() => {
    if (!haveTmux) return;
    open('lab', ['shell', 'term'], { cwd: ROOT, width: WIDTH, height: 50 });
    for (const w of ['lab', 'shell', 'term']) windows.add(w);
  });
  afterAll(() => {
    if (haveTmux) kill();
    console.log(`tmux walkthrough took ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });

  async function instanceGone(id: string): Promise<void> {
    const labels = { [LABEL.managed]: 'true', [LABEL.instance]: id };
    const deadline = Date.now() + 20_000;
    for (;;) {
      const left = [...(await denv.runtime.listContainers(labels)), ...(await denv.runtime.listNetworks(labels))];
      if (left.length === 0) return;
      if (Date.now() > deadline)
        expect(
          left.map((r) => r.name),
          `instance ${id} left behind`,
        ).toEqual([]);
      await pause(200);
    }
  }

  it.skipIf(!haveTmux)(
    "Lab 2: the article's rule, tried with nc and netstat, passes lab check; predictions that give nothing away; the score",
    async () => {
      run('lab', `node bin/lab.js start 2`);
      let out = await until('lab', /Lab instance ([0-9a-f]{8}) ready/, { ms: 120_000 });
      const id = denv.track(/Lab instance ([0-9a-f]{8}) ready/.exec(out)![1]!);
      await menu('lab', 'Check my work');
      out = screen('lab');
      const server = /Machines: client \S+; server (198\.1[89]\.\d+\.\d+)/.exec(out)![1]!;
      expect(out).toContain('Your task:');
      // The command it tells the student to type in another terminal is one that works there.
      const shellCommand = /In another terminal: `([^`]+ shell client)`/.exec(out)![1]!;
      expect(shellCommand).toBe('node bin/lab.js shell client');

      // The student opens a shell on the client from another terminal and gets the rule wrong (REJECT).
      run('shell', shellCommand);
      await until('shell', 'root@client:/#');
      await atPrompt('shell', 'iptables -I OUTPUT -p tcp --dport 5555 -j REJECT');
      await atPrompt('shell', `nc -v -w 3 ${server} 5555; echo NC1=$?`);
      await until('shell', /NC1=1/);
      expect(screen('shell')).toMatch(/Connection refused/);

      let r = await command('term', `node bin/lab.js check`);
      expect(r.code, r.out).toBe(1);
      expect(r.out).toMatch(/trying: client\$ nc (-v )?\S+ 5555 &/);
      expect(r.out).toContain('not met');
      // What was there instead: the client's connection is gone, because it was refused.
      expect(flat(r.out)).toMatch(/seen: no SYN_SENT socket, peer \S+:5555; (no TCP sockets at all|there is)/);
      expect(flat(r.out)).toMatch(/seen: check-client: exited 1 seen: nc: connect to \S+ port 5555 \(tcp\) failed: Connection refused/);
      expect(r.out).toMatch(/hint: The rule belongs to the client's OUTPUT chain/);
      // The walk in the first terminal learns of the failed attempt and shows the hint too.
      await until('lab', '✗ not yet (`node bin/lab.js check`, attempt 1)');
      await menu('lab', 'Check my work');

      // The article's rule replaces the REJECT; the student tries it with nc and watches it with netstat.
      await atPrompt('shell', 'iptables -D OUTPUT -p tcp --dport 5555 -j REJECT');
      await atPrompt('shell', 'iptables -I OUTPUT -p tcp --dport 5555 --tcp-flags SYN SYN -j DROP');
      await atPrompt('shell', `(nc -v -w 3 ${server} 5555; echo NC2=$?) &`);
      // netstat, as the article uses it, until the connection shows (nc may not have sent its SYN yet).
      let netstat = '';
      for (let n = 1; !/SYN_SENT/.test(netstat); n++) {
        if (n > 30) throw new Error(`netstat never showed SYN_SENT:\n${screen('shell').split('\n').slice(-20).join('\n')}`);
        if (n > 1) await pause(200);
        run('shell', `echo @@net${n}@@; netstat -nat | grep 5555; echo @@net${n}-end@@`);
        const text = await until('shell', new RegExp(`^@@net${n}-end@@$`, 'm'));
        netstat = text.slice(text.search(new RegExp(`^@@net${n}@@$`, 'm')), text.search(new RegExp(`^@@net${n}-end@@$`, 'm')));
      }
      expect(netstat).toMatch(new RegExp(`tcp +0 +1 +\\S+ +${server.replace(/\./g, '\\.')}:5555 +SYN_SENT`));
      await until('shell', /NC2=1/, { ms: 10_000 });
      expect(screen('shell')).toMatch(/timed out/);

      const json = join(stateDir, 'check.json');
      r = await command('term', `node bin/lab.js check --json > ${json}`);
      expect(r.code, readFileSync(json, 'utf8')).toBe(0);
      const doc = JSON.parse(readFileSync(json, 'utf8')) as {
        passed: boolean;
        attempt: number;
        step: { id: string };
        checks: { passed: boolean; seen: string[] }[];
      };
      expect(doc).toMatchObject({ passed: true, attempt: 2, step: { id: 'drop-syn' } });
      expect(doc.checks[0]!.seen.join('\n')).toMatch(/^SYN-SENT .*:5555/);
      await until('lab', '✓ task done (checked by `node bin/lab.js check`, attempt 2)');
      run('shell', 'exit');
      await until('shell', /^\$ $/m);

      await menu('lab', 'Continue to the next step');
      type('lab', 'Enter');
      await until('lab', '── Step 2/8');
      await menu('lab', 'Continue to the next step');
      type('lab', 'Enter');

      // Step 3's prediction: the answer is nowhere on the screen before the student types theirs, and nothing
      // is chosen for them (Enter alone is refused).
      await until('lab', '── Step 3/8');
      const asked = await prediction('lab');
      const step3 = asked.screen.slice(asked.screen.lastIndexOf('── Step 3/8'));
      const lab2 = resolveLab('2').lab.steps[2]!.predict!;
      expect(step3).not.toContain('Answer:');
      expect(step3).not.toContain(lab2.why.slice(0, 30));
      // The states that tell the answer apart appear only in the choices themselves.
      const prose = step3
        .split('\n')
        .filter((l) => !/^ {2}[a-h]\) /.test(l))
        .join('\n');
      expect(prose).not.toMatch(/SYN_SENT/);
      expect([...asked.letters.keys()].sort()).toEqual([...lab2.choices].sort());
      type('lab', 'Enter');
      await until('lab', 'Please input a value');
      // A wrong prediction.
      await predict('lab', 'SYN_SENT and SYN_RECV');
      // The verdict and the answer are two writes: wait for the second, then read both.
      out = await until('lab', 'Answer: SYN_SENT and LISTEN');
      expect(out).toContain('You predicted: SYN_SENT and SYN_RECV  ✗ not quite');
      expect(out).toMatch(/SYN_SENT\s+198\.1[89]\.\d+\.2:\d+ -> 198\.1[89]\.\d+\.3:5555/);
      await menu('lab', 'Continue to the next step');

      // lab status, from the other terminal, shows the step and both sides' live states, one under the other.
      r = await command('term', `node bin/lab.js status`);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`instance ${id}`);
      expect(r.out).toContain('step 3/8');
      expect(r.out).toMatch(/client\$ ss -tan\n +SYN_SENT .*:5555\n +server\$ ss -tan\n +LISTEN/);

      // lab status --watch redraws in place, like watch or top: frame after frame, one header on the screen;
      // when it stops, the terminal is as it was (its frames are not left in the scrollback).
      run('term', 'node bin/lab.js status --watch');
      const header = /status --watch, (.+) \(Ctrl-C stops\)/;
      const firstTime = header.exec(await until('term', header))![1];
      await until('term', new RegExp(`status --watch, (?!${firstTime!.replace(/[.:]/g, '\\$&')} )`), { ms: 10_000 });
      const frame = screen('term');
      expect(count(frame, '(Ctrl-C stops)')).toBe(1);
      expect(frame).toMatch(new RegExp(`instance ${id}`));
      type('term', 'C-c');
      await until('term', /status --watch\n\$ $/m);
      expect(screen('term')).not.toContain('(Ctrl-C stops)');

      for (const step of [4, 5, 6]) {
        type('lab', 'Enter');
        await until('lab', `── Step ${step}/8`);
        await menu('lab', 'Continue to the next step');
      }
      type('lab', 'Enter');
      await until('lab', '── Step 7/8');
      await predict('lab', 'SYN_SENT and SYN_RECV');
      out = await until('lab', 'You predicted: SYN_SENT and SYN_RECV  ✓ right');
      await menu('lab', 'Continue to the next step');

      // lab ui beside the walk: /latest.json has a view from its first answer on (not {} while the first look is
      // under way), and when the lab finishes, lab ui says so within the terminal's width (the last test checks
      // every line of every window).
      run('term', 'node bin/lab.js ui --no-open');
      const page = /Live page for [\s\S]*?(http:\/\/127\.0\.0\.1:\d+\/)/.exec(
        await until('term', /Live page for [\s\S]*?http:\/\/127\.0\.0\.1:\d+\//),
      )![1]!;
      const latest = (await (await fetch(`${page}latest.json`)).json()) as { view?: { instance: string } };
      expect(latest.view?.instance).toBe(id);

      // A shell stays open in the second terminal while the lab finishes.
      run('shell', shellCommand);
      await until('shell', 'Shell on the client of lab instance', { times: 2 });
      await until('shell', /^root@client:\/# $/m);
      type('lab', 'Enter');
      await until('lab', '── Step 8/8');
      await menu('lab', 'Finish the lab', 40_000);
      type('lab', 'Enter');
      out = await until('lab', /Removed the lab \(2 containers and 1 network\)/);
      // Lab 2 checks the wire too (the SYNs reaching the server or not, the SYN|ACK reaching the client): 17 checks.
      expect(out).toMatch(/Score: predictions 1\/2 right, checks 17\/17 met, tasks 1\/1 done\s+\(completed\)/);
      expect(out).toContain('Where Linux differs from the article and RFC 793:');
      await instanceGone(id);
      expect(existsSync(join(stateDir, 'running', `${id}.json`))).toBe(false);
      // The shell ended with the lab, and said why.
      await until('shell', /This shell ended because Lab 2 \(incomplete-handshake\) finished in its\s+`lab\s+start`/);
      // lab ui saw the lab go, said so, and ended (exit 0).
      await until('term', /lab ui stops:[\s\S]*\n\$ $/m);
      run('term', 'echo UI=$?');
      expect((await until('term', /^UI=\d+$/m)).match(/^UI=(\d+)$/m)![1]).toBe('0');

      r = await command('term', `node bin/lab.js list`);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/incomplete-handshake .*✓ completed/);
    },
  );

  it.skipIf(!haveTmux)('Ctrl-C at a menu: exit 130, the score so far, and nothing left behind', async () => {
    newWindow('lab1');
    windows.add('lab1');
    run('lab1', `node bin/lab.js start basic`);
    const out = await until('lab1', /Lab instance ([0-9a-f]{8}) ready/, { ms: 60_000 });
    const id = denv.track(/Lab instance ([0-9a-f]{8}) ready/.exec(out)![1]!);
    await predict('lab1', 'CLOSED'); // wrong
    await until('lab1', 'You predicted: CLOSED  ✗ not quite');
    await menu('lab1', 'Continue to the next step');
    expect(existsSync(join(stateDir, 'running', `${id}.json`))).toBe(true);
    type('lab1', 'C-c');
    const done = await until('lab1', /the lab was removed\n\$ $/m);
    expect(done).toContain('Interrupted after 1 of 7 steps of Lab 1.');
    expect(done).toMatch(/Score: predictions 0\/1 right, checks 2\/2 met, tasks 0\/1 done/);
    run('lab1', 'echo LAST=$?');
    expect((await until('lab1', /^LAST=\d+$/m)).match(/^LAST=(\d+)$/m)![1]).toBe('130');
    await instanceGone(id);
    expect(existsSync(join(stateDir, 'running', `${id}.json`))).toBe(false);
    const { out: list } = await command('term', `node bin/lab.js list`);
    expect(flat(list)).toMatch(/basic-states .*last run: 1\/7 steps, tasks 0\/1/);
  });

  it.skipIf(!haveTmux)('Ctrl-C while the machines are being made: exit 130 and nothing left behind', async () => {
    // listr2, which draws the bring-up's progress, has a SIGINT handler of its own that ended the process at
    // once with 127, before ours could remove the machines already made (a tester's three containers and two
    // networks stayed up).
    newWindow('bringup');
    windows.add('bringup');
    const mine = { [LABEL.managed]: 'true', [LABEL.owner]: USER, [LABEL.lab]: 'fin-wait-1' };
    const before = new Set((await denv.runtime.listContainers(mine)).map((c) => c.name));
    run('bringup', `node bin/lab.js start 7`);
    await until('bringup', /Machines and network for lab 7/, { ms: 60_000 });
    // Once at least one machine of this run exists: the moment the tester's Ctrl-C left them behind.
    const deadline = Date.now() + 30_000;
    let made: string[] = [];
    while (made.length === 0 && Date.now() < deadline) {
      made = (await denv.runtime.listContainers(mine)).map((c) => c.name).filter((n) => !before.has(n));
      if (!made.length) await pause(20);
    }
    for (const n of made) denv.track(/tcplab-([0-9a-f]{8})-/.exec(n)?.[1] ?? n);
    type('bringup', 'C-c');
    run('bringup', 'echo BRINGUP=$?');
    expect((await until('bringup', /^BRINGUP=\d+$/m, { ms: 60_000 })).match(/^BRINGUP=(\d+)$/m)![1]).toBe('130');
    const id = /tcplab-([0-9a-f]{8})-/.exec(made[0] ?? '')?.[1];
    expect(id, 'a machine was made before Ctrl-C').toBeDefined();
    await instanceGone(id!);
  });

  it.skipIf(!haveTmux)("another user's lab on the same engine is never entered, checked, watched or stopped", async () => {
    newWindow('other');
    windows.add('other');
    const other = denv.track(newInstanceId());
    await createInstance(denv.runtime, resolveLab('2').lab, { image: denv.image, instance: other, owner: 'someone-else' });
    let r = await command('other', `node bin/lab.js shell client`);
    expect(r.code, r.out).toBe(2);
    expect(flat(r.out)).toMatch(/error: no lab of yours \(student\d+\) is running hint: other users' labs are running here/);
    expect(r.out).not.toContain('Shell on the client');
    r = await command('term', `node bin/lab.js check`);
    expect(r.code, r.out).toBe(2);
    r = await command('term', `node bin/lab.js status`);
    expect(flat(r.out)).toMatch(/no lab of yours is running .*other users: --all shows them/);
    const json = join(stateDir, 'status.json');
    r = await command('term', `node bin/lab.js status --all --json > ${json}`);
    const all = JSON.parse(readFileSync(json, 'utf8')) as { instance: string; user: string | null }[];
    expect(all).toContainEqual(expect.objectContaining({ instance: other, user: 'someone-else' }));
    r = await command('term', `node bin/lab.js stop`);
    expect(flat(r.out)).toMatch(/no lab of yours is running left \d+ instances? of other users running/);
    expect((await denv.runtime.listContainers({ [LABEL.instance]: other })).length).toBe(2);
    // Named, it is the user's to use: an instructor's `lab shell client ID`.
    r = await command('term', `node bin/lab.js stop ${other}`);
    expect(r.out).toMatch(/removed 2 containers and 1 network/);
    await instanceGone(other);
  });

  it.skipIf(!haveTmux)('closing the terminal under a running lab removes it too', async () => {
    newWindow('lab3');
    run('lab3', `node bin/lab.js start 2`);
    const out = await until('lab3', /Lab instance ([0-9a-f]{8}) ready/, { ms: 60_000 });
    const id = denv.track(/Lab instance ([0-9a-f]{8}) ready/.exec(out)![1]!);
    await menu('lab3', 'Check my work');
    expect(existsSync(join(stateDir, 'running', `${id}.json`))).toBe(true);
    tmux('kill-window', '-t', 'ui:lab3'); // the terminal goes away: SIGHUP, and EIO on every write
    await instanceGone(id);
    const deadline = Date.now() + 10_000;
    while (existsSync(join(stateDir, 'running', `${id}.json`)) && Date.now() < deadline) await pause(100);
    expect(existsSync(join(stateDir, 'running', `${id}.json`))).toBe(false);
  });

  it.skipIf(!haveTmux)('no screen had a line wider than the terminal, so nothing was broken mid-word', () => {
    expect(windows.size).toBeGreaterThan(2);
    const wide = [...windows].flatMap((w) => tooWide(w).map((l) => `${w}: ${l}`));
    expect(wide, `lines wider than ${WIDTH} columns`).toEqual([]);
  });
});
