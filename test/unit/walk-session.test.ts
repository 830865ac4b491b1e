// The walk as a model (src/walk/session.ts), driven the way the terminal and the page drive it: intents in,
// state and events out, against a fake instance (no Docker). What is shown before a prediction is answered,
// tasks with one more hint per failed check, a `lab check` from elsewhere, the record that lets another process
// resume the walk, a lab removed from outside, where a step's ladder begins, and the command the texts name.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Instance } from '../../src/engine/instance.js';
import type { Check, NodeSnapshot } from '../../src/grade/grade.js';
import { parseLab } from '../../src/lab/load.js';
import type { Action, Expectation, NodeName, Task } from '../../src/lab/schema.js';
import { expand } from '../../src/lab/templates.js';
import type { Segment } from '../../src/observe/segments.js';
import { parseEndpoint } from '../../src/observe/ss.js';
import { planLab, type Plan } from '../../src/plan/plan.js';
import { shellQuote, withStdin } from '../../src/plan/shell.js';
import { buildTimeline, type Timeline } from '../../src/trace/timeline.js';
import { EngineRelay, WalkRefused, WalkSession, type WalkEvent, type WalkInstance, type WalkOptions } from '../../src/walk/session.js';
import { StateFiles } from '../../src/walk/state-files.js';

const LAB = parseLab(`
id: 42
slug: test-walk
title: A walk for the tests
summary: Three steps.
intro: An intro.
topology: direct
notes: [A note.]
steps:
  - id: listen
    title: The server listens
    explain: nc -l 5555 on the server.
    predict:
      question: Which state will the server's socket be in?
      choices: [CLOSED, LISTEN, SYN_RECV, ESTABLISHED]
      answer: LISTEN
      why: listen() moves the socket to LISTEN.
    run:
      - { on: server, run: [nc, -l, "5555"], name: server, background: true }
    expect:
      - { on: server, socket: { state: LISTEN, local: "*:5555" } }
  - id: connect
    title: "Your task: connect"
    explain: Connect from the client.
    task:
      prompt: In \`lab shell client\`, connect to {{server.ip}} 5555; \`lab check\` looks.
      hints: [the first hint, "the second hint, {{server.ip}}"]
      solution:
        - { on: client, run: [nc, "{{server.ip}}", "5555"], name: c, background: true }
      expect:
        - { on: client, socket: { state: ESTABLISHED, peer: "{{server.ip}}:5555" } }
  - id: hello
    title: The client says hello
    explain: Once more, with data.
    run:
      - { on: client, run: [nc, "{{server.ip}}", "5555"], stdin: "hello\\n" }
    expect:
      - { on: server, socket: { state: LISTEN, local: "*:5555" } }
`);

const INSTANCE = 'abcd1234';

function segment(at: number, node: NodeName, dir: 'in' | 'out', flags: Segment['flags'], seq: number): Segment {
  return {
    node,
    at,
    iface: 'eth0',
    ifindex: 2,
    dir,
    src: parseEndpoint('198.18.7.2:40000'),
    dst: parseEndpoint('198.18.7.3:5555'),
    flags,
    seq,
    ack: 0,
    len: 0,
    win: 64240,
    ipId: seq,
    ttl: 64,
    ipOptions: 0,
    hex: '',
    origLen: 60,
  };
}

/** An Instance without Docker: commands "run" by emitting what they would show, checks pass when told to. */
class FakeInstance implements WalkInstance {
  readonly id = INSTANCE;
  readonly plan: Plan = planLab({ lab: LAB, instance: INSTANCE, image: 'x', subnets: ['198.18.7.0/24'] });
  readonly capture = true;
  readonly runtime = {} as Instance['runtime'];
  /** The kernel's clock (ms); what the last look saw up to; segments on the wire. */
  kernel = 1000;
  private latest: number | undefined;
  private from: number | undefined;
  segments: Segment[] = [];
  /** The results of the next task checks, in order (default: not met). */
  taskChecks: boolean[] = [];
  calls: string[] = [];
  downs = 0;
  downFails = false;

  constructor(private readonly relay: EngineRelay) {}

  get vars(): Record<string, string> {
    return this.plan.vars;
  }

  private check(step: string, e: Expectation, passed: boolean, task = false): Check {
    return { step, node: e.on, kind: 'socket', expected: `${e.on}: socket`, seen: [], passed, elapsedMs: 5, ...(task ? { task } : {}) };
  }

