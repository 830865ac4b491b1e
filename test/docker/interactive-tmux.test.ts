// A student at a terminal, for real: tmux runs `lab start 2` in one window, `lab shell client` in a second and
// `lab check` / `lab status` / `lab list` in a third; keys are typed with send-keys and the screens read with
// capture-pane. The walk includes a wrong prediction, a failed task attempt (lab check fails with a hint), a
// retry that passes, the whole lab to its score, and then Lab 1 quit half-way. Afterwards nothing of either
// instance may remain (looked up by instance label). Every wait polls the screen with a deadline.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, required } from '../helpers/docker.js';
import { LABEL } from '../../src/plan/plan.js';

const haveTmux = spawnSync('tmux', ['-V']).status === 0;
if (!haveTmux && required) throw new Error('LAB_REQUIRE_DOCKER=1 but tmux is missing: apt-get install -y tmux (see .ci/run)');

const LAB = resolve(import.meta.dirname, '../../bin/lab.js');
const socket = `tcplab-test-${process.pid}`;
const stateDir = mkdtempSync(join(tmpdir(), 'tcplab-ui-'));
const env = { ...process.env, TCPLAB_STATE_DIR: stateDir, TERM: 'xterm-256color', PS1: '$ ', LANG: 'C.UTF-8' } as NodeJS.ProcessEnv;
delete env.NO_COLOR;
delete env.FORCE_COLOR;
delete env.TMUX;

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', socket, ...args], { env, encoding: 'utf8' });
}

/** Everything the window has shown (scrollback included), wrapped lines joined. */
function screen(win: string): string {
  return tmux('capture-pane', '-p', '-J', '-S', '-5000', '-t', `ui:${win}`);
}

function type(win: string, ...keys: string[]): void {
  tmux('send-keys', '-t', `ui:${win}`, ...keys);
}

function run(win: string, command: string): void {
  tmux('send-keys', '-t', `ui:${win}`, '-l', command);
  tmux('send-keys', '-t', `ui:${win}`, 'Enter');
}

function count(text: string, needle: string | RegExp): number {
  if (typeof needle === 'string') return text.split(needle).length - 1;
  return (text.match(new RegExp(needle.source, needle.flags.includes('g') ? needle.flags : needle.flags + 'g')) ?? []).length;
}

