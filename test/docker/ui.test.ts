// `lab ui` end to end, in a real headless browser: Debian's Chromium driven by playwright-core. A lab kept
// running (`lab start 2 --yes --keep`), the command run as a user runs it, the page checked for what a student
// must see: both sides ESTABLISHED at the end of Lab 2, lit in an SVG state diagram, and the segments that got
// them there. Then the command stops on Ctrl-C (the lab stays) and when the lab goes away (it says so).
// TCPLAB_UI_SCREENSHOT=FILE keeps the page's picture (README's docs/live-page.png comes from here).
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABEL } from '../../src/plan/plan.js';
import type { NodeName } from '../../src/lab/schema.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { rebuildPlan } from '../../src/ui/attach.js';
import { LabWatch } from '../../src/ui/watch.js';
import { describeDocker } from '../helpers/docker.js';
import { CHROMIUM, CHROMIUM_ARGS, freePort, withoutChromium } from '../helpers/browser.js';
import { expectNoStack, LabRun, until } from '../reliability/cli.js';

describe('lab ui, bad input (no engine needed)', () => {
  it('a bad port, host or argument is a usage error with a clear message, before any lab is looked for', async () => {
    const noEngine = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
    for (const [args, message] of [
      [['--port', 'abc'], "--port takes a port number from 1 to 65535, not 'abc'"],
      [['--port', '70000'], "--port takes a port number from 1 to 65535, not '70000'"],
      [['--host', 'example.com'], "--host takes an IP address of this machine, not 'example.com'"],
      [['a', 'b'], 'lab ui takes at most one instance'],
    ] as const) {
      const exit = await new LabRun(['ui', '--no-open', ...args], { env: noEngine }).exited;
      expect(exit.code, exit.stderr).toBe(2);
      expect(exit.stderr).toContain(`error: ${message}`);
      expectNoStack(exit.stderr);
    }
  });
});

