// The one line a gradebook and the terminal give a task that lost points: what to fix first.
import { describe, expect, it } from 'vitest';
import { sectionWhy } from '../../src/report/feedback.js';
import type { CheckOutcome, Section } from '../../src/grade/score.js';

const check = (name: string, o: Partial<CheckOutcome>): CheckOutcome => ({
  step: 'drop-syn',
  name,
  expected: name,
  passed: false,
  ran: true,
  seen: [],
  task: true,
  ...o,
});
const section = (checks: CheckOutcome[]): Section => ({
  step: 'drop-syn',
  title: 'Your task',
  passed: false,
  score: 0,
  maxScore: 20,
  items: [{ step: 'drop-syn', name: 'task drop-syn: Your task', points: 0, maxPoints: 20, passed: false, checks, whole: true }],
});

describe('sectionWhy', () => {
  it('names the first check not met', () => {
    expect(sectionWhy(section([check('client: socket SYN_SENT', { seen: ['ESTAB 0 0 ...'] }), check('b', {})]))).toBe(
      "drop-syn: 0/20, not met: 'client: socket SYN_SENT' (+1 more)",
    );
  });

  it('says why a check was not checked: a command of the check that failed, on one line and short', () => {
    const reason =
      'not checked: sh -c nc -z -w 3 198.18.0.3 5557 failed on client (exit 1): the client cannot reach the server\non port 5557';
    expect(sectionWhy(section([check('client: socket SYN_SENT', { ran: false, seen: [reason] })]))).toBe(
      "drop-syn: 0/20, not checked: 'client: socket SYN_SENT' because sh -c nc -z -w 3 198.18.0.3 5557 failed on client (exit 1): the client cannot reach the server on port 5557",
    );
    const long = sectionWhy(section([check('x', { ran: false, seen: [`not checked: ${'y'.repeat(1000)}`] })]));
    expect(long.length).toBeLessThan(320);
    expect(long.endsWith('…')).toBe(true);
  });
});
