// `lab test` grades a lab's own solution with no retries, so a lab that passes only sometimes shows; but a run
// that missed only because the host was too busy to tell whether a state lasted says nothing about the lab,
// and is run again (src/submit/lab-test.ts onlyStarved). Any other miss must not be.
import { describe, expect, it } from 'vitest';
import { onlyStarved } from '../../src/submit/lab-test.js';
import { leadFailed, type SubmissionResult } from '../../src/submit/batch.js';

const STARVED =
  "can't tell whether it lasted: 1 of the lab's own processes on client was runnable (on a CPU or waiting for one), so what would end it may just not have run yet";

function result(over: Partial<SubmissionResult>, taskSeen?: string[][]): SubmissionResult {
  const checks = (taskSeen ?? []).map((seen, i) => ({
    step: 't',
    name: `c${i}`,
    expected: `c${i}`,
    passed: seen.length === 0,
    ran: true,
    seen,
    task: true,
  }));
  const passed = checks.every((c) => c.passed);
  return {
    student: 'solution',
    file: 'x',
    gradable: true,
    passed,
    score: passed ? 4 : 0,
    maxScore: 4,
    tasks: [
      {
        step: 't',
        title: 't',
        passed,
        score: passed ? 4 : 0,
        maxScore: 4,
        items: [{ step: 't', name: 'task t', points: 0, maxPoints: 4, passed, checks }],
      },
    ],
    durationMs: 1,
    ...over,
  };
}

/** The warning a run gets when a check before the first task failed, as batch.ts writes it. */
const lead = (seen: string) => {
  const check = {
    step: 'drop',
    name: 'client: socket SYN_SENT',
    expected: 'x',
    passed: false,
    ran: true,
    seen: ['SYN-SENT 0 1 a b', seen],
    task: false,
  };
  const [w] = leadFailed([
    {
      step: null,
      title: '',
      passed: false,
      score: 0,
      maxScore: 0,
      items: [{ step: 'drop', name: check.name, points: 0, maxPoints: 0, passed: false, checks: [check] }],
    },
  ]);
  return w!;
};

describe('lab test runs a solution again only when the host could not tell', () => {
  it('a miss before the first task that could not tell whether it lasted', () => {
    // What it saw is in the warning, for the lab's author and for this decision.
    expect(lead(STARVED)).toMatch(/the lab itself, not this answer: client: socket SYN_SENT; seen: SYN-SENT 0 1 a b; can't tell/);
    expect(onlyStarved(result({ warnings: [lead(STARVED)] }, [[]]))).toBe(true);
  });
  it('a task check that could not tell, beside others that were met', () => {
    expect(onlyStarved(result({}, [[], ['ESTAB 0 0 a b', STARVED]]))).toBe(true);
  });
  it('not a run that passed', () => {
    expect(onlyStarved(result({}, [[]]))).toBe(false);
  });
  it('not a real miss, alone or beside a starved one', () => {
    expect(onlyStarved(result({ warnings: [lead('(nothing matching)')] }, [[]]))).toBe(false);
    expect(onlyStarved(result({}, [['(nothing matching)']]))).toBe(false);
    expect(onlyStarved(result({ warnings: [lead(STARVED)] }, [['(nothing matching)']]))).toBe(false);
  });
  it('not a run that stopped', () => {
    expect(onlyStarved(result({ error: 'time limit', passed: false }, [[STARVED]]))).toBe(false);
  });
});
