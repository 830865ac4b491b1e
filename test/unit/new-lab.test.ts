// The lab `lab new` writes is where an author starts: it must validate, follow the docs' advice, and be a lab
// a student's answer can pass. A QA tester's right answer scored 0 on the old one: its next step stopped a
// command only the solution named ("could not stop client on client: no command named client"), while
// `lab test`, which runs the solution, said PASS.
import { describe, expect, it } from 'vitest';
import { newLabText } from '../../src/cli/commands/new.js';
import { parseLab, validateLabText } from '../../src/lab/load.js';

const text = newLabText('my-lab', 100);
const lab = parseLab(text);

describe('the lab `lab new` writes', () => {
  it('validates, and is commented', () => {
    expect(validateLabText(text).problems).toEqual([]);
    expect(text.split('\n').filter((l) => /^\s*#/.test(l) || / # /.test(l)).length).toBeGreaterThan(8);
  });

  it('has a task, with points and a variant', () => {
    const tasks = lab.steps.filter((s) => s.task);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]!.task!.points).toBeGreaterThan(0);
    expect(text).toMatch(/\{\{variant\.port\}\}/);
  });

  it('stops, types into and checks no command that only a task solution names: a student answer names none', () => {
    const onlySolution = new Set(lab.steps.flatMap((s) => (s.task?.solution ?? []).flatMap((a) => (a.name ? [a.name] : []))));
    const used = lab.steps.flatMap((s) => [
      ...(s.run ?? []).flatMap((a) => [a.stop, a.write]),
      ...[...(s.expect ?? []), ...(s.task?.expect ?? [])].map((e) => e.command?.name),
    ]);
    expect(used.filter((n) => n !== undefined && onlySolution.has(n))).toEqual([]);
  });

  it("leaves a task's within at its default, as the docs advise", () => {
    for (const s of lab.steps) for (const e of s.task?.expect ?? []) expect(e.within).toBeUndefined();
  });

  it('has a step after the task that checks what the answer leaves', () => {
    const i = lab.steps.findIndex((s) => s.task);
    expect(lab.steps.slice(i + 1).some((s) => s.expect?.length)).toBe(true);
  });
});