  async runActions(stepId: string, actions: Action[]): Promise<Check | undefined> {
    this.calls.push(`run ${stepId}`);
    for (const a of actions) {
      const shown = shellQuote(a.run!.map((x) => expand(x, this.vars)));
      const display = a.stdin !== undefined ? withStdin(shown, expand(a.stdin, this.vars)) : shown;
      this.relay.emit({
        type: 'action',
        node: a.on,
        display: a.background ? `${display} &` : display,
        typed: true,
        background: !!a.background,
      });
    }
    return undefined;
  }
  async waitFor(stepId: string, expectations: Expectation[]): Promise<Check[]> {
    return expectations.map((e) => this.check(stepId, e, true));
  }
  async checkTask(stepId: string, task: Task): Promise<Check[]> {
    this.calls.push(`check ${stepId}`);
    const passed = this.taskChecks.shift() ?? false;
    return task.expect.map((e) => this.check(stepId, e, passed, true));
  }
  async observeAll(): Promise<Map<NodeName, NodeSnapshot>> {
    this.latest = this.kernel;
    this.calls.push(`look ${this.kernel}`);
    return new Map(this.plan.nodes.map((n) => [n.key, { node: n.key, at: 0, sockets: [], commands: {} }]));
  }
  async evaluateNow(expectations: Expectation[]) {
    return expectations.map((e) => ({ e, evaluation: { holds: true, seen: ['LISTEN *:5555'] } }));
  }
  beginStep(): void {
    this.from = this.latest;
    this.calls.push(`begin ${this.latest}`);
  }
  get stepWindow(): { from?: number; to?: number } {
    return { ...(this.from !== undefined ? { from: this.from } : {}), ...(this.latest !== undefined ? { to: this.latest } : {}) };
  }
  timeline(): Timeline {
    return buildTimeline({
      topology: 'direct',
      addresses: { client: ['198.18.7.2'], server: ['198.18.7.3'] },
      segments: this.segments.filter((s) => this.latest !== undefined && s.at <= this.latest),
      samples: [],
    });
  }
  async exec() {
    // The machines' shell logs are empty: nothing typed.
    return { argv: [], exitCode: 0, stdout: '', stderr: '', durationMs: 1 };
  }
  close(): void {
    this.calls.push('close');
  }
  async down() {
    this.downs++;
    if (this.downFails) throw new Error('the engine is away');
    return { containers: 2, networks: 1 };
  }
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tcplab-walk-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

interface Made {
  walk: WalkSession;
  instance: FakeInstance;
  events: WalkEvent[];
  store: StateFiles;
  present: { yes: boolean };
}

function make(over: Partial<WalkOptions> = {}, instance?: FakeInstance, relay = new EngineRelay()): Made {
  const inst = instance ?? new FakeInstance(relay);
  const store = new StateFiles(dir);
  const present = { yes: true };
  const walk = new WalkSession({
    lab: LAB,
    file: '/labs/42.yaml',
    instance: inst,
    relay,
    store,
    owner: 'host:1',
    user: 'ana',
    command: 'npx lab',
    presence: async () => present.yes,
    presenceMs: 50,
    attemptsMs: 20,
    ...over,
  });
  const events: WalkEvent[] = [];
  walk.on((e) => events.push(e));
  return { walk, instance: inst, events, store, present };
}

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The letter the walk gave a prediction's choice. */
const letter = (walk: WalkSession, text: string) => walk.state.step!.prediction!.choices.find((c) => c.text === text)!.key;

describe('the walk as a model', () => {
  it('asks the prediction first, in lettered choices of the student, and tells the answer only after it', async () => {
    const { walk, events, instance } = make();
    await walk.start();
    const st = walk.state;
    expect(st.phase).toBe('predict');
    expect(st.step).toMatchObject({ index: 0, id: 'listen', explain: 'nc -l 5555 on the server.' });
    const p = st.step!.prediction!;
    expect(p.choices.map((c) => c.key)).toEqual(['a', 'b', 'c', 'd']);
    expect(p.choices.map((c) => c.text).sort()).toEqual(['CLOSED', 'ESTABLISHED', 'LISTEN', 'SYN_RECV']);
    // Nothing of the answer before the student has answered, and nothing has run yet.
    expect(JSON.stringify(st)).not.toContain('listen() moves');
    expect(p.answer).toBeUndefined();
    expect(instance.calls.filter((c) => c.startsWith('run'))).toEqual([]);
    expect(st.choices.map((c) => c.intent)).toEqual(p.choices.map((c) => ({ type: 'answer', key: c.key })));
    // The same student gets the same order again; another student, another order (for some of them).
    const again = make({}, undefined).walk;
    await again.start();
    expect(again.state.step!.prediction!.choices).toEqual(p.choices);
    const orders = new Set<string>();
    for (const user of ['ben', 'chloe', 'dev', 'eli', 'fay']) {
      const w = make({ user }).walk;
      await w.start();
      orders.add(w.state.step!.prediction!.choices.map((c) => c.text).join());
    }
    expect(orders.size).toBeGreaterThan(1);

    await walk.send({ type: 'answer', key: letter(walk, 'SYN_RECV') });
    const after = walk.state;
    expect(after.phase).toBe('menu');
    expect(after.step!.prediction).toMatchObject({ right: false, answer: 'LISTEN', why: 'listen() moves the socket to LISTEN.' });
    expect(after.step!.actions.map((a) => a.display)).toEqual(['nc -l 5555 &']);
    expect(after.score).toMatchObject({ predictions: { right: 0, asked: 1 }, checks: { met: 1, total: 1 }, steps: { done: 1 } });
    const types = events.map((e) => e.type).filter((t) => t !== 'phase');
    expect(types).toEqual(['started', 'step', 'answered', 'run', 'action', 'watching', 'sockets', 'checks', 'revealed']);
    // The state is data: it goes through JSON unchanged.
    expect(JSON.parse(JSON.stringify(after))).toEqual(after);
  });

  it('refuses an intent that does not fit, and changes nothing', async () => {
    const { walk } = make();
    await walk.start();
    const before = walk.state;
    await expect(walk.send({ type: 'check' })).rejects.toThrow(WalkRefused);
    await expect(walk.send({ type: 'next' })).rejects.toThrow(/not done yet/);
    await expect(walk.send({ type: 'answer', key: 'z' })).rejects.toThrow(/not one of the letters a, b, c, d/);
    expect(walk.state).toEqual(before);
  });

  it('gives one more hint per failed check, records every attempt, and goes on when the check passes', async () => {
    const { walk, instance, events, store } = make();
    await walk.start();
    await walk.send({ type: 'answer', key: letter(walk, 'LISTEN') });
    await walk.send({ type: 'next' });
    let st = walk.state;
    expect(st.phase).toBe('task');
    expect(st.step!.task!.prompt).toBe(
      `In \`npx lab shell client\`, connect to ${instance.vars['server.ip']} 5555; \`npx lab check\` looks.`,
    );
    expect(st.choices.map((c) => c.label)).toContain('Check my work (same as `npx lab check`)');
    instance.taskChecks = [false, false, true];
    await walk.send({ type: 'check' });
    expect(walk.state.step!.task!.lastCheck).toMatchObject({ attempt: 1, passed: false, by: 'walk', hint: 'the first hint' });
    await walk.send({ type: 'check' });
    expect(walk.state.step!.task!.lastCheck).toMatchObject({ attempt: 2, hint: `the second hint, ${instance.vars['server.ip']}` });
    expect(walk.state.phase).toBe('task');
    await walk.send({ type: 'check' });
    st = walk.state;
    expect(st.phase).toBe('menu');
    expect(st.step!.task).toMatchObject({ attempts: 3, outcome: 'done', recorded: 0 });
    expect(st.score.tasks).toEqual({ done: 1, total: 1 });
    expect(store.loadAttempts(INSTANCE).connect).toMatchObject({ attempts: 3, passed: true });
    expect(store.loadWork('test-walk')?.tasks.connect).toMatchObject({ passed: true, attempts: 3 });
    expect(events.filter((e) => e.type === 'recorded')).toEqual([{ type: 'recorded', commands: 0 }]);
  });

  it('hears a `lab check` made in another terminal while the task waits, and goes on when it passed', async () => {
    const { walk, events, store } = make();
    await walk.start();
    await walk.send({ type: 'answer', key: letter(walk, 'LISTEN') });
    await walk.send({ type: 'next' });
    store.recordAttempt(INSTANCE, 'connect', false);
    await until('the failed check', () => events.some((e) => e.type === 'task-checked'));
    expect(walk.state.step!.task!.lastCheck).toMatchObject({ attempt: 1, passed: false, by: 'lab check', hint: 'the first hint' });
    store.recordAttempt(INSTANCE, 'connect', true);
    await until('the menu after the task', () => walk.state.phase === 'menu');
    await walk.idle();
    expect(walk.state.step!.task).toMatchObject({ attempts: 2, outcome: 'done' });
    expect(walk.state.score.tasks.done).toBe(1);
  });

  it('keeps a record from which another process resumes the walk where it was', async () => {
    const relay = new EngineRelay();
    const first = make({}, undefined, relay);
    await first.walk.start();
    await first.walk.send({ type: 'answer', key: letter(first.walk, 'LISTEN') });
    await first.walk.send({ type: 'next' });
    first.instance.taskChecks = [false];
    await first.walk.send({ type: 'check' });
    await first.walk.send({ type: 'hint' });
    first.walk.detach();
    const record = first.store.loadRunning(INSTANCE)!;
    expect(record).toMatchObject({
      stepIndex: 1,
      stepId: 'connect',
      owner: 'host:1',
      walk: { phase: 'task', hintsShown: 1, attemptsSeen: 1 },
    });

    // A new process (a restarted server): a new instance object on the same lab, the record.
    const relay2 = new EngineRelay();
    const second = make({ record, owner: 'host:2' }, new FakeInstance(relay2), relay2);
    await second.walk.start();
    const st = second.walk.state;
    expect(st.phase).toBe('task');
    expect(st.step).toMatchObject({ index: 1, id: 'connect' });
    expect(st.step!.task).toMatchObject({ attempts: 1, hintsShown: ['the first hint'] });
    expect(st.score).toMatchObject({ predictions: { right: 1, asked: 1 }, checks: { met: 1, total: 1 }, steps: { done: 1 } });
    expect(second.store.loadRunning(INSTANCE)?.owner).toBe('host:2');
    second.instance.taskChecks = [true];
    await second.walk.send({ type: 'check' });
    expect(second.walk.state.step!.task!.lastCheck).toMatchObject({ attempt: 2, passed: true });
    await second.walk.send({ type: 'next' });
    await second.walk.send({ type: 'next' });
    const ending = second.walk.state.ended!;
    expect(ending).toMatchObject({
      how: 'finished',
      completed: true,
      exitCode: 0,
      notes: ['A note.'],
      removed: '2 containers and 1 network',
    });
    expect(second.store.loadRunning(INSTANCE)).toBeUndefined();
    expect(second.store.loadProgress()['test-walk']).toMatchObject({ completed: true });
  });

  it('resumes a walk that was busy in a step at its menu, and says the step was not checked', async () => {
    const { walk, store } = make();
    await walk.start();
    walk.detach();
    const record = { ...store.loadRunning(INSTANCE)! };
    record.walk = { ...record.walk!, phase: 'running', predicted: 'LISTEN' };
    const again = make({ record });
    await again.walk.start();
    expect(again.walk.state.phase).toBe('menu');
    expect(again.walk.state.step).toMatchObject({ index: 0, resumed: true, prediction: { chosen: letter(again.walk, 'LISTEN') } });
  });

  it('notices within a second that the lab was removed from outside, and says what removes only this lab', async () => {
    const { walk, present, instance } = make();
    await walk.start();
    await walk.send({ type: 'answer', key: 'a' });
    const removed = Date.now();
    present.yes = false;
    instance.downFails = true;
    await until('the end', () => walk.state.phase === 'ended', 1000);
    const ms = Date.now() - removed;
    expect(ms).toBeLessThan(1000);
    const ending = walk.state.ended!;
    expect(ending).toMatchObject({ how: 'gone', exitCode: 1 });
    expect(ending.message).toContain(`\`npx lab stop ${INSTANCE}\` removes what is left of it (only this lab)`);
    expect(ending.message).toContain('`npx lab start 42` starts the lab again');
    expect(ending.message).not.toContain('lab clean');
  });

  it('removes what is left of a lab removed from outside itself, when it can', async () => {
    const { walk, present, instance } = make();
    await walk.start();
    present.yes = false;
    await until('the end', () => walk.state.phase === 'ended');
    expect(instance.downs).toBe(1);
    expect(walk.state.ended!.message).toContain('What was left of it is removed (2 containers and 1 network).');
  });

  it('begins a step when the student moves on to it: what came on the wire at the menu is the previous step', async () => {
    const { walk, instance } = make();
    await walk.start();
    await walk.send({ type: 'answer', key: 'a' });
    // At the menu after step 1, a SYN goes out (a retransmission, say) while the student reads.
    instance.kernel = 5000;
    instance.segments.push(segment(5000, 'client', 'out', ['SYN'], 100));
    instance.kernel = 9000;
    await walk.send({ type: 'next' });
    instance.kernel = 9500;
    instance.segments.push(segment(9400, 'client', 'out', ['SYN'], 200));
    await walk.send({ type: 'observe' });
    const ladder = walk.state.step!.ladder!;
    expect(ladder.from).toBe(9000);
    const rows = ladder.text.split('\n').filter((l) => /^\s+\d+\.\d{3} /.test(l));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(/^\s+0\.400 .*SYN/);
    // The look at the moment the student moved on came before the step began.
    expect(instance.calls.slice(instance.calls.indexOf('look 9000'), instance.calls.indexOf('look 9000') + 2)).toEqual([
      'look 9000',
      'begin 9000',
    ]);
  });

  it("begins a predicted step again when the prediction is answered: the time spent thinking is no one's", async () => {
    const { walk, instance } = make();
    instance.kernel = 1000;
    await walk.start();
    expect(walk.state.phase).toBe('predict');
    // While the student thinks, a retransmission of something earlier goes by.
    instance.segments.push(segment(2500, 'client', 'out', ['SYN'], 100));
    instance.kernel = 3000;
    await walk.send({ type: 'answer', key: 'a' });
    instance.kernel = 3200;
    instance.segments.push(segment(3100, 'client', 'out', ['SYN'], 200));
    await walk.send({ type: 'observe' });
    const ladder = walk.state.step!.ladder!;
    expect(ladder.from).toBe(3000);
    const rows = ladder.text.split('\n').filter((l) => /^\s+\d+\.\d{3} /.test(l));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(/^\s+0\.100 .*SYN/);
    // Looked at and begun after the answer, before the step's commands ran.
    const at = instance.calls.indexOf('look 3000');
    expect(instance.calls.slice(at, at + 3)).toEqual(['look 3000', 'begin 3000', 'run listen']);
  });

  it('names the command the student can type, or the page has none and names none', async () => {
    const { walk } = make({ command: 'npx lab' });
    await walk.start();
    expect(walk.state.command).toBe('npx lab');
    const page = make({ command: undefined });
    await page.walk.start();
    await page.walk.send({ type: 'answer', key: 'a' });
    await page.walk.send({ type: 'next' });
    const st = page.walk.state;
    expect(st.command).toBeUndefined();
    expect(st.step!.task!.prompt).toBe(`In the client's terminal, connect to ${page.instance.vars['server.ip']} 5555; Check looks.`);
    expect(st.choices.map((c) => c.label)).toEqual(expect.arrayContaining(['Check my work', 'Quit (removes the lab)']));
    expect(JSON.stringify(st)).not.toMatch(/`(npx )?lab /);
  });

  it('shows stdin as a person would type it at bash', async () => {
    const { walk } = make();
    await walk.start();
    await walk.send({ type: 'answer', key: 'a' });
    await walk.send({ type: 'next' });
    await walk.send({ type: 'solve' });
    await walk.send({ type: 'next' });
    const shown = walk.state.step!.actions.map((a) => a.display);
    expect(shown).toEqual([`nc ${walk.state.machines.find((m) => m.node === 'server')!.ips[0]} 5555 <<< hello`]);
    expect(withStdin('nc h 1', 'two\nlines\n')).toBe("printf 'two\\nlines\\n' | nc h 1");
    expect(withStdin('nc h 1', 'no newline')).toBe("printf 'no newline' | nc h 1");
    expect(withStdin('nc h 1', '50% \\o/\n')).toBe("nc h 1 <<< '50% \\o/'");
    expect(withStdin('nc h 1', '50%\\n')).toBe("printf '50%%\\\\n' | nc h 1");
  });

  it('quits in the middle of a task: the work so far recorded, the lab removed, the record gone', async () => {
    const { walk, instance, store } = make();
    await walk.start();
    await walk.send({ type: 'answer', key: 'a' });
    await walk.send({ type: 'next' });
    await walk.send({ type: 'quit' });
    expect(walk.state.ended).toMatchObject({ how: 'quit', exitCode: 0, completed: false });
    expect(instance.downs).toBe(1);
    expect(store.loadRunning(INSTANCE)).toBeUndefined();
    expect(store.loadWork('test-walk')?.tasks.connect).toMatchObject({ passed: false });
    expect(store.loadEnded(INSTANCE)).toMatchObject({ how: 'quit' });
  });

  it('ends as interrupted when its signal aborts, and leaves removing the lab to its owner', async () => {
    const abort = new AbortController();
    const { walk, instance } = make({ signal: abort.signal });
    await walk.start();
    abort.abort('SIGINT');
    await until('the end', () => walk.state.phase === 'ended');
    expect(walk.state.ended).toMatchObject({ how: 'interrupted', exitCode: 130 });
    expect(instance.downs).toBe(0);
  });

  it('keeps a lab that was asked to be kept, and its record with it', async () => {
    const { walk, instance, store } = make({ keep: true });
    await walk.start();
    await walk.send({ type: 'quit' });
    expect(walk.state.ended).toMatchObject({ how: 'quit', kept: true });
    expect(instance.downs).toBe(0);
    expect(store.loadRunning(INSTANCE)?.keep).toBe(true);
  });
});
