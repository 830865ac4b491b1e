// `lab serve`'s pages as a student and an instructor see them, at a laptop's 1280×800 and a narrow 1024×700
// window in Chromium, with a real Lab 2 running: the join page looks like the others and says why a join failed;
// the ladder keeps its width once the machines' socket lines show; a check's wait loop reads in words and the
// score counts nothing that is not there; the dashboard cuts a 60-character name with an ellipsis (the whole name
// its tooltip) and shows every column. Layout is measured (getBoundingClientRect, scrollWidth), not eyeballed.
// TCPLAB_SCREENSHOTS=<dir> keeps a screenshot of each page and size there.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABEL } from '../../src/plan/plan.js';
import { removeInstance } from '../../src/engine/teardown.js';
import { describeDocker } from '../helpers/docker.js';
import { CHROMIUM, CHROMIUM_ARGS, freePort, withoutChromium } from '../helpers/browser.js';
import { expectNoStack, LabRun } from '../reliability/cli.js';

// Run in the page, not here: what the browser has.
declare const document: {
  querySelector(s: string): Element | null;
  querySelectorAll(s: string): ArrayLike<Element>;
  documentElement: Element;
};
declare const window: { innerWidth: number };
declare function getComputedStyle(e: Element): Record<string, string>;
interface Element {
  getBoundingClientRect(): { left: number; right: number; top: number; bottom: number; width: number; height: number };
  scrollWidth: number;
  clientWidth: number;
  textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(s: string): Element | null;
  closest(s: string): Element | null;
  parentElement: Element | null;
}

const SIZES = [
  { width: 1280, height: 800 },
  { width: 1024, height: 700 },
];
// 60 characters, the most a name may have.
const LONG_NAME = 'Maximiliana Alexandrovna Konstantinopoulou-Vanderbilt Smythe';
const SHOTS = process.env.TCPLAB_SCREENSHOTS;