/** Poll a window until `needle` has appeared `times` times (default once), or fail showing the screen. */
async function until(win: string, needle: string | RegExp, opts: { times?: number; ms?: number } = {}): Promise<string> {
  const deadline = Date.now() + (opts.ms ?? 30_000);
  let last = '';
  for (;;) {
    last = screen(win);
    if (count(last, needle) >= (opts.times ?? 1)) return last;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${String(needle)} in window ${win}; the screen:\n${last.split('\n').slice(-40).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The active prompt is the last thing on the screen: its highlighted choice. */
async function menu(win: string, choice: string, ms = 30_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const lines = screen(win).trimEnd().split('\n');
    if (lines.slice(-14).some((l) => l.includes(`❯ ${choice}`))) return lines.join('\n');
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for the menu with ❯ ${choice}; the screen:\n${lines.slice(-30).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let seq = 0;
/** Run a command at a shell prompt; wait for its own end marker; its output and exit status. */
async function command(win: string, cmd: string, ms = 30_000): Promise<{ out: string; code: number }> {
  const mark = `@@${++seq}@@`;
  run(win, `${cmd}; echo ${mark} EXIT=$?`);
  const done = new RegExp(`${mark} EXIT=(\\d+)`);
  const text = await until(win, done, { ms });
  const from = text.indexOf(`${mark} EXIT=$?`);
  const to = text.search(done);
  return { out: text.slice(from, to), code: Number(done.exec(text)![1]) };
}

describeDocker('lab start at a terminal, driven through tmux', (denv) => {
  const started = performance.now();
  beforeAll(() => {
    if (!haveTmux) return;
    tmux('new-session', '-d', '-s', 'ui', '-n', 'lab', '-x', '200', '-y', '60', 'bash --norc --noprofile');
    tmux('new-window', '-t', 'ui', '-n', 'shell', 'bash --norc --noprofile');
    tmux('new-window', '-t', 'ui', '-n', 'term', 'bash --norc --noprofile');
  });
  afterAll(() => {
    if (haveTmux) spawnSync('tmux', ['-L', socket, 'kill-server'], { env });
    rmSync(stateDir, { recursive: true, force: true });
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
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it.skipIf(!haveTmux)('Lab 2 with a task: wrong prediction, failed check with a hint, retry, score, progress', async () => {
    run('lab', `node ${LAB} start 2`);
    let out = await until('lab', /Lab instance ([0-9a-f]{8}) ready/, { ms: 120_000 });
    const id = denv.track(/Lab instance ([0-9a-f]{8}) ready/.exec(out)![1]!);
    await menu('lab', 'Check my work');
    expect(screen('lab')).toContain('Your task:');

    // The student opens a shell on the client from another terminal and gets the rule wrong (REJECT).
    run('shell', `node ${LAB} shell client`);
    await until('shell', 'root@client:/#');
    run('shell', 'iptables -I OUTPUT -p tcp --dport 5555 -j REJECT');
    await until('shell', 'root@client:/#', { times: 2 });

    let r = await command('term', `node ${LAB} check`);
    expect(r.code).toBe(1);
    expect(r.out).toContain('not met');
    expect(r.out).toMatch(/hint: The rule belongs to the client's OUTPUT chain/);
    // The walk in the first terminal learns of the failed attempt and shows the hint too.
    out = await until('lab', '✗ not yet (`lab check`, attempt 1)');
    await menu('lab', 'Check my work');

    // Fixed: the REJECT comes out, a DROP of SYNs goes in; lab check --json passes.
    run('shell', 'iptables -D OUTPUT -p tcp --dport 5555 -j REJECT; iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP');
    await until('shell', 'root@client:/#', { times: 3 });
    const json = join(stateDir, 'check.json');
    r = await command('term', `node ${LAB} check --json > ${json}`);
    expect(r.code).toBe(0);
    const doc = JSON.parse(readFileSync(json, 'utf8')) as {
      passed: boolean;
      attempt: number;
      step: { id: string };
      checks: { passed: boolean; seen: string[] }[];
    };
    expect(doc).toMatchObject({ passed: true, attempt: 2, step: { id: 'drop-syn' } });
    expect(doc.checks[0]!.seen.join('\n')).toMatch(/-A OUTPUT -p tcp .*--dport 5555 .*-j DROP/);
    await until('lab', '✓ task done (checked by `lab check`, attempt 2)');
    run('shell', 'exit');

    await menu('lab', 'Continue to the next step');
    type('lab', 'Enter');
    await until('lab', '── Step 2/8');
    await menu('lab', 'Continue to the next step');
    type('lab', 'Enter');
    // A wrong prediction: the second choice instead of the first.
    await until('lab', '── Step 3/8');
    await menu('lab', 'SYN_SENT and LISTEN');
    type('lab', 'Down', 'Enter');
    out = await until('lab', 'You predicted: SYN_SENT and SYN_RECV  ✗ not quite');
    expect(out).toContain('Answer: SYN_SENT and LISTEN');
    expect(out).toMatch(/SYN_SENT\s+198\.1[89]\.\d+\.2:\d+ -> 198\.1[89]\.\d+\.3:5555/);
    await menu('lab', 'Continue to the next step');

    // lab status, from the other terminal, shows the step and both sides' live states.
    r = await command('term', `node ${LAB} status`);
    expect(r.code).toBe(0);
    out = r.out;
    expect(out).toContain(`instance ${id}`);
    expect(out).toContain('step 3/8');
    expect(out).toMatch(/SYN_SENT .*:5555\s*│ LISTEN/);

    for (const step of [4, 5, 6]) {
      type('lab', 'Enter');
      await until('lab', `── Step ${step}/8`);
      await menu('lab', 'Continue to the next step');
    }
    type('lab', 'Enter');
    await until('lab', '── Step 7/8');
    await menu('lab', 'SYN_SENT and LISTEN');
    type('lab', 'Down', 'Enter');
    out = await until('lab', 'You predicted: SYN_SENT and SYN_RECV  ✓ right');
    await menu('lab', 'Continue to the next step');
    type('lab', 'Enter');
    await until('lab', '── Step 8/8');
    await menu('lab', 'Finish the lab', 40_000);
    type('lab', 'Enter');
    out = await until('lab', /Removed the lab/);
    // Lab 2 checks the wire too (the SYNs reaching the server or not, the SYN|ACK reaching the client): 17 checks.
    expect(out).toMatch(/Score: predictions 1\/2 right, checks 17\/17 met, tasks 1\/1 done {2}\(completed\)/);
    await instanceGone(id);
    expect(existsSync(join(stateDir, 'running', `${id}.json`))).toBe(false);

    r = await command('term', `node ${LAB} list`);
    expect(r.code).toBe(0);
    out = r.out;
    expect(out).toMatch(/incomplete-handshake .*✓ completed/);
  });

  it.skipIf(!haveTmux)('Lab 1 quit half-way removes the instance and keeps partial progress', async () => {
    // A window of its own, so that this test does not depend on how the one before ended.
    tmux('new-window', '-t', 'ui', '-n', 'lab1', 'bash --norc --noprofile');
    run('lab1', `node ${LAB} start 1`);
    const out = await until('lab1', /Lab instance ([0-9a-f]{8}) ready/, { ms: 60_000, times: 1 });
    const ids = [...out.matchAll(/Lab instance ([0-9a-f]{8}) ready/g)].map((m) => m[1]!);
    const id = denv.track(ids[ids.length - 1]!);
    await menu('lab1', 'CLOSED');
    type('lab1', 'Enter'); // predicts CLOSED: wrong
    await until('lab1', 'You predicted: CLOSED  ✗ not quite');
    await menu('lab1', 'Continue to the next step');
    // Quit is the last of seven choices.
    type('lab1', 'Down', 'Down', 'Down', 'Down', 'Down', 'Down');
    await menu('lab1', 'Quit (removes the lab unless --keep)');
    type('lab1', 'Enter');
    const done = await until('lab1', /Removed the lab/);
    expect(done).toContain('You quit Lab 1 after 1 of 7 steps.');
    expect(done).toMatch(/Score: predictions 0\/1 right, checks 2\/2 met, tasks 0\/1 done/);
    await instanceGone(id);
    const { out: list } = await command('term', `node ${LAB} list`);
    expect(list).toMatch(/basic-states .*last run: 1\/7 steps, tasks 0\/1/);
  });

  it.skipIf(!haveTmux)('closing the terminal under a running lab removes it too', async () => {
    tmux('new-window', '-t', 'ui', '-n', 'lab3', 'bash --norc --noprofile');
    run('lab3', `node ${LAB} start 2`);
    const out = await until('lab3', /Lab instance ([0-9a-f]{8}) ready/, { ms: 60_000 });
    const id = denv.track(/Lab instance ([0-9a-f]{8}) ready/.exec(out)![1]!);
    await menu('lab3', 'Check my work');
    expect(existsSync(join(stateDir, 'running', `${id}.json`))).toBe(true);
    tmux('kill-window', '-t', 'ui:lab3'); // the terminal goes away: SIGHUP, and EIO on every write
    await instanceGone(id);
    const deadline = Date.now() + 10_000;
    while (existsSync(join(stateDir, 'running', `${id}.json`)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(join(stateDir, 'running', `${id}.json`))).toBe(false);
  });
});
