// The shipped catalogue as a whole: every lab loads, the labs together make all eleven states of the
// article's Table 1 observable, and enough of them use the routed topology.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { catalogue, nearest, observableStates, resolveLab } from '../../src/lab/catalogue.js';
import { TCP_STATES, type TcpState } from '../../src/lab/schema.js';
import { isLabError } from '../../src/errors.js';

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

describe('naming a lab', () => {
  const error = (ref: string) => {
    try {
      resolveLab(ref);
    } catch (e) {
      if (isLabError(e)) return `${e.message} | ${e.hint ?? ''}`;
      throw e;
    }
    throw new Error(`${ref} resolved`);
  };

  it('takes a number, a slug, or the start of a slug that only one lab has', () => {
    expect(resolveLab('2').lab.slug).toBe('incomplete-handshake');
    expect(resolveLab('basic-states').lab.id).toBe(1);
    expect(resolveLab('basic').lab.id).toBe(1);
    expect(resolveLab('syn-b').lab.slug).toBe('syn-backlog');
  });

  it('finds a shipped lab by its file name (NN-slug.yaml) only when the file says the same id and slug', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcplab-catalogue-'));
    try {
      const text = readFileSync(labs[1]!.file, 'utf8');
      // 02-basic-states.yaml holds Lab 2 (incomplete-handshake); 07-odd.yaml holds it as Lab 7.
      writeFileSync(join(dir, '02-basic-states.yaml'), text);
      writeFileSync(join(dir, '07-odd.yaml'), text.replace(/^id: 2$/m, 'id: 7').replace(/^slug: incomplete-handshake$/m, 'slug: odd'));
      expect(resolveLab('2', dir).lab.slug).toBe('incomplete-handshake');
      expect(resolveLab('7', dir).lab.slug).toBe('odd');
      // The file's name says basic-states, its content does not: no such lab, however the file is named.
      expect(() => resolveLab('basic-states', dir)).toThrow(/no lab 'basic-states'/);
      expect(resolveLab('incomplete-handshake', dir).lab.id).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the labs a start shared by several could mean', () => {
    expect(error('time-wait')).toMatch(
      /'time-wait' is the start of 2 labs \| which one\? 5 \(time-wait-reuse\), 10 \(time-wait-exhaustion\)/,
    );
  });

  it('suggests the nearest names for a mistyped or partial one', () => {
    expect(error('basicx')).toMatch(/no lab 'basicx' \| did you mean 1 \(basic-states\)\?/);
    expect(error('handshake')).toContain('did you mean 2 (incomplete-handshake) or 3 (lost-handshake-ack)?');
    expect(nearest('simultanous-open', ['simultaneous-open', 'simultaneous-close', 'basic-states'])[0]).toBe('simultaneous-open');
    expect(nearest('zzz', ['basic-states'])).toEqual([]);
    expect(error('99')).toMatch(/no lab 99 \| the labs are numbered 1 to/);
  });
});

describe('tasks', () => {
  it.each(labs.map((l) => [l.lab.id, l.lab] as const))('lab %i has a task the student must do, with a solution', (_id, lab) => {
    const tasks = lab.steps.filter((s) => s.task);
    expect(tasks.length).toBeGreaterThanOrEqual(1);
    for (const step of tasks) {
      expect(step.task!.solution?.length, `${step.id} has a solution`).toBeGreaterThan(0);
      // Graded on what the kernel shows (states, counters, what a command met), never on a rule's words alone.
      const kinds = new Set(
        step.task!.expect.map((e) => (e.socket ? 'socket' : e.absent ? 'absent' : e.iptables ? 'iptables' : 'command')),
      );
      expect(
        [...kinds].some((k) => k !== 'iptables'),
        `${step.id} is graded on an effect`,
      ).toBe(true);
    }
  });
});

/** The words of RFC 793's state diagram that name a transition into one state: saying them names the state. */
const NAMED_BY: Partial<Record<TcpState, RegExp>> = { LISTEN: /\bpassive open/i, SYN_SENT: /\bactive open/i };

/** The TCP states a text names (whole words, or the transition that enters them). */
function statesIn(text: string): TcpState[] {
  return TCP_STATES.filter((s) => new RegExp(`\\b${s}\\b`).test(text) || !!NAMED_BY[s]?.test(text));
}

describe('predictions are asked before anything gives them away', () => {
  const predicting = labs.flatMap(({ lab }) => lab.steps.filter((s) => s.predict).map((step) => [lab.id, step.id, lab, step] as const));

  it.each(predicting)('lab %i, step %s: the step does not name the answer before the question', (_id, _step, lab, step) => {
    const p = step.predict!;
    // The states that tell the answer from the other choices: naming one of them before asking gives it away.
    const telling = statesIn(p.answer).filter((s) => !p.choices.every((c) => statesIn(c).includes(s)));
    const before = `${step.title}\n${step.explain}`;
    expect(
      statesIn(before).filter((s) => telling.includes(s)),
      'answer states in the title or explanation',
    ).toEqual([]);
    // The lab's introduction may name states (it teaches them), but not the answer's combination or its reason.
    if (telling.length > 1)
      expect(
        telling.every((s) => statesIn(lab.intro).includes(s)),
        'the answer in the intro',
      ).toBe(false);
    expect(lab.intro).not.toContain(p.why.slice(0, 40));
    expect(p.choices).toContain(p.answer);
  });

  it('would catch a step that names its answer by its transition (Lab 1 step 1 as it was: "a passive open")', () => {
    expect(statesIn('socket(), bind() and listen(), a passive open. The client does nothing yet.')).toEqual(['LISTEN']);
  });

  it('would catch a step that gives its answer away (Lab 2 step 7 as it was)', () => {
    const explain =
      'The SYN reaches the server, which moves the new connection to SYN_RECV and answers SYN|ACK. The firewall drops the answer: the client stays in SYN_SENT, the server in SYN_RECV.';
    const telling = ['SYN_SENT', 'SYN_RECV'];
    expect(statesIn(explain).filter((s) => telling.includes(s))).toEqual(['SYN_SENT', 'SYN_RECV']);
  });
});
