// `lab serve` end to end, as issue 18 defines done: Debian's Chromium through playwright-core and simulated
// students (WebSocket clients) against the real CLI and engine. A student joins by their link, starts Lab 2,
// writes the task's rule in the page's terminal, presses Check (passed) and finishes the lab; a closed tab comes
// back to the same shell; the server restarts in the middle and nothing is lost; the dashboard and its CSV show
// the work; a second student reaches nothing of the first's by any URL or message; ten students at once all
// finish Lab 1's task; nothing is left behind.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABEL } from '../../src/plan/plan.js';
import { removeInstance } from '../../src/engine/teardown.js';
import { ClassClient } from '../../src/bench/class-client.js';
import { describeDocker } from '../helpers/docker.js';
import { CHROMIUM, CHROMIUM_ARGS, freePort, withoutChromium } from '../helpers/browser.js';
import { expectNoStack, LabRun } from '../reliability/cli.js';

// Run in the page, not here: what the browser has.
declare const document: { querySelector(s: string): { textContent: string | null } | null };
declare const location: { href: string };

describeDocker('lab serve: a class in the browser', (env) => {
  if (withoutChromium()) return;
  const dir = mkdtempSync(join(tmpdir(), 'tcplab-serve-'));
  const state = join(dir, 'state');
  const classFile = join(dir, 'class.yaml');
  writeFileSync(
    classFile,
    [
      'title: Test class',
      'labs: [1, 2]',
      'join:',
      '  roster: [alice, { id: bob, name: Bob B }]',
      '  code: true',
      'limits: { runningLabs: 12, startsAtOnce: 6 }',
      'state: ./state',
    ].join('\n'),
  );
  let port = 0;
  let server: LabRun | undefined;
  let base = '';
  let teacherLink = '';
  let code = '';
  const links = new Map<string, string>();
  let browser: Browser;
  let alice: BrowserContext;
  let page: Page;
  let classId = '';

  async function startServer(): Promise<LabRun> {
    const run = new LabRun(['serve', '--class', classFile, '--port', String(port)], { env: { TCPLAB_STATE_DIR: join(dir, 'cli-state') } });
    await run.waitForOutput(/Ctrl-C stops the server/, 180_000);
    server = run;
    return run;
  }

  async function stopServer(): Promise<void> {
    const run = server!;
    run.kill('SIGINT');
    const exit = await run.exited;
    expectNoStack(exit.stderr);
    server = undefined;
  }

  /** Every instance this class made, found by its owner label (the class id is in the state folder). */
  async function classInstances(): Promise<string[]> {
    const cs = await env.runtime.listContainers({ [LABEL.managed]: 'true' });
    return [
      ...new Set(cs.filter((c) => c.labels[LABEL.owner]?.startsWith(`tcplab-serve/${classId}/`)).map((c) => c.labels[LABEL.instance]!)),
    ];
  }

  beforeAll(async () => {
    port = await freePort();
    const run = await startServer();
    base = /on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(run.stdout)![1]!;
    teacherLink = /Instructor \(keep it secret\): (\S+)/.exec(run.stdout)![1]!;
    code = /type the code ([A-Z2-9]+)/.exec(run.stdout)![1]!;
    for (const line of readFileSync(join(state, 'links.csv'), 'utf8').trim().split('\n').slice(1)) {
      const [id, , link] = line.split(',');
      links.set(id!, link!);
    }
    classId = (JSON.parse(readFileSync(join(state, 'class.json'), 'utf8')) as { id: string }).id;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    alice = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    if (server) await stopServer().catch(() => undefined);
    // The class's labs outlive the server on purpose; the test removes them and then checks nothing is left.
    for (const id of await classInstances()) {
      env.track(id);
      await removeInstance(env.runtime, id);
    }
    expect(await classInstances()).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(url: string): Promise<Page> {
    const p = await alice.newPage();
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(e.message));
    p.on('console', (m) => {
      if (m.type() === 'error' && !/401|404/.test(m.text())) errors.push(m.text());
    });
    p.on('request', (r) => {
      if (!r.url().startsWith(base) && !r.url().startsWith(base.replace('http', 'ws')))
        errors.push(`request outside the server: ${r.url()}`);
    });
    (p as unknown as { errors: string[] }).errors = errors;
    await p.goto(url);
    return p;
  }

  const terminalText = (p: Page, node = 'client') => p.locator(`#term-${node} .xterm-rows`).innerText();

  async function typeInTerminal(p: Page, text: string, node = 'client'): Promise<void> {
    await p.locator(`#tab-${node}`).click();
    await p.locator(`#term-${node} .xterm`).click();
    await p.keyboard.type(text);
  }

  it('a student opens their link, starts Lab 2, writes the rule in the terminal, and Check passes', async () => {
    page = await open(links.get('alice')!);
    expect(new URL(page.url()).pathname).toBe('/');
    await page.locator('#lab-list li[data-slug="incomplete-handshake"] button').click();
    await page.locator('#walk').waitFor({ state: 'visible', timeout: 120_000 });
    await page.locator('#actions button[data-intent="check"]').waitFor({ state: 'visible', timeout: 60_000 });
    expect(await page.locator('#step-title').textContent()).toMatch(/drops SYNs to port 5555/);
    await expect.poll(() => terminalText(page), { timeout: 30_000 }).toMatch(/root@client:\/# /);
    await typeInTerminal(page, 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP\n');
    await typeInTerminal(page, 'iptables -S OUTPUT | grep -c DROP\n');
    await expect.poll(() => terminalText(page), { timeout: 20_000 }).toMatch(/\n1\s*\n/);
    await page.locator('#actions button[data-intent="check"]').click();
    await page.locator('#actions button[data-intent="next"]').waitFor({ state: 'visible', timeout: 60_000 });
    expect(await page.locator('#checks-title').textContent()).toBe('Checks (attempt 1: passed)');
    expect(await page.locator('#checks li[data-status="not met"]').count()).toBe(0);
    expect(await page.locator('#score').textContent()).toMatch(/tasks 1\/1 done/);
    // The live view of lab ui beside it.
    await page.locator('.side[data-node="client"]').waitFor({ timeout: 30_000 });
    expect((page as unknown as { errors: string[] }).errors).toEqual([]);
  });

  it('a second student reaches nothing of the first one by any URL or message', async () => {
    const bob = await browser.newContext();
    try {
      const p = await bob.newPage();
      await p.goto(links.get('bob')!);
      await p.locator('#lab-list li').first().waitFor();
      const tries = await p.evaluate(async () => {
        const statusOf = async (path: string) => (await fetch(path)).status;
        const socket = (path: string) =>
          new Promise<string>((resolve) => {
            const ws = new WebSocket(new URL(path, location.href).href.replace('http', 'ws'));
            ws.onopen = () => resolve('open');
            ws.onmessage = (e) => resolve(`message ${String(e.data).slice(0, 80)}`);
            ws.onerror = () => resolve('refused');
          });
        return {
          watchPage: await statusOf('/watch/alice'),
          state: await statusOf('/api/class/students/alice/state'),
          live: await statusOf('/api/class/students/alice/live'),
          dashboard: await statusOf('/dashboard'),
          gradebook: await statusOf('/api/class/gradebook/incomplete-handshake.csv'),
          ownTerminal: await socket('/ws/term?node=client'),
          namedTerminal: await socket('/ws/term?node=client&student=alice'),
          watchTerminal: await socket('/ws/watch?student=alice&node=client'),
        };
      });
      expect(tries).toEqual({
        watchPage: 401,
        state: 401,
        live: 401,
        dashboard: 401,
        gradebook: 401,
        ownTerminal: 'refused',
        namedTerminal: 'refused',
        watchTerminal: 'refused',
      });
      const me = await p.evaluate(
        async () => (await (await fetch('/api/me')).json()) as { state: { student: { id: string }; current?: unknown } },
      );
      expect(me.state.student.id).toBe('bob');
      expect(me.state.current).toBeUndefined();
    } finally {
      await bob.close();
    }
  });

  it('a closed tab, opened again, is the same shell with its screen', async () => {
    await typeInTerminal(page, 'echo shell-$$-marker\n');
    await expect.poll(() => terminalText(page), { timeout: 20_000 }).toMatch(/shell-\d+-marker/);
    const pid = /shell-(\d+)-marker/.exec(await terminalText(page))![1];
    await page.close();
    page = await open(base);
    await page.locator('#actions button[data-intent="next"]').waitFor({ state: 'visible', timeout: 30_000 });
    await expect.poll(() => terminalText(page), { timeout: 20_000 }).toMatch(new RegExp(`shell-${pid}-marker`));
    await typeInTerminal(page, 'echo again-$$\n');
    await expect.poll(() => terminalText(page), { timeout: 20_000 }).toMatch(new RegExp(`again-${pid}`));
  });

  it("the instructor watches the student's page and terminal, read-only", async () => {
    const t = await alice.newPage();
    await t.goto(teacherLink);
    await t.goto(`${base}watch/alice`);
    await t.locator('#walk').waitFor({ state: 'visible', timeout: 30_000 });
    expect(await t.locator('#who').textContent()).toMatch(/watching alice .*read-only/);
    await expect.poll(() => terminalText(t), { timeout: 20_000 }).toMatch(/again-\d+/);
    expect(await t.locator('#actions button').count()).toBe(0);
    // Keys typed on the watching page go nowhere.
    await t.locator('#term-client .xterm').click();
    await t.keyboard.type('echo from-the-watcher\n');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await terminalText(page)).not.toContain('from-the-watcher');
    await t.close();
  });

  it('walks on, survives a server restart in the middle with nothing lost, and finishes the lab', async () => {
    const walk = page.locator('#walk');
    /** The walk's step and phase once it waits for the student ('' when the lab is gone from the page). */
    const where = async () => {
      await page.waitForFunction(
        () => {
          const w = document.querySelector('#walk') as unknown as { hidden: boolean; dataset: { phase?: string } } | null;
          return !w || w.hidden || ['predict', 'menu', 'task'].includes(w.dataset.phase ?? '');
        },
        undefined,
        { timeout: 180_000 },
      );
      if (await walk.isHidden()) return '';
      return `${await walk.getAttribute('data-step')} ${await walk.getAttribute('data-phase')}`;
    };
    let restarted = false;
    for (let guard = 0; guard < 40; guard++) {
      const here = await where();
      if (!here) break;
      const [step, phase] = here.split(' ');
      if (!restarted && step === '3' && phase === 'predict') {
        // The server goes away and comes back with a prediction pending: the step, the score and the lab stay.
        await stopServer();
        await startServer();
        expect(server!.stdout).toMatch(/1 running lab reattached, 0 removed/);
        await page.reload();
        await page.locator('#walk[data-phase="predict"][data-step="3"]').waitFor({ timeout: 30_000 });
        expect(await page.locator('#score').textContent()).toMatch(/tasks 1\/1 done/);
        restarted = true;
      }
      if (phase === 'predict') {
        await page.locator('#predict input[type="radio"]').first().check();
        await page.locator('#predict-go').click();
      } else if (phase === 'menu') await page.locator('#actions button[data-intent="next"]').click();
      else throw new Error(`the walk stopped at step ${step} in phase ${phase}: ${await page.locator('#walk').innerText()}`);
      // Until the page shows another step or phase (or the lab has gone).
      await page.waitForFunction(
        (before) => {
          const w = document.querySelector('#walk') as unknown as { hidden: boolean; dataset: { step?: string; phase?: string } } | null;
          return !w || w.hidden || `${w.dataset.step} ${w.dataset.phase}` !== before;
        },
        here,
        { timeout: 180_000 },
      );
    }
    expect(restarted).toBe(true);
    await page.locator('#notice-text').filter({ hasText: 'Lab 2 finished (completed)' }).waitFor({ timeout: 60_000 });
    await expect.poll(() => page.locator('#lab-list li[data-slug="incomplete-handshake"]').getAttribute('data-progress')).toBe('completed');
  });

  it("the dashboard shows it, and the exported CSV has the student's points", async () => {
    const t = await alice.newPage();
    await t.goto(teacherLink);
    expect(new URL(t.url()).pathname).toBe('/dashboard');
    const row = t.locator('#row-body tr[data-student="alice"]');
    await expect.poll(() => row.locator('.completed').textContent(), { timeout: 20_000 }).toContain('Lab 2');
    const csv = await (await t.request.get(`${base}api/class/gradebook/incomplete-handshake.csv`)).text();
    const [header, ...rows] = csv.trim().split('\r\n');
    expect(header).toMatch(/^student,drop-syn,/);
    const aliceRow = rows.find((r) => r.startsWith('alice,'))!;
    const cols = header!.split(',');
    const cells = aliceRow.split(',');
    expect(cells[cols.indexOf('passed')]).toBe('true');
    expect(Number(cells[cols.indexOf('total')])).toBe(Number(cells[cols.indexOf('max')]));
    expect(rows.find((r) => r.startsWith('bob,'))).toMatch(/,false,false,live,/);
    // The recorded commands (the rule typed in the page's terminal), replayed through lab grade's grader.
    await t.locator('#grade-lab').selectOption('incomplete-handshake');
    await t.locator('#replay').click();
    await t.locator('#replay-csv').waitFor({ state: 'visible', timeout: 240_000 });
    const replayed = await (await t.request.get(`${base}api/class/gradebook/incomplete-handshake.csv?from=replay`)).text();
    const line = replayed.split('\r\n').find((r) => r.startsWith('alice,'));
    expect(line?.split(',')[cols.indexOf('passed')], replayed).toBe('true');
    const sub = readFileSync(
      join(
        state,
        'exports',
        readdirSync(join(state, 'exports')).find((d) => d.includes('replay'))!,
        'submissions',
        'alice.yaml',
      ),
      'utf8',
    );
    // What lab submit would hand in: the task's timeline, the rule as the student typed it in the page's terminal.
    expect(sub).toMatch(/drop-syn:\n(?:\s*#.*\n)*\s+- client: iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP\n\s+at: /);
    await t.close();
  });

  it("ten students at once all finish Lab 1's task", async () => {
    const students = Array.from({ length: 10 }, () => new ClassClient(base));
    try {
      await Promise.all(students.map((s, i) => s.join(code, `Student ${i + 1}`)));
      await Promise.all(students.map((s) => s.must('/api/me/start', { slug: 'basic-states' })));
      await Promise.all(students.map((s) => walkLab1(s)));
      // The task done by each (what this test is about); a check of a later step that a loaded host saw late
      // would cost the lab its "completed", not the task.
      for (const s of students) {
        const best = (await s.me()).labs.find((l) => l.slug === 'basic-states')?.best as { tasks: { done: number } } | undefined;
        expect(best?.tasks.done, s.state?.student.id).toBe(1);
      }
    } finally {
      for (const s of students) s.close();
    }
  });
});

/** A simulated student walks Lab 1: predictions answered, steps continued, the task done in two terminals. */
async function walkLab1(s: ClassClient): Promise<void> {
  await s.until('the lab running', (x) => x.current?.status === 'running', 240_000);
  for (let guard = 0; guard < 40; guard++) {
    const st = await s.until(
      'a step waiting for the student',
      (x) => !x.current || (x.current.status === 'running' && ['predict', 'task', 'menu'].includes(x.current.walk!.phase)),
      240_000,
    );
    const cur = st.current;
    if (!cur) return;
    const w = cur.walk!;
    const at = `${w.step?.index} ${w.phase}`;
    if (w.phase === 'predict') await s.must('/api/me/walk', { type: 'answer', key: 'a' });
    else if (w.phase === 'menu') await s.must('/api/me/walk', { type: 'next' });
    else {
      const port = /port (\d{4})/.exec(w.step!.task!.prompt)![1];
      const serverIp = cur.nodes!.find((n) => n.node === 'server')!.addresses[0];
      const server = await s.terminal('server');
      const client = await s.terminal('client');
      try {
        await server.until(/# $/);
        server.type(`nc -l ${port}\r`);
        await client.until(/# $/);
        client.type(`for i in 1 2 3 4 5; do echo hi | nc -q0 ${serverIp} ${port} && break; sleep 0.3; done\r`);
        await server.until(/hi/, 30_000);
        await s.must('/api/me/walk', { type: 'check' });
        const after = await s.until(
          'the check',
          (x) => (x.current?.walk?.step?.task?.attempts ?? 0) > w.step!.task!.attempts && x.current?.walk?.phase !== 'busy',
          120_000,
        );
        if (!after.current?.walk?.step?.task?.lastCheck?.passed)
          throw new Error(`Lab 1's check did not pass: ${JSON.stringify(after.current?.walk?.step)}`);
      } finally {
        server.close();
        client.close();
      }
    }
    // The intent is taken; wait until the walk has moved on from this step and phase.
    await s.until('the walk moving on', (x) => !x.current || `${x.current.walk?.step?.index} ${x.current.walk?.phase}` !== at, 240_000);
  }
  throw new Error('Lab 1 did not finish within 40 moves');
}
