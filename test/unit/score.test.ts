// Points from a run: a task's section is all or nothing, partial credit only where the lab gives a check points
// of its own, and never for a check the null answer meets; what was never checked counts as not met.
import { describe, expect, it } from 'vitest';
import { resolveLab } from '../../src/lab/catalogue.js';
import type { Expectation, Lab } from '../../src/lab/schema.js';
import { validateLabText } from '../../src/lab/load.js';
import { commandFailure, describeExpectation, type Check, type StepResult } from '../../src/grade/grade.js';
import { UNFILLED } from '../../src/lab/templates.js';
import { labChecks, maxScoreOf, scoreLab, settledAfter } from '../../src/grade/score.js';
import { catalogue } from '../../src/lab/catalogue.js';

const vars = { 'client.ip': '198.19.9.2', 'server.ip': '198.19.9.3', 'variant.port': '5637' };

function check(step: string, e: Expectation, passed: boolean, task = false): Check {
  return {
    step,
    node: e.on,
    kind: 'socket',
    expected: describeExpectation(e, vars),
    name: describeExpectation(e, UNFILLED),
    seen: [passed ? 'ok' : 'nope'],
    passed,
    elapsedMs: 1,
    ...(task ? { task } : {}),
  };
}

/** Every step run; `failing` names the checks (by step id and index over task+expect) that fail. */
function run(lab: Lab, failing: Record<string, number[]> = {}): StepResult[] {
  return lab.steps.map((s) => {
    const exps = [...(s.task?.expect ?? []).map((e) => [e, true] as const), ...(s.expect ?? []).map((e) => [e, false] as const)];
    const checks = exps.map(([e, task], i) => check(s.id, e, !(failing[s.id] ?? []).includes(i), task));
    return { id: s.id, title: s.title, checks, passed: checks.every((c) => c.passed) };
  });
}

const lab2 = resolveLab('2').lab;
const lab1 = resolveLab('1').lab;
const lab3 = resolveLab('3').lab;
const lab6 = resolveLab('6').lab;
/** Lab 2's run of an answer that REJECTs: the server never sees the SYN, but the client is refused. */
const reject = {
  'drop-syn': [0, 1],
  'connect-dropped': [0],
  retransmits: [0, 1],
};
/** And one that drops the server's SYN|ACKs in the client's INPUT: the client waits, the server sees the SYN. */
const wrongChain = {
  'drop-syn': [2],
  'connect-dropped': [1],
  retransmits: [1, 2],
  release: [1, 2],
};
/** No rule at all: the client connects. */
const nothing = {
  'drop-syn': [0, 2],
  'connect-dropped': [0, 1, 2],
  retransmits: [0, 1, 2],
  'give-up': [0],
  'connect-half-open': [0, 1, 2, 3],
  release: [0, 1, 2],
};

