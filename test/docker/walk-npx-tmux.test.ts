// A new student's Lab 7, as issue 18 found it: a clone, `npx lab start 7` at a 100-column terminal in tmux.
// Every command the walk names is one that works there (`npx lab ...`); stdin is shown as bash would take it;
// the client's FIN retransmissions while the student sits at the menu after step 3 are step 3's, not step 4's
// (the step begins when the student moves on); no line is wider than the terminal; and when the lab is removed
// from outside while the task waits, the walk says so within seconds, without suggesting `lab clean`. Every
// wait polls with a deadline.
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, required } from '../helpers/docker.js';
import { LABEL } from '../../src/plan/plan.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { haveTmux, pause, studentEnv, terminal } from '../helpers/tmux.js';

afterAll(removeTempDirs);

if (!haveTmux && required) throw new Error('LAB_REQUIRE_DOCKER=1 but tmux is missing: apt-get install -y tmux (see .ci/run)');

const ROOT = resolve(import.meta.dirname, '../..');
const WIDTH = 100;
const env = studentEnv({ TCPLAB_STATE_DIR: tempDir('tcplab-npx-'), TCPLAB_USER: `student${process.pid}` });
const { open, screen, type, typeLine: run, until, kill } = terminal(`tcplab-npx-${process.pid}`, env);

/** The active prompt is the last thing on the screen: its highlighted choice. */
async function menu(choice: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const lines = screen('lab').trimEnd().split('\n');
    if (lines.slice(-14).some((l) => l.includes(`❯ ${choice}`))) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ❯ ${choice}; the screen:\n${lines.slice(-30).join('\n')}`);
    await pause(100);
  }
}

/** The step's part of the screen: from its header to the end. */
const stepText = (n: number) => {
  const text = screen('lab');
  return text.slice(text.lastIndexOf(`── Step ${n}/5`));
};

describeDocker('a new student: npx lab start 7 at a 100-column terminal', (denv) => {
  beforeAll(() => {
    if (haveTmux) open('lab', [], { cwd: ROOT, width: WIDTH, height: 50 });
  });
  afterAll(() => {
    if (haveTmux) kill();
  });

  it.skipIf(!haveTmux)('names npx lab, begins each step when the student moves on, and notices a lab removed from outside', async () => {
    run('lab', 'npx lab start 7');
    const up = await until('lab', /Lab instance ([0-9a-f]{8}) ready/, { ms: 180_000 });
    const id = denv.track(/Lab instance ([0-9a-f]{8}) ready/.exec(up)![1]!);
    await menu('Continue to the next step');
    expect(screen('lab')).toContain('In another terminal: `npx lab shell client` opens a shell on the client, `npx lab status');
    expect(screen('lab')).not.toMatch(/(?<!npx )`lab (shell|status|check|submit)/);

    type('lab', 'Enter');
    await until('lab', '── Step 2/5');
    await menu('Continue to the next step');
    // stdin as a person types it: a here-string, not JSON's "hello\n".
    expect(stepText(2)).toMatch(/client\$ nc 198\.1[89]\.\d+\.\d+ 5555 <<< hello &/);

    type('lab', 'Enter');
    await until('lab', '── Step 3/5');
    await until('lab', /Type the letter of your prediction/);
    const letter = /^ {2}([a-d])\) FIN_WAIT_1 and ESTABLISHED$/m.exec(stepText(3))![1]!;
    type('lab', letter, 'Enter');
    await until('lab', 'You predicted: FIN_WAIT_1 and ESTABLISHED  ✓ right', { ms: 60_000 });
    await menu('Continue to the next step');

    // The student reads for a while; the client goes on retransmitting its FIN into the firewall's DROP.
    const firewall = `tcplab-${id}-firewall`;
    const dropped = async () => {
      const r = await denv.runtime.exec(firewall, ['iptables', '-L', 'FORWARD', '-vnx'], { timeoutMs: 10_000 });
      return Number(/^\s*(\d+)\s+\d+\s+DROP\b/m.exec(r.stdout)?.[1] ?? 0);
    };
    const atMenu = await dropped();
    for (const deadline = Date.now() + 30_000; (await dropped()) < atMenu + 3;) {
      if (Date.now() > deadline) throw new Error('the client did not retransmit its FIN while the menu waited');
      await pause(200);
    }
    type('lab', 'Enter');
    await until('lab', '── Step 4/5');
    await menu('Continue to the next step');
    // Step 4's ladder counts from the moment the student moved on: the FINs dropped while the menu waited are
    // step 3's. Between Continue and the rule's removal, at most a second: one or two more.
    const ladder = stepText(4).slice(stepText(4).indexOf('On the wire'));
    const lost = ladder.split('\n').filter((l) => /FIN\|ACK.*X +dropped/.test(l));
    expect(lost.length, ladder).toBeLessThanOrEqual(2);
    expect(ladder).toMatch(/FIN\|ACK seq 7 ack 1 rtx -+\+-+>\|/);

    type('lab', 'Enter');
    await until('lab', '── Step 5/5');
    await menu('Check my work (same as `npx lab check`)');
    // The task's own prose names the command too.
    expect(stepText(5).replace(/\s+/g, ' ')).toContain('(`npx lab shell firewall`)');

    // Someone removes the lab's machines while the task waits.
    const labels = { [LABEL.managed]: 'true', [LABEL.instance]: id };
    const removedAt = Date.now();
    await Promise.all((await denv.runtime.listContainers(labels)).map((c) => denv.runtime.removeContainer(c.name)));
    const gone = Date.now();
    const end = await until('lab', /Lab 7 stopped after 4 of 5 steps\.[\s\S]*Score:.*\n\$ $/m, { ms: 15_000 });
    const noticed = Date.now() - gone;
    console.log(
      `the walk noticed the removal ${(noticed / 1000).toFixed(1)} s after it (removing took ${((gone - removedAt) / 1000).toFixed(1)} s)`,
    );
    expect(noticed).toBeLessThan(5000);
    const said = end.slice(end.lastIndexOf('Lab 7 stopped')).replace(/\s+/g, ' ');
    expect(said).toContain(`Lab 7's machines were removed from outside this walk (instance ${id})`);
    expect(said).toContain('`npx lab start 7` starts the lab again');
    // The walk may notice the first container gone before the others are (CI, loaded host: "2 containers and 2
    // networks"); whatever is left, it removes.
    expect(said).toMatch(/What was left of it is removed \((?:[12] containers? and )?2 networks\)\./);
    expect(said).not.toContain('lab clean');
    expect(said).not.toContain('Recorded');
    run('lab', 'echo EXIT=$?');
    expect((await until('lab', /^EXIT=\d+$/m)).match(/^EXIT=(\d+)$/m)![1]).toBe('1');
    expect(await denv.runtime.listNetworks(labels)).toEqual([]);

    const wide = screen('lab')
      .split('\n')
      .filter((l) => [...l].length > WIDTH && !l.startsWith('$ '));
    expect(wide, `lines wider than ${WIDTH} columns`).toEqual([]);
  });
});