async function shot(p: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

describeDocker("lab serve's pages at 1280×800 and 1024×700", (env) => {
  if (withoutChromium()) return;
  const dir = mkdtempSync(join(tmpdir(), 'tcplab-serve-pages-'));
  const state = join(dir, 'state');
  const classFile = join(dir, 'class.yaml');
  writeFileSync(
    classFile,
    [
      'title: Layout class',
      'labs: [2]',
      'join:',
      `  roster: [alice, { id: max, name: "${LONG_NAME}" }]`,
      '  code: true',
      'limits: { runningLabs: 2, startsAtOnce: 1 }',
      'state: ./state',
    ].join('\n'),
  );
  let server: LabRun | undefined;
  let base = '';
  let teacherLink = '';
  let aliceLink = '';
  let classId = '';
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;

  async function classInstances(): Promise<string[]> {
    const cs = await env.runtime.listContainers({ [LABEL.managed]: 'true' });
    return [
      ...new Set(cs.filter((c) => c.labels[LABEL.owner]?.startsWith(`tcplab-serve/${classId}/`)).map((c) => c.labels[LABEL.instance]!)),
    ];
  }

  beforeAll(async () => {
    expect(LONG_NAME).toHaveLength(60);
    const port = await freePort();
    server = new LabRun(['serve', '--class', classFile, '--port', String(port)], { env: { TCPLAB_STATE_DIR: join(dir, 'cli-state') } });
    await server.waitForOutput(/Ctrl-C stops the server/, 180_000);
    base = /on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(server.stdout)![1]!;
    teacherLink = /Instructor \(keep it secret\): (\S+)/.exec(server.stdout)![1]!;
    aliceLink = readFileSync(join(state, 'links.csv'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('alice,'))!
      .split(',')[2]!;
    classId = (JSON.parse(readFileSync(join(state, 'class.json'), 'utf8')) as { id: string }).id;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    ctx = await browser.newContext({ viewport: SIZES[0]! });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    if (server) {
      server.kill('SIGINT');
      expectNoStack((await server.exited).stderr);
    }
    for (const id of await classInstances()) {
      env.track(id);
      await removeInstance(env.runtime, id);
    }
    expect(await classInstances()).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the join page has the class pages’ look, labelled fields, and says clearly why a join failed', async () => {
    const stranger = await browser.newContext({ viewport: SIZES[0]! });
    try {
      const p = await stranger.newPage();
      await p.goto(base);
      // lab ui's look: its panel colour and font, not the browser's defaults.
      const look = await p.evaluate(() => ({
        font: getComputedStyle(document.querySelector('body')!).fontFamily,
        panel: document.querySelector('.panel') ? getComputedStyle(document.querySelector('.panel')!).backgroundColor : 'none',
        labels: ['code', 'name'].map((id) => document.querySelector(`label[for="${id}"]`)?.textContent ?? ''),
      }));
      expect(look.font).toMatch(/system-ui/);
      expect(look.panel).toBe('rgb(244, 245, 247)');
      expect(look.labels).toEqual(['Class code', 'Your name']);
      await shot(p, 'join-1280x800');
      // Nothing typed: which field is missing.
      await p.locator('button[type="submit"]').click();
      await expect.poll(() => p.locator('#message').textContent()).toMatch(/class code/);
      // A wrong code: the reason, what to do, the field marked, and in the error colour.
      await p.locator('#code').fill('WRONG123');
      await p.locator('#name').fill('Zed');
      await p.locator('button[type="submit"]').click();
      await expect.poll(() => p.locator('#message').textContent()).toMatch(/^Could not join: that is not the class code\. Check the code/);
      expect(await p.locator('#message').isVisible()).toBe(true);
      expect(await p.locator('#code').getAttribute('aria-invalid')).toBe('true');
      expect(await p.locator('#message').evaluate((m) => getComputedStyle(m).color)).toBe('rgb(180, 35, 24)');
      await shot(p, 'join-wrong-code-1280x800');
    } finally {
      await stranger.close();
    }
  });

  it('the ladder keeps a usable width once socket lines show, at both sizes', async () => {
    page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(aliceLink);
    // Before a lab: the list of labs, its panel as tall as the list (not stretched to the window's height).
    await page.locator('#lab-list li').first().waitFor();
    const slack = await page.evaluate(
      () =>
        document.querySelector('#labs')!.getBoundingClientRect().bottom -
        document.querySelector('#lab-list')!.getBoundingClientRect().bottom,
    );
    expect(slack).toBeLessThan(40);
    await shot(page, 'labs-1280x800');
    await page.locator('#lab-list li[data-slug="incomplete-handshake"] button').click();
    await page.locator('#actions button[data-intent="check"]').waitFor({ state: 'visible', timeout: 180_000 });
    // A listener on the server: its socket line shows under the server's diagram.
    await page.locator('#tab-server').click();
    await page.locator('#term-server .xterm').click();
    await expect.poll(() => page.locator('#term-server .xterm-rows').innerText(), { timeout: 30_000 }).toMatch(/root@server:\/# /);
    await page.keyboard.type('nc -lk 5555 &\n');
    await page.locator('.side[data-node="server"] .sockets li').first().waitFor({ timeout: 30_000 });
    for (const size of SIZES) {
      await page.setViewportSize(size);
      const measure = () =>
        page.evaluate(() => {
          const r = (s: string) => document.querySelector(s)!.getBoundingClientRect();
          const live = document.querySelector('#live')!;
          const pad = parseFloat(getComputedStyle(live).paddingLeft!) + parseFloat(getComputedStyle(live).paddingRight!);
          return {
            ladder: Math.round(r('#ladder').width),
            drawn: Math.round(r('#ladder svg').width),
            half: Math.round((r('#live').width - pad) / 2),
            gap: Math.round(r('#ladder').top - r('#ladder-head').bottom),
            page: document.documentElement.scrollWidth - window.innerWidth,
            // The smaller of the machines' state diagrams, as drawn.
            diagram: Math.round(
              Math.min(...Array.from(document.querySelectorAll('.side .diagram svg')).map((d) => d.getBoundingClientRect().height)),
            ),
          };
        });
      // Half the live panel (the machines have the other half), drawn to its box's width, right under its heads.
      const wide = size.width === 1280 ? 560 : 440;
      await expect
        .poll(measure)
        .toSatisfy(
          (m: Awaited<ReturnType<typeof measure>>) =>
            m.ladder >= wide &&
            m.ladder >= m.half - 8 &&
            Math.abs(m.drawn - m.ladder) <= 2 &&
            m.gap <= 2 &&
            m.page <= 0 &&
            m.diagram >= 200,
        );
      await shot(page, `student-${size.width}x${size.height}`);
    }
    expect(errors).toEqual([]);
  });

  it("after a check the probe's wait loop reads in words, the loop one click away, and the score counts nothing absent", async () => {
    await page.setViewportSize(SIZES[0]!);
    await page.locator('#actions button[data-intent="check"]').click();
    await page
      .locator('#walk[data-phase="task"] #checks-title')
      .filter({ hasText: /attempt 1/ })
      .waitFor({ timeout: 120_000 });
    // The result (a failed attempt's hint, then the checks) is under the step's buttons, beyond the panel's fold
    // at this size: it is scrolled into view in the walk's panel.
    const inView = () =>
      page.evaluate(() => {
        const walk = document.querySelector('#walk')!.getBoundingClientRect();
        const hint = document.querySelector('#hint-text')!.getBoundingClientRect();
        return hint.width > 0 && hint.top >= walk.top && hint.top < walk.bottom - 20;
      });
    await expect.poll(inView).toBe(true);
    const summary = page.locator('#commands details summary');
    await expect.poll(() => summary.allTextContents()).toContain('Check, server: waits until something listens on port 5555 (at most 5 s)');
    // The loop itself is there, behind the words.
    expect(await page.locator('#commands details code').first().textContent()).toMatch(/^server\$ sh -c 'for i in \$\(seq 100\)/);
    expect(await page.locator('#commands li[data-during="check"] code').first().textContent()).toBe('(Check) server$ nc -l 5555 &');
    expect(await page.locator('#commands').innerText()).not.toMatch(/seq 100/);
    // No prediction asked and no step's checks counted yet: only the task.
    expect(await page.locator('#score').textContent()).toBe('Score: tasks 0/1 done');
    expect(await page.locator('#score').textContent()).not.toMatch(/0\/0/);
    await shot(page, 'student-after-check-1280x800');
  });

  it('the dashboard cuts a 60-character name with an ellipsis (the whole name its tooltip) and shows every column', async () => {
    const t = await ctx.newPage();
    await t.goto(teacherLink);
    const name = t.locator('#row-body tr[data-student="max"] .name');
    await name.waitFor({ timeout: 20_000 });
    expect(await name.getAttribute('title')).toBe(LONG_NAME);
    expect(await name.textContent()).toBe(LONG_NAME);
    for (const size of SIZES) {
      await t.setViewportSize(size);
      const m = await t.evaluate(() => {
        const table = document.querySelector('#rows')!;
        const panel = table.closest('.panel')!;
        const box = table.parentElement!;
        const n = document.querySelector('#row-body tr[data-student="max"] .name')!;
        return {
          cut: n.scrollWidth > n.clientWidth,
          nameWidth: n.getBoundingClientRect().width,
          // The table fits its panel, or scrolls inside it: no column is cut off unreachable.
          fits: table.getBoundingClientRect().right <= panel.getBoundingClientRect().right,
          scrolls: getComputedStyle(box).overflowX === 'auto' && box.scrollWidth >= table.getBoundingClientRect().width,
          page: document.documentElement.scrollWidth - window.innerWidth,
          // The class's panel as tall as its table, not stretched to share the window with the gradebook.
          slack: panel.getBoundingClientRect().bottom - table.getBoundingClientRect().bottom,
        };
      });
      expect(m.slack, JSON.stringify(m)).toBeLessThan(40);
      expect(m.cut, JSON.stringify(m)).toBe(true);
      expect(m.nameWidth, JSON.stringify(m)).toBeLessThanOrEqual(14 * 16 + 1);
      expect(m.fits || m.scrolls, JSON.stringify(m)).toBe(true);
      expect(m.page, JSON.stringify(m)).toBeLessThanOrEqual(0);
      if (size.width === 1280) expect(m.fits, JSON.stringify(m)).toBe(true);
      await shot(t, `dashboard-${size.width}x${size.height}`);
    }
    await t.close();
  });
});