describe('points: nothing for nothing', () => {
  it('Lab 2: 20 points, all of them for a right answer, in one section (its task and the seven steps it shapes)', () => {
    expect(maxScoreOf(lab2)).toBe(20);
    const full = scoreLab(lab2, run(lab2));
    expect(full).toMatchObject({ score: 20, maxScore: 20, passed: true });
    expect(full.sections.map((s) => [s.step, s.score, s.maxScore])).toEqual([['drop-syn', 20, 20]]);
  });

  it('Lab 2: REJECT and the wrong chain score clearly below a right answer and clearly above nothing, and say why', () => {
    const r = scoreLab(lab2, run(lab2, reject));
    const w = scoreLab(lab2, run(lab2, wrongChain));
    const n = scoreLab(lab2, run(lab2, nothing));
    expect([r.score, w.score, n.score]).toEqual([6, 6, 0]);
    // Which check earned the points: the one that says the SYN never reached the server, for the REJECT.
    const earned = (s: typeof r) => s.sections[0]!.items.filter((it) => it.points > 0).map((it) => it.name);
    expect(earned(r)).toEqual(['server: no SYN segments to *:5555 on the wire for 1s (within 5s)']);
    expect(earned(w)).toEqual(['client: socket SYN_SENT, peer {{server.ip}}:5555 for 1s (within 5s)']);
    expect(earned(n)).toEqual([]);
  });

  it('a later step that fails costs the all-or-nothing part, not the partial credit', () => {
    const r = scoreLab(lab2, run(lab2, { 'connect-dropped': [0] }));
    expect(r).toMatchObject({ score: 12, maxScore: 20, passed: false });
    const whole = r.sections[0]!.items.find((it) => it.whole)!;
    expect(whole).toMatchObject({ name: `task drop-syn: ${lab2.steps[0]!.title}`, points: 0, maxPoints: 8, passed: false });
    expect(whole.checks).toHaveLength(20);
    expect(whole.checks.filter((c) => !c.passed).map((c) => c.expected)).toEqual([
      'client: socket SYN_SENT, peer 198.19.9.3:5555 for 2s (within 5s)',
    ]);
  });

  it('a check the null answer met carries no points of its own: they go back into the whole task', () => {
    // As if the null answer had met the server's check (key: step id # index among the step's checks).
    const nullMet = new Set(['drop-syn#2', 'listen#0']);
    const r = scoreLab(lab2, run(lab2, reject), undefined, { nullMet });
    expect(r.score).toBe(0);
    const item = r.sections[0]!.items.find((it) => it.name.startsWith('server: no SYN segments'))!;
    expect(item).toMatchObject({ points: 0, maxPoints: 0, passed: true, partial: true, nullMet: true });
    // The maximum does not move, and a right answer still gets all of it.
    const full = scoreLab(lab2, run(lab2), undefined, { nullMet });
    expect(full).toMatchObject({ score: 20, maxScore: 20 });
    expect(full.sections[0]!.items.find((it) => it.whole)!.maxPoints).toBe(14);
  });

  /** Every check of Lab 1's task, by key. */
  const lab1Task = lab1.steps.find((s) => s.id === 'your-turn')!.task!.expect.map((_, i) => `your-turn#${i}`);

  it('a section whose every check the null answer meets is worth nothing to anyone', () => {
    const nullMet = new Set(lab1Task);
    expect(scoreLab(lab1, run(lab1), undefined, { nullMet })).toMatchObject({ score: 0, maxScore: 2, passed: true });
  });

  it('the checks a run met from the first task on are listed, to take the null answer from', () => {
    const n = scoreLab(lab2, run(lab2, nothing));
    expect(n.met).toContain('drop-syn#1');
    expect(n.met).toContain('listen#0');
    expect(n.met).not.toContain('drop-syn#0');
    expect(scoreLab(lab1, run(lab1)).met).toEqual(lab1Task);
  });

  it('Lab 1: the steps before its task are worth nothing; its task is worth 2, all or nothing', () => {
    expect(maxScoreOf(lab1)).toBe(2);
    const r = scoreLab(lab1, run(lab1));
    expect(r.sections.map((s) => [s.step, s.score, s.maxScore])).toEqual([
      [null, 0, 0],
      ['your-turn', 2, 2],
    ]);
    const half = scoreLab(lab1, run(lab1, { 'your-turn': [1] }));
    expect(half).toMatchObject({ score: 0, maxScore: 2, passed: false });
    // A failure before the task is the lab's, not the student's: no points move, the run still passes.
    expect(scoreLab(lab1, run(lab1, { listen: [0] }))).toMatchObject({ score: 2, passed: true });
  });

  it('a task without points is worth one per check of its section, all or nothing', () => {
    // Lab 6's task: four checks, no points of its own (Lab 3's says its 3 since a fourth check came).
    expect(lab6.steps.find((s) => s.task)!.task!.points).toBeUndefined();
    expect(maxScoreOf(lab6)).toBe(4);
    expect(scoreLab(lab6, run(lab6, { 'your-turn': [1] }))).toMatchObject({ score: 0, passed: false });
    expect(scoreLab(lab6, run(lab6))).toMatchObject({ score: 4, passed: true });
  });

  it('Lab 3: its task keeps its 3 points with the check of its own connection, all or nothing', () => {
    expect(maxScoreOf(lab3)).toBe(3);
    expect(scoreLab(lab3, run(lab3, { 'your-turn': [0] }))).toMatchObject({ score: 0, passed: false });
    expect(scoreLab(lab3, run(lab3))).toMatchObject({ score: 3, passed: true });
  });

  it('a step whose command failed leaves its checks, and those after the lab stopped, as not checked', () => {
    const results = run(lab2).slice(0, 3);
    results[2] = { ...results[2]!, checks: [commandFailure('connect-dropped', 'client', 'nc failed (exit 1)')], passed: false };
    const r = scoreLab(lab2, results, 'the engine went away');
    const checks = r.sections[0]!.items.find((it) => it.whole)!.checks;
    const connect = checks.filter((c) => c.step === 'connect-dropped');
    expect(connect.every((c) => !c.passed && !c.ran)).toBe(true);
    expect(connect[0]!.seen[0]).toMatch(/not checked: nc failed/);
    expect(checks.find((c) => c.step === 'release')!.seen[0]).toMatch(/not checked: the lab stopped \(the engine went away\)/);
    expect(r).toMatchObject({ passed: false, maxScore: 20, score: 12 });
    // What a student reads of a check never made: the addresses in words, not the lab file's templates.
    const unmade = checks.filter((c) => !c.ran);
    expect(unmade.length).toBeGreaterThan(0);
    for (const c of unmade) expect(c.expected).not.toMatch(/\{\{/);
    expect(connect.map((c) => c.expected)).toContain("client: socket SYN_SENT, peer <server's address>:5555 for 2s (within 5s)");
    // Its name, the key of JUnit and Gradescope tests, stays the lab file's words.
    expect(connect.map((c) => c.name)).toContain('client: socket SYN_SENT, peer {{server.ip}}:5555 for 2s (within 5s)');
  });
});

describe('points that could be earned for nothing are refused in the lab file', () => {
  const base = (taskPoints: string, checkPoints: string, leadPoints = '') => `id: 7
slug: tiny
title: Tiny
summary: s
intro: i
steps:
  - id: listen
    title: Listen
    explain: e
    run:
      - { on: server, run: [nc, -l, "5555"], name: srv, background: true }
    expect:
      - { on: server, socket: { state: LISTEN, local: "*:5555" }${leadPoints} }
  - id: task
    title: Task
    explain: e
    task:
      prompt: connect
      solution:
        - { on: client, run: [nc, "{{server.ip}}", "5555"], name: cli, background: true }${taskPoints}
      expect:
        - { on: client, socket: { state: ESTABLISHED, peer: "{{server.ip}}:5555" }${checkPoints} }
        - { on: server, socket: { state: ESTABLISHED, local: "*:5555" } }
`;
  const problems = (text: string) => validateLabText(text).problems.map((p) => `${p.line}: ${p.message}`);

  it('the control: a task with points, and a check with points that are part of them', () => {
    expect(problems(base('\n      points: 4', ', points: 3'))).toEqual([]);
    expect(problems(base('', ''))).toEqual([]);
  });

  it('points on a check before the first task', () => {
    expect(problems(base('', '', ', points: 1'))).toEqual([
      '13: a check before the first task runs the same for every answer, so it cannot earn points: remove them',
    ]);
  });

  it("a check's own points without the task's, or more than the task's", () => {
    expect(problems(base('', ', points: 1'))[0]).toMatch(
      /^22: a check with points of its own needs its task to say what the whole task is worth/,
    );
    expect(problems(base('\n      points: 2', ', points: 3'))[0]).toMatch(
      /^21: the task is worth 2, but checks of its section have 3 points/,
    );
  });
});

describe('a run stops once nothing left can change its score', () => {
  /** The score, the checks met that carry points of their own, and the tasks all of whose checks were met: all
   *  that a run's points and the null answer's verdicts are made of. */
  const verdict = (lab: Lab, steps: StepResult[], settled?: string) => {
    const s = scoreLab(lab, steps, undefined, settled ? { settled } : {});
    const checks = labChecks(lab);
    const met = new Set(s.met);
    return {
      score: s.score,
      passed: s.passed,
      partialMet: checks.filter((c) => c.points > 0 && met.has(c.key)).map((c) => c.key),
      tasksAllMet: [...new Set(checks.map((c) => c.task))].filter((t) => checks.filter((c) => c.task === t).every((c) => met.has(c.key))),
    };
  };

  it('Lab 2: a REJECT, the wrong chain and no rule at all stop after the task, with the points of a whole run', () => {
    for (const failing of [reject, wrongChain, nothing]) {
      const full = run(lab2, failing);
      const why = settledAfter(lab2, full.slice(0, 1));
      expect(why).toMatch(/^task drop-syn had already lost its points \('.+' was not met\)/);
      expect(verdict(lab2, full.slice(0, 1), why)).toEqual(verdict(lab2, full));
      // The checks left unmade say why.
      const unmade = scoreLab(lab2, full.slice(0, 1), undefined, { settled: why! }).sections[0]!.items.find((i) => i.step === 'release');
      expect(unmade!.checks[0]!.seen).toEqual([`not checked: ${why}`]);
    }
  });

  it('never stops a run that can still earn something: every check met so far, or the last step done', () => {
    const right = run(lab2);
    for (let k = 1; k <= right.length; k++) expect(settledAfter(lab2, right.slice(0, k))).toBeUndefined();
    expect(settledAfter(lab2, run(lab2, nothing))).toBeUndefined();
    expect(settledAfter(lab2, [])).toBeUndefined();
  });

  it('in every shipped lab, for many ways of failing, a run stopped where it says gives the verdict of the whole run', () => {
    // A small seeded generator: the same cases on every run of the test.
    let seed = 20261204;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    let stopped = 0;
    for (const { lab } of catalogue()) {
      const ids = lab.steps.map((s) => [s.id, (s.task?.expect?.length ?? 0) + (s.expect?.length ?? 0)] as const);
      for (let n = 0; n < 40; n++) {
        const failing: Record<string, number[]> = {};
        for (const [id, count] of ids) failing[id] = [...Array(count).keys()].filter(() => rand() < 0.15);
        const full = run(lab, failing);
        for (let k = 1; k <= full.length; k++) {
          const why = settledAfter(lab, full.slice(0, k));
          if (!why) continue;
          stopped++;
          expect(verdict(lab, full.slice(0, k), why), `lab ${lab.id} after ${k} steps`).toEqual(verdict(lab, full));
          break;
        }
      }
    }
    // The property is not empty: many of those runs stopped early.
    expect(stopped).toBeGreaterThan(25);
  });

  it('goes on while a later step has a check with points of its own, or a later task begins', () => {
    const text = (laterPoints: string, secondTask: boolean) => `id: 7
slug: tiny
title: Tiny
summary: s
intro: i
steps:
  - id: first
    title: First
    explain: e
    task:
      prompt: connect
      points: 4
      solution:
        - { on: server, run: [nc, -l, "5555"], name: srv, background: true }
      expect:
        - { on: server, socket: { state: LISTEN, local: "*:5555" } }
  - id: later
    title: Later
    explain: e
    run:
      - { on: client, run: [nc, "{{server.ip}}", "5555"], name: cli, background: true }
    expect:
      - { on: client, socket: { state: ESTABLISHED, peer: "{{server.ip}}:5555" }${laterPoints} }
${
  secondTask
    ? `  - id: second
    title: Second
    explain: e
    task:
      prompt: again
      solution:
        - { on: client, run: [nc, "{{server.ip}}", "5555"], name: cli2, background: true }
      expect:
        - { on: server, socket: { state: LISTEN, local: "*:5555" } }
`
    : ''
}`;
    const load = (t: string) => {
      const v = validateLabText(t);
      expect(v.problems).toEqual([]);
      return v.lab!;
    };
    const plain = load(text('', false));
    const firstFails = (lab: Lab) => run(lab, { first: [0] }).slice(0, 1);
    expect(settledAfter(plain, firstFails(plain))).toMatch(/^task first had already lost its points/);
    const pointsLater = load(text(', points: 2', false));
    expect(settledAfter(pointsLater, firstFails(pointsLater))).toBeUndefined();
    const twoTasks = load(text('', true));
    expect(settledAfter(twoTasks, firstFails(twoTasks))).toBeUndefined();
    // Once the second task has lost its points too, the end is near anyway: its step is the last.
    expect(settledAfter(twoTasks, run(twoTasks, { first: [0], later: [0] }).slice(0, 2))).toBeUndefined();
  });
});
