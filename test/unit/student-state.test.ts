// The files that let other terminals find a running lab, and the per-lab progress that `lab list` shows.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scoreWords, stateDir, stateFiles, type Score } from '../../src/walk/state-files.js';
import { hintFor, socketsThatMatter } from '../../src/walk/views.js';
import { taskNote } from '../../src/cli/commands/status.js';
import { fill } from '../../src/lab/templates.js';
import { parseSs } from '../../src/observe/ss.js';
import type { Step } from '../../src/lab/schema.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tcplab-state-'));
  process.env.TCPLAB_STATE_DIR = dir;
});
afterEach(() => {
  delete process.env.TCPLAB_STATE_DIR;
  rmSync(dir, { recursive: true, force: true });
});

const score = (right: number, met: number, done: number): Score => ({
  predictions: { right, asked: 2 },
  checks: { met, total: 10 },
  tasks: { done, total: 1 },
  steps: { done: 8, total: 8 },
});

describe('state directory', () => {
  it('follows TCPLAB_STATE_DIR, then XDG_STATE_HOME', () => {
    expect(stateDir()).toBe(dir);
    delete process.env.TCPLAB_STATE_DIR;
    const old = process.env.XDG_STATE_HOME;
    process.env.XDG_STATE_HOME = '/x/state';
    expect(stateDir()).toBe('/x/state/tcplab');
    if (old === undefined) delete process.env.XDG_STATE_HOME;
    else process.env.XDG_STATE_HOME = old;
  });

  it('records a running lab and forgets it with its attempts', () => {
    const plan = { instance: 'abcd1234', vars: {} } as never;
    stateFiles().saveRunning({
      instance: 'abcd1234',
      lab: { id: 2, slug: 's', title: 't', file: '/f.yaml' },
      owner: 'h:1',
      startedAt: '',
      stepIndex: 0,
      stepId: 'a',
      plan,
      keep: false,
    });
    expect(
      stateFiles()
        .listRunning()
        .map((r) => r.instance),
    ).toEqual(['abcd1234']);
    expect(stateFiles().recordAttempt('abcd1234', 'a', false)).toMatchObject({ attempts: 1, passed: false });
    expect(stateFiles().recordAttempt('abcd1234', 'a', true)).toMatchObject({ attempts: 2, passed: true });
    // A later failure does not undo a pass.
    expect(stateFiles().recordAttempt('abcd1234', 'a', false)).toMatchObject({ attempts: 3, passed: true });
    stateFiles().forgetRunning('abcd1234');
    expect(stateFiles().listRunning()).toEqual([]);
    expect(stateFiles().loadAttempts('abcd1234')).toEqual({});
  });
});

describe('progress', () => {
  it('keeps the best score, and completed once completed', () => {
    stateFiles().saveProgress('lab', score(2, 10, 1), true);
    stateFiles().saveProgress('lab', score(0, 3, 0), false);
    const p = stateFiles().loadProgress().lab!;
    expect(p.completed).toBe(true);
    expect(p.last.checks.met).toBe(3);
    expect(p.best!.checks.met).toBe(10);
  });

  it('is not completed by a partial run', () => {
    stateFiles().saveProgress('other', score(1, 4, 0), false);
    expect(stateFiles().loadProgress().other!.completed).toBe(false);
  });
});

describe('task helpers', () => {
  const step = {
    id: 't',
    title: 't',
    explain: '',
    task: { prompt: 'p', hints: ['one', 'two {{server.ip}}'], expect: [] },
  } as unknown as Step;

  it('gives the hint for the attempt, then the last one', () => {
    expect(hintFor(step, 1)).toBe('one');
    expect(hintFor(step, 2)).toBe('two {{server.ip}}');
    expect(hintFor(step, 7)).toBe('two {{server.ip}}');
    expect(hintFor({ ...step, task: undefined } as Step, 1)).toBeUndefined();
  });

  it('fills known templates and leaves unknown ones', () => {
    expect(fill('nc {{server.ip}} 5555 {{nope}}', { 'server.ip': '198.18.0.3' })).toBe('nc 198.18.0.3 5555 {{nope}}');
  });

  it('highlights the sockets an expectation is about, on its own node only', () => {
    const socks = parseSs('SYN-SENT 0 1 198.18.0.2:40000 198.18.0.3:5555\nLISTEN 0 5 0.0.0.0:22 0.0.0.0:*\n');
    const matter = socketsThatMatter([{ on: 'client', socket: { state: 'SYN_SENT', peer: '{{server.ip}}:5555' } }], {
      'server.ip': '198.18.0.3',
    });
    expect(socks.map((s) => matter('client', s))).toEqual([true, false]);
    expect(matter('server', socks[0]!)).toBe(false);
  });
});

describe("lab status's word for a task", () => {
  it('counts attempts in English: 1 attempt, 2 attempts', () => {
    expect(taskNote(undefined)).toBe('task open');
    expect(taskNote({ attempts: 1, passed: false })).toBe('task open, 1 attempt');
    expect(taskNote({ attempts: 2, passed: false })).toBe('task open, 2 attempts');
    expect(taskNote({ attempts: 2, passed: true })).toBe('task done');
  });
});

describe('a score in words', () => {
  const score = (p: [number, number], c: [number, number], t: [number, number]): Score => ({
    predictions: { right: p[0], asked: p[1] },
    checks: { met: c[0], total: c[1] },
    tasks: { done: t[0], total: t[1] },
    steps: { done: 0, total: 8 },
  });
  it('leaves out what the lab has not counted: no "checks 0/0" after a task', () => {
    expect(scoreWords(score([0, 0], [0, 0], [0, 1]))).toBe('tasks 0/1 done');
    expect(scoreWords(score([1, 2], [0, 0], [1, 1]))).toBe('predictions 1/2 right, tasks 1/1 done');
    expect(scoreWords(score([0, 0], [0, 0], [0, 0]))).toBe('nothing counted yet');
  });
  it('says every count once something is counted, even a zero', () => {
    expect(scoreWords(score([0, 1], [0, 3], [0, 1]))).toBe('predictions 0/1 right, checks 0/3 met, tasks 0/1 done');
  });
});
