// The shipped catalogue as a whole: every lab loads, the labs together make all eleven states of the
// article's Table 1 observable, and enough of them use the routed topology.
import { describe, expect, it } from 'vitest';
import { catalogue, observableStates } from '../../src/lab/catalogue.js';
import { TCP_STATES } from '../../src/lab/schema.js';

const labs = catalogue();

describe('the lab catalogue', () => {
  it('has labs numbered 1, 2, 3, ... with distinct slugs', () => {
    expect(labs.map((l) => l.lab.id)).toEqual(labs.map((_, i) => i + 1));
    expect(new Set(labs.map((l) => l.lab.slug)).size).toBe(labs.length);
  });

  it("covers all eleven TCP states of the article's Table 1", () => {
    const union = new Set(labs.flatMap((l) => observableStates(l.lab)));
    const missing = TCP_STATES.filter((s) => !union.has(s));
    expect(missing, 'states no lab expects').toEqual([]);
    expect(union.size).toBe(11);
  });

  it('has at least three labs on the routed topology', () => {
    const routed = labs.filter((l) => l.lab.topology === 'routed').map((l) => l.lab.slug);
    expect(routed.length).toBeGreaterThanOrEqual(3);
  });

  it.each(labs.map((l) => [l.lab.id, l.lab] as const))('lab %i explains itself and notes where Linux differs', (_id, lab) => {
    expect(lab.intro.length).toBeGreaterThan(200);
    expect(lab.notes?.length ?? 0).toBeGreaterThan(0);
    for (const step of lab.steps)
      expect((step.expect?.length ?? 0) + (step.task?.expect.length ?? 0), `step ${step.id} checks something`).toBeGreaterThan(0);
    // Both sides are graded somewhere in the lab, not only the machine that acts.
    const graded = new Set(lab.steps.flatMap((s) => [...(s.expect ?? []), ...(s.task?.expect ?? [])]).map((e) => e.on));
    expect(graded.has('client') && graded.has('server')).toBe(true);
  });

  it("derives a lab's states from its expectations (Lab 8: CLOSING and TIME_WAIT)", () => {
    const lab8 = labs.find((l) => l.lab.slug === 'simultaneous-close')!.lab;
    expect(observableStates(lab8)).toEqual(expect.arrayContaining(['FIN_WAIT_1', 'CLOSING', 'TIME_WAIT']));
  });
});