describeDocker('lab ui in a real browser', (env) => {
  if (withoutChromium()) return;

  const stateDir = mkdtempSync(join(tmpdir(), 'tcplab-ui-state-'));
  const profile = mkdtempSync(join(tmpdir(), 'tcplab-ui-chromium-'));
  const labEnv = { TCPLAB_STATE_DIR: stateDir };
  const runs: LabRun[] = [];
  let instance = '';
  let browser: BrowserContext;

  const lab = (args: string[]) => {
    const r = new LabRun(args, { env: labEnv });
    runs.push(r);
    return r;
  };

  /** Start `lab ui` and wait for the address it prints. */
  async function startUi(args: string[]): Promise<{ run: LabRun; url: string }> {
    const run = lab(['ui', instance, '--no-open', ...args]);
    await run.waitForOutput(/http:\/\/127\.0\.0\.1:\d+\//, 60_000);
    return { run, url: /http:\/\/127\.0\.0\.1:\d+\//.exec(run.stdout)![0] };
  }

  /** Open the page; every request it makes must go to lab ui itself (nothing from a CDN: it works offline). */
  async function open(url: string): Promise<{ page: Page; requests: string[] }> {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(url);
    await page.waitForSelector('#status[data-status="live"]', { timeout: 60_000 });
    expect(errors).toEqual([]);
    return { page, requests };
  }

  beforeAll(async () => {
    const start = lab(['start', '2', '--yes', '--keep']);
    const exit = await start.exited;
    const m = /still running \(instance ([0-9a-f]+)\)/.exec(exit.stdout);
    if (m) env.track(m[1]!);
    expect(exit.code, exit.stdout.slice(-2000) + exit.stderr.slice(-2000)).toBe(0);
    instance = m![1]!;
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 720 },
    });
  });

  afterAll(async () => {
    await browser?.close();
    for (const r of runs) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    rmSync(profile, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("shows both sides ESTABLISHED at the end of Lab 2, lit in each side's SVG state diagram, and the segments on the wire", async () => {
    const port = await freePort();
    const { run, url } = await startUi(['--port', String(port)]);
    expect(url).toBe(`http://127.0.0.1:${port}/`);
    const { page, requests } = await open(url);

    for (const node of ['client', 'server']) {
      const side = page.locator(`.side[data-node="${node}"]`);
      // Lit because ss in that container shows an ESTABLISHED socket now: polled until it does.
      await side.locator('g.state.lit[data-state="ESTABLISHED"]').waitFor({ timeout: 30_000 });
      await expect.poll(() => side.locator('.now').textContent()).toContain('ESTABLISHED');
      const svg = side.locator('svg.state-machine');
      expect(await svg.count()).toBe(1);
      const states = await svg.locator('g.state').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-state')));
      expect(new Set(states).size).toBe(11);
      expect(await svg.locator('g.edge').count()).toBe(20);
      // Exactly the states of its sockets are lit, each with its count.
      const lit = await svg.locator('g.state.lit').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-state')));
      const listed = await side.locator('.sockets .st').allTextContents();
      expect(new Set(lit)).toEqual(new Set(listed));
      expect(lit).not.toContain('SYN_SENT');
      expect(lit).not.toContain('SYN_RECV');
      expect(await svg.locator('g.state.lit[data-state="ESTABLISHED"] .badge text').textContent()).toBe('1');
    }
    expect(await page.locator('.side').count()).toBe(2);

    // The ladder: the segments both captures recorded during the walk, joined (src/trace), as arrows.
    const labels = await page.locator('#ladder g[data-kind="segment"] text.label').allTextContents();
    expect(labels).toEqual(expect.arrayContaining(['SYN seq 0', 'SYN|ACK seq 0 ack 1', 'ACK ack 1']));
    expect(labels.some((l) => / rtx$/.test(l))).toBe(true);
    expect(await page.locator('#ladder g[data-kind="segment"] line').count()).toBeGreaterThanOrEqual(labels.length);
    expect(await page.locator('#ladder svg').getAttribute('aria-label')).toMatch(/^\d+ segments/);

    // The step: the lab's last (the walk ended with --keep), its checks as the kernel shows them now.
    expect(await page.locator('#step-title').textContent()).toBe('Remove the rule and the handshake completes');
    const met = await page.locator('#checks li[data-status="met"] .expected').allTextContents();
    expect(met).toEqual(expect.arrayContaining([expect.stringMatching(/^client: socket ESTABLISHED, peer 198\.\d+\.\d+\.\d+:5555$/)]));
    expect(await page.locator('#checks li[data-status="met"] .verdict').first().textContent()).toBe('✓ met');

    // The picture in README (before the keyboard moves the focus).
    const shot = process.env.TCPLAB_UI_SCREENSHOT ?? join(profile, 'live-page.png');
    await page.screenshot({ path: shot });

    // Made to be projected: 1280x720 without scrolling the page, text size from the keyboard.
    // (Expressions as strings: they run in the page, whose DOM types this Node project does not load.)
    expect(await page.evaluate<number>('document.documentElement.scrollHeight')).toBeLessThanOrEqual(720);
    const size = () => page.evaluate<number>('parseFloat(getComputedStyle(document.documentElement).fontSize)');
    const before = await size();
    await page.keyboard.press('+');
    expect(await size()).toBeGreaterThan(before);
    await page.keyboard.press('-');
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string>('document.activeElement?.textContent')).toBe('Skip to the current step');
    await page.keyboard.press('f');
    expect(await page.locator('#follow').getAttribute('aria-pressed')).toBe('false');
    await page.keyboard.press('f');

    expect(requests.length).toBeGreaterThan(0);
    for (const r of requests) expect(r.startsWith(url) || r.startsWith('data:'), r).toBe(true);

    // A second page on the same port: refused with a clear message, no stack trace.
    const busy = await lab(['ui', instance, '--no-open', '--port', String(port)]).exited;
    expect(busy.code).toBe(2);
    expect(busy.stderr).toContain(`port ${port} on 127.0.0.1 is in use`);
    expectNoStack(busy.stderr);

    // Ctrl-C stops the page, not the lab; the open page says it stopped.
    run.child.kill('SIGINT');
    const exit = await run.exited;
    expect(exit.code).toBe(0);
    expect(exit.stdout + exit.stderr).toMatch(new RegExp(`lab ui stopped; instance ${instance} is still running`));
    expect(exit.stderr).not.toMatch(/removing/);
    await page.locator('#status[data-status="stopped"]').waitFor({ timeout: 10_000 });
    const left = await env.runtime.listContainers({ [LABEL.instance]: instance });
    expect(left.map((c) => c.state)).toEqual(['running', 'running']);
    await page.close();
  });

  it("follows the walk's step from its state file, and grows the ladder as new segments arrive", async () => {
    // What a `lab start` at a terminal publishes (src/walk/state-files.ts), written here for the kept lab, with this
    // process as the walk that owns it.
    const { lab: lab2, file } = resolveLab('2');
    const containers = await env.runtime.listContainers({ [LABEL.instance]: instance });
    const nodes = new Map(containers.map((c) => [c.labels[LABEL.node] as NodeName, c.name]));
    const plan = await rebuildPlan(env.runtime, instance, nodes, lab2);
    const publish = (stepIndex: number) => {
      const dir = join(stateDir, 'running');
      mkdirSync(dir, { recursive: true });
      const state = {
        instance,
        lab: { id: lab2.id, slug: lab2.slug, title: lab2.title, file },
        owner: `${hostname()}:${process.pid}`,
        startedAt: new Date().toISOString(),
        stepIndex,
        stepId: lab2.steps[stepIndex]!.id,
        plan,
        keep: true,
      };
      writeFileSync(join(dir, `${instance}.json.tmp`), JSON.stringify(state));
      renameSync(join(dir, `${instance}.json.tmp`), join(dir, `${instance}.json`));
    };
    publish(5);
    const { run, url } = await startUi([]);
    const { page } = await open(url);
    await expect.poll(() => page.locator('#step-title').textContent(), { timeout: 20_000 }).toBe(lab2.steps[5]!.title);
    expect(await page.locator('#walk').textContent()).toBe('following `lab start`: step 6 of 8');

    // The walk moves on: the page follows without a reload. It saw this step begin, so it can count the
    // step's segments: none yet, so the SYN|ACK check does not hold.
    publish(7);
    await expect.poll(() => page.locator('#step-title').textContent(), { timeout: 20_000 }).toBe(lab2.steps[7]!.title);
    const synAckCheck = page.locator('#checks li').first();
    expect(await synAckCheck.locator('.expected').textContent()).toMatch(/SYN\|ACK segments? from .*:5555 arriving/);
    await expect.poll(() => synAckCheck.getAttribute('data-status'), { timeout: 20_000 }).toBe('not met');

    // A new connection from the client: its handshake appears in the ladder (now two connections, told apart
    // by a letter), and the SYN|ACK that reached the client makes the check hold.
    const before = await page.locator('#ladder g[data-kind="segment"]').count();
    // Note, as the page draws them, whether new segment rows come marked as just arrived (the mark lasts
    // seconds; a busy machine may look later than that).
    await page.evaluate(`(() => {
      window.freshRows = 0;
      new MutationObserver(() => {
        window.freshRows = Math.max(window.freshRows, document.querySelectorAll('#ladder g.fresh.new[data-kind="segment"]').length);
      }).observe(document.getElementById('ladder'), { childList: true });
    })()`);
    const server = plan.vars['server.ip']!;
    const nc = await env.runtime.exec(nodes.get('client')!, ['nc', '-z', '-w', '2', server, '5555'], { timeoutMs: 10_000 });
    expect(nc.exitCode).toBe(0);
    await expect.poll(() => synAckCheck.getAttribute('data-status'), { timeout: 20_000 }).toBe('met');
    await expect.poll(() => page.locator('#ladder g[data-kind="segment"]').count(), { timeout: 20_000 }).toBeGreaterThan(before + 2);
    const labels = await page.locator('#ladder g[data-kind="segment"] text.label').allTextContents();
    expect(labels).toEqual(expect.arrayContaining([expect.stringMatching(/^[a-z]:SYN\|ACK seq 0 ack 1$/)]));
    // Rows that just arrived are marked as such for a few seconds.
    expect(await page.evaluate<number>('window.freshRows')).toBeGreaterThan(0);
    expect(await page.locator('#connections').textContent()).toMatch(/^2 connections: a = .* · b = /);

    run.child.kill('SIGINT');
    expect((await run.exited).code).toBe(0);
    rmSync(join(stateDir, 'running', `${instance}.json`));
    await page.close();
  });

  it('a look that waits a long time for a change answers at once when woken (the walk moved on)', async () => {
    // Once nothing on the page moves with time, lab ui's looks wait 30 s in the agents; the walk's state file
    // changing wakes them (src/ui/session.ts). Here the wake itself, against the kept lab's real agents.
    const containers = await env.runtime.listContainers({ [LABEL.instance]: instance });
    const nodes = new Map(containers.map((c) => [c.labels[LABEL.node] as NodeName, c.name]));
    const plan = await rebuildPlan(env.runtime, instance, nodes, resolveLab('2').lab);
    const watch = new LabWatch(env.runtime, plan);
    try {
      await watch.look(); // every node's token, so that the next looks wait
      const started = Date.now();
      const waiting = watch.look([], { waitMs: 60_000 });
      // Wake until the look answers (a wake sent before a node's look reached its agent finds nothing waiting).
      let answered = false;
      void waiting.then(() => (answered = true));
      await expect
        .poll(
          async () => {
            await watch.wake();
            return answered;
          },
          { timeout: 30_000, interval: 200 },
        )
        .toBe(true);
      expect((await waiting).failed.size).toBe(0);
      // Far from the 60 s it would have waited.
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      watch.close();
    }
  });

  it('says on the page and in the terminal when the lab goes away, and ends', async () => {
    const { run, url } = await startUi([]);
    const { page } = await open(url);
    await page.locator('.side[data-node="server"] g.state.lit[data-state="ESTABLISHED"]').waitFor({ timeout: 30_000 });
    const stop = await lab(['stop', instance]).exited;
    expect(stop.code).toBe(0);
    const exit = await run.exited;
    expect(exit.code).toBe(0);
    expect(exit.stdout + exit.stderr).toMatch(/the lab is gone: instance [0-9a-f]+ was stopped or removed/);
    expectNoStack(exit.stdout + exit.stderr);
    await page.locator('#status[data-status="gone"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('#banner').textContent()).toMatch(/the lab is gone/);
    await until('the instance is gone', async () => (await env.leftovers()).length === 0);
    await page.close();
  });
});
