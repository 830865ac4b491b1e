// Cleanup: Ctrl-C (SIGINT), SIGTERM, SIGHUP, a closed stdout, and SIGKILL at each phase of `lab start` and
// `lab grade`, against the real built CLI and the real engine. Each run must end with nothing of its own left
// (found by its owner label), or, after SIGKILL, with `lab clean --stale` removing the rest.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeDocker } from '../helpers/docker.js';
import { imageTag } from '../../src/engine/image.js';
import { docker, expectNoStack, instancesOf, LabRun, labYaml, leftoversOf, removeOwnedBy, tempDir, until, writeLab } from './cli.js';

const owners = new Set<string>();
const dirs: string[] = [];
let tried = 0;

function run(args: string[], env: Record<string, string> = {}): LabRun {
  const r = new LabRun(args, { env });
  owners.add(r.owner);
  tried++;
  return r;
}

/** Interrupted: exit code of the signal, a plain message, no stack, nothing of this run left. */
async function expectCleanInterrupt(r: LabRun, code: number): Promise<void> {
  const exit = await r.exited;
  expect(exit.code, exit.stdout + exit.stderr.replace(/^.*lab:(exec|docker|agent).*\n/gm, '')).toBe(code);
  expect(exit.stderr).toMatch(/interrupted|stopping and removing/);
  expectNoStack(exit.stdout + exit.stderr);
  expect(await leftoversOf(r.owner)).toEqual([]);
}

// A lab whose step waits a long time: a foreground command that runs 60 s (killed after 90 s).
let slowLab = '';
let quickLab = '';

