// Points from a run: which checks count, what a task is worth, what was never checked.
import { describe, expect, it } from 'vitest';
import { resolveLab } from '../../src/lab/catalogue.js';
import type { Expectation, Lab } from '../../src/lab/schema.js';
import { commandFailure, describeExpectation, type Check, type StepResult } from '../../src/grade/grade.js';
import { UNFILLED } from '../../src/lab/templates.js';
import { maxScoreOf, scoreLab } from '../../src/grade/score.js';

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

describe('points', () => {
  it('Lab 2: its task is its first step, so every check counts one point', () => {
    const all = lab2.steps.reduce((n, s) => n + (s.task?.expect.length ?? 0) + (s.expect?.length ?? 0), 0);
    expect(maxScoreOf(lab2)).toBe(all);
    const full = scoreLab(lab2, run(lab2));
    expect(full).toMatchObject({ score: all, maxScore: all, passed: true });
    expect(full.sections.map((s) => s.step)).toEqual(['drop-syn']);
  });

  it('a check that failed costs its point and fails the submission', () => {
    const r = scoreLab(lab2, run(lab2, { 'connect-dropped': [0] }));
    expect(r.score).toBe(maxScoreOf(lab2) - 1);
    expect(r.passed).toBe(false);
    const item = r.sections[0]!.items.find((it) => !it.passed)!;
    expect(item.name).toBe('client: socket SYN_SENT, peer {{server.ip}}:5555 for 2s (within 5s)');
    expect(item.checks[0]!.expected).toBe('client: socket SYN_SENT, peer 198.19.9.3:5555 for 2s (within 5s)');
  });

  it('Lab 1: the steps before its task are worth nothing by default; its task is worth 2, all or nothing', () => {
    expect(maxScoreOf(lab1)).toBe(2);
    const r = scoreLab(lab1, run(lab1));
    expect(r.sections.map((s) => [s.step, s.score, s.maxScore])).toEqual([
      [null, 0, 0],
      ['your-turn', 2, 2],
    ]);
    const half = scoreLab(lab1, run(lab1, { 'your-turn': [1] }));
    expect(half).toMatchObject({ score: 0, maxScore: 2, passed: false });
    expect(half.sections[1]!.items).toHaveLength(1);
    expect(half.sections[1]!.items[0]!.name).toMatch(/^task your-turn: /);
    // A failure before the task is the lab's, not the student's: no points move, the run still passes.
    expect(scoreLab(lab1, run(lab1, { listen: [0] }))).toMatchObject({ score: 2, passed: true });
  });

  it('explicit points on checks and tasks', () => {
    const lab: Lab = structuredClone(lab2);
    lab.steps[0]!.task!.points = 5;
    lab.steps[1]!.expect![0]!.points = 0.5;
    lab.steps[2]!.expect![0]!.points = 0;
    const r = scoreLab(lab, run(lab));
    // The task's checks (a point each) become one item worth 5; one check is worth 0.5, another nothing.
    expect(r.maxScore).toBe(maxScoreOf(lab2) - lab2.steps[0]!.task!.expect.length + 5 - 0.5 - 1);
  });

  it('a step whose command failed leaves its checks, and those after the lab stopped, as not checked', () => {
    const results = run(lab2).slice(0, 3);
    results[2] = { ...results[2]!, checks: [commandFailure('connect-dropped', 'client', 'nc failed (exit 1)')], passed: false };
    const r = scoreLab(lab2, results, 'the engine went away');
    const items = r.sections[0]!.items;
    const connect = items.filter((it) => it.step === 'connect-dropped');
    expect(connect.every((it) => !it.passed && !it.checks[0]!.ran)).toBe(true);
    expect(connect[0]!.checks[0]!.seen[0]).toMatch(/not checked: nc failed/);
    const later = items.filter((it) => it.step === 'release');
    expect(later[0]!.checks[0]!.seen[0]).toMatch(/not checked: the lab stopped \(the engine went away\)/);
    expect(r.passed).toBe(false);
    expect(r.maxScore).toBe(maxScoreOf(lab2));
  });
});