describeDocker('reliability: interruptions', () => {
  beforeAll(() => {
    const d = tempDir('int');
    dirs.push(d);
    slowLab = writeLab(
      d,
      'slow.yaml',
      labYaml(`  - id: wait
    title: a long step
    explain: waits
    run:
      - { on: server, run: [nc, -l, "5555"], name: srv, background: true }
      - { on: client, run: [sleep, "60"], timeout: 90s }
`),
    );
    quickLab = writeLab(
      d,
      'quick.yaml',
      labYaml(`  - id: up\n    title: up\n    explain: up\n    expect: [{ on: server, absent: { local: '*:5555' } }]\n`),
    );
  });

  afterAll(async () => {
    // Only our own runs, by owner label; the tests have asserted there was nothing left.
    for (const o of owners) await removeOwnedBy(o);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    console.log(`reliability: ${tried} interrupted runs`);
  });

  // Phase: image build. A throwaway image folder whose build sleeps; the shared lab image is not touched.
  for (const [cmd, sig, code] of [
    ['start', 'SIGINT', 130],
    ['grade', 'SIGINT', 130],
    ['grade', 'SIGTERM', 143],
  ] as const) {
    it(`${sig} during the image build of lab ${cmd}: exit ${code}, the build is cancelled, no image, no container`, async () => {
      const marker = `tcplab-rel-${randomBytes(4).toString('hex')}`;
      const dir = tempDir('img');
      dirs.push(dir);
      writeFileSync(join(dir, 'Dockerfile'), `FROM debian:bookworm-slim\nRUN echo ${marker} && sleep 120\n`);
      const r = run([cmd, '1'], { TCPLAB_IMAGE_DIR: dir });
      const buildContainers = async () =>
        (await docker.docker.listContainers({ all: true })).filter((c) => (c.Command ?? '').includes(marker));
      await until('the build to run its slow step', async () => (await buildContainers()).length > 0, 60_000);
      r.kill(sig);
      await expectCleanInterrupt(r, code);
      // The engine cancels the build when the client goes: its build container goes, no image is tagged.
      await until('the build container to go', async () => (await buildContainers()).length === 0, 30_000);
      expect(await docker.imageExists(imageTag({ dir }))).toBe(false);
    });
  }

  // Phase: topology creation (networks, then containers), caught from the DEBUG log of engine calls.
  for (const [cmd, sig, code, at] of [
    ['start', 'SIGINT', 130, /create network/],
    ['start', 'SIGINT', 130, /create container/],
    ['grade', 'SIGINT', 130, /create network/],
    ['grade', 'SIGINT', 130, /create container/],
    ['grade', 'SIGTERM', 143, /create container/],
    ['start', 'SIGHUP', 143, /create container/],
  ] as const) {
    it(`${sig} at "${at.source}" of lab ${cmd}: exit ${code}, nothing left`, async () => {
      const r = run([cmd, '2'], { DEBUG: 'lab:docker' });
      await r.waitForOutput(at);
      r.kill(sig);
      await expectCleanInterrupt(r, code);
    });
  }

  // Phase: a step. lab start prints "Step N/M"; lab grade is quiet, so watch its exec log.
  for (const [cmd, sig, code, at] of [
    ['start', 'SIGINT', 130, /Step 2\/\d/],
    ['start', 'SIGTERM', 143, /Step 3\/\d/],
    ['grade', 'SIGINT', 130, /lab:agent server: run nc -l/],
    ['grade', 'SIGTERM', 143, /lab:agent server: run nc -l/],
  ] as const) {
    it(`${sig} during a step of lab ${cmd}: exit ${code}, nothing left`, async () => {
      const r = run([cmd, '2'], { DEBUG: 'lab:agent' });
      await r.waitForOutput(at);
      r.kill(sig);
      await expectCleanInterrupt(r, code);
    });
  }

  it('SIGINT during a long foreground command: the exec is abandoned at once, exit 130, nothing left', async () => {
    const r = run(['grade', slowLab], { DEBUG: 'lab:agent' });
    await r.waitForOutput(/sleep/);
    const t0 = performance.now();
    r.kill('SIGINT');
    await expectCleanInterrupt(r, 130);
    expect(performance.now() - t0).toBeLessThan(15_000);
  });

  it('Ctrl-C twice: the second one leaves at once, and `lab clean --stale` removes the rest', async () => {
    const r = run(['grade', slowLab], { DEBUG: 'lab:agent' });
    await r.waitForOutput(/sleep/);
    r.kill('SIGINT');
    // Signals are not queued: the second must come after the first was handled.
    await r.waitForOutput(/stopping and removing/);
    r.kill('SIGINT');
    const exit = await r.exited;
    expect(exit.code).toBe(130);
    expectNoStack(exit.stderr);
    const ids = await instancesOf(r.owner);
    if (ids.length) {
      const clean = await run(['clean', '--stale', ...ids]).exited;
      expect(clean.code, clean.stderr).toBe(0);
    }
    expect(await leftoversOf(r.owner)).toEqual([]);
  });

  it('a reader that goes away (lab start | head): the lab is removed', async () => {
    const r = run(['start', '2']);
    await r.waitForOutput(/Step 2\/\d/);
    r.child.stdout!.destroy();
    const exit = await r.exited;
    expect(exit.code).not.toBe(0);
    expectNoStack(exit.stderr);
    expect(await leftoversOf(r.owner)).toEqual([]);
  });

  it('SIGKILL (a crash) mid-lab: things are left, doctor reports them as stale, `lab clean --stale` removes them', async () => {
    const r = run(['grade', slowLab], { DEBUG: 'lab:agent' });
    await r.waitForOutput(/sleep/);
    r.kill('SIGKILL');
    const exit = await r.exited;
    expect(exit.signal).toBe('SIGKILL');
    const ids = await instancesOf(r.owner);
    // Nothing could clean up: the instance is there, which is what the sweep is for.
    expect(ids).toHaveLength(1);
    expect((await leftoversOf(r.owner)).length).toBeGreaterThan(0);
    const doctor = await run(['doctor', '--json']).exited;
    const report = JSON.parse(doctor.stdout) as { checks: { name: string; detail: string }[] };
    expect(report.checks.find((c) => c.name === 'leftovers')?.detail).toContain(ids[0]);
    // Scoped to this run's instance: other people's labs on this engine are not ours to remove.
    const clean = await run(['clean', '--stale', '--json', ids[0]!]).exited;
    expect(clean.code, clean.stderr).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ instances: [ids[0]] });
    expect(await leftoversOf(r.owner)).toEqual([]);
  });

  it('a crash (an uncaught exception, a bug) mid-lab: "internal error", exit 70, the lab removed', async () => {
    // A preload that throws from a timer on SIGUSR2: the same path as any bug outside a command's try/catch.
    const preload = join(dirs[0]!, 'crash-on-usr2.mjs');
    writeFileSync(preload, "process.on('SIGUSR2', () => setTimeout(() => { throw new Error('simulated bug'); }));\n");
    const r = run(['grade', slowLab], { DEBUG: 'lab:agent', NODE_OPTIONS: `--import=${preload}` });
    await r.waitForOutput(/sleep/);
    r.kill('SIGUSR2');
    const exit = await r.exited;
    expect(exit.code, exit.stderr.slice(-1500)).toBe(70);
    expect(exit.stderr).toMatch(/internal error \(a bug in tcplab/);
    expect(exit.stderr).toMatch(/simulated bug/);
    expect(await leftoversOf(r.owner)).toEqual([]);
  });

  it('`lab clean --stale` leaves a live run and a kept lab alone', async () => {
    const live = run(['grade', slowLab], { DEBUG: 'lab:agent' });
    await live.waitForOutput(/sleep/);
    const [liveId] = await instancesOf(live.owner);
    const keptRun = run(['start', quickLab, '--keep']);
    const keptExit = await keptRun.exited;
    expect(keptExit.code, keptExit.stderr).toBe(0);
    const [keptId] = await instancesOf(keptRun.owner);
    expect(liveId).toBeTruthy();
    expect(keptId).toBeTruthy();
    const clean = await run(['clean', '--stale', '--json', liveId!, keptId!]).exited;
    expect(JSON.parse(clean.stdout)).toMatchObject({ removed: { containers: 0, networks: 0 }, instances: [] });
    expect((await leftoversOf(live.owner)).length).toBeGreaterThan(0);
    expect((await leftoversOf(keptRun.owner)).length).toBeGreaterThan(0);
    // The kept one goes with lab stop; the live one with its own Ctrl-C.
    expect((await run(['stop', keptId!]).exited).code).toBe(0);
    expect(await leftoversOf(keptRun.owner)).toEqual([]);
    live.kill('SIGINT');
    await expectCleanInterrupt(live, 130);
  });

  it('a lab container removed by hand mid-lab: a clear error, exit 3, the rest removed', async () => {
    const r = run(['grade', slowLab], { DEBUG: 'lab:agent' });
    await r.waitForOutput(/sleep/);
    const [id] = await instancesOf(r.owner);
    await docker.removeContainer(`tcplab-${id}-client`);
    const exit = await r.exited;
    const said = exit.stderr.replace(/^.*lab:(exec|docker|agent).*\n/gm, '');
    expect(exit.code, exit.stdout + said).toBe(3);
    // Which container is gone, and what to do about it; not a verdict on the lab.
    expect(said).toMatch(
      new RegExp(
        `^error: the client container \\(tcplab-${id}-client\\) is gone or stopped: .*(No such container|is not running|being removed)`,
        'm',
      ),
    );
    expect(said).toMatch(/^hint: was it removed by hand\? run `lab clean` and start the lab again$/m);
    expect(exit.stdout).not.toMatch(/PASS|FAIL/);
    expectNoStack(exit.stdout + exit.stderr);
    expect(await leftoversOf(r.owner)).toEqual([]);
  });
});
