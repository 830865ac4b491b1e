// Submission files: the schema in one place, every problem with file:line, checked against the lab graded.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { resolveLab } from '../../src/lab/catalogue.js';
import { answersOf, labHash, loadSubmission, validateSubmissionText } from '../../src/submit/submission.js';
import { renderSubmission } from '../../src/submit/render.js';
import { runLab } from '../../src/engine/run-lab.js';
import type { LabEvent } from '../../src/engine/events.js';
import { maxScoreOf, scoreLab, taskSteps } from '../../src/grade/score.js';
import type { Lab } from '../../src/lab/schema.js';
import type { AnswerScript } from '../../src/lab/answer-script.js';
import { FakeClock, FakeRuntime } from '../reliability/fake-runtime.js';
import { nullAnswerOf } from '../../src/submit/batch.js';

const lab2 = resolveLab('2').lab;
const lab1 = resolveLab('1').lab;

const good = `student: alice
lab: 2
answers:
  drop-syn:
    client: |
      iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP
`;

/** A lab replayed on a fake engine, as a submission is graded: each step's commands as shown, the answers'
 *  outputs, the result. answers undefined: the lab's own solutions. */
async function replay(lab: Lab, answers: { byStep: Record<string, AnswerScript[]> } | undefined) {
  const actions = new Map<string, string[]>();
  const answered: string[] = [];
  let step = '';
  const result = await runLab(new FakeRuntime(), lab, {
    image: 'x',
    instance: 'sub00001',
    clock: new FakeClock(),
    student: 'carol',
    ...(answers ? { answers } : {}),
    emit: (e: LabEvent) => {
      if (e.type === 'step') step = e.id;
      if (e.type === 'action') actions.set(step, [...(actions.get(step) ?? []), `${e.node}$ ${e.display}`]);
      if (e.type === 'answer') answered.push(`${e.step} ${e.node}`);
    },
  });
  return { actions, answers: answered, result };
}

function problems(text: string, lab = lab2) {
  const r = validateSubmissionText(text, lab);
  return r.ok ? [] : r.problems;
}

describe('submission files', () => {
  it('accepts the hand-written example of the issue, by id or by slug', () => {
    const r = validateSubmissionText(good, lab2);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(answersOf(r.submission)).toEqual({
      'drop-syn': [{ node: 'client', script: 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP\n' }],
    });
    expect(problems(good.replace('lab: 2', 'lab: incomplete-handshake'))).toEqual([]);
    expect(problems(good.replace('lab: 2', 'lab: "2"'))).toEqual([]);
  });

  it('an empty submission (no answers) is gradable: every task goes unanswered (its solution never runs) and scores 0', async () => {
    // Replayed as `lab grade --submissions` does (runLab with the submission's answers), against a fake engine:
    // the commands each task step runs, and the score. The lab's own solutions, replayed the same way, show
    // what an answered task would have run. test/docker/class-grading.test.ts grades empty answers for real.
    for (const lab of [lab1, lab2]) {
      const r = validateSubmissionText(`student: carol\nlab: ${lab.id}\n`, lab);
      expect(r.ok && r.submission.student).toBe('carol');
      if (!r.ok) return;
      const graded = await replay(lab, { byStep: answersOf(r.submission) });
      const solved = await replay(lab, undefined);
      for (const step of taskSteps(lab)) {
        const task = step.task!;
        const solution = task.solution ?? [];
        // What the grader ran in the task's step: the probe a check tries, and nothing of the solution.
        expect(graded.actions.get(step.id) ?? [], `${lab.slug} ${step.id}`).toHaveLength((task.probe ?? []).length);
        expect(solved.actions.get(step.id) ?? [], `${lab.slug} ${step.id}`).toHaveLength((task.probe ?? []).length + solution.length);
        expect(solution.length, `${lab.slug} ${step.id}`).toBeGreaterThan(0);
        for (const ran of solved.actions.get(step.id)!.slice(0, solution.length))
          expect(graded.actions.get(step.id) ?? [], `${lab.slug} ${step.id}`).not.toContain(ran);
      }
      expect(graded.answers).toEqual([]);
      // Scored as the batch scores it: beside the null answer's run (no answer at all, in the same world), whose
      // met checks pay nothing. (In the fake world nothing ever happens, so an absent check holds for both.)
      const nullRun = await replay(lab, { byStep: {} });
      const nullMet = new Set(nullAnswerOf(lab, [{ ...nullRun.result, outputs: [], instance: 'sub00002' }]).met.map((c) => c.key));
      const score = scoreLab(lab, graded.result.steps, graded.result.error, { nullMet });
      expect(score).toMatchObject({ score: 0, passed: false, maxScore: maxScoreOf(lab) });
      for (const section of score.sections.filter((x) => x.step !== null)) expect(section).toMatchObject({ passed: false, score: 0 });
    }
  });

  it('keeps the order of the machines as written: that is the order the replay starts them in', () => {
    const r = validateSubmissionText(
      'student: a\nlab: 1\nanswers:\n  your-turn:\n    server: nc -l 5600\n    client: echo hi | nc -q0 {{server.ip}} 5600\n',
      lab1,
    );
    expect(r.ok && answersOf(r.submission)['your-turn']!.map((a) => a.node)).toEqual(['server', 'client']);
  });

  it('reports an unknown key, a machine the lab does not have and a step without a task, each at its line', () => {
    expect(problems(good.replace('lab: 2', 'lab: 2\ngrade: 100'))).toMatchObject([{ line: 3, message: "unknown key 'grade'" }]);
    expect(problems(good.replace('    client: |', '    router: |'))).toMatchObject([{ line: 5, message: "unknown key 'router'" }]);
    expect(problems(good.replace('    client: |', '    firewall: |'))).toMatchObject([
      { line: 5, message: expect.stringMatching(/lab 2 has no firewall/) },
    ]);
    expect(problems(good.replace('  drop-syn:', '  listen:'))).toMatchObject([
      { line: 4, message: expect.stringMatching(/step 'listen' has no task; its tasks are drop-syn/) },
    ]);
    expect(problems(good.replace('  drop-syn:', '  nope:'))).toMatchObject([
      { line: 4, message: expect.stringMatching(/lab 2 has no step 'nope'/) },
    ]);
  });

  it('refuses a submission for another lab', () => {
    expect(problems(good.replace('lab: 2', 'lab: 3'))).toMatchObject([{ line: 2, message: expect.stringMatching(/for lab 3, not lab 2/) }]);
  });

  it('refuses student ids that could be a path, a formula or nothing, and still names a readable student', () => {
    for (const bad of ['../../etc', '=HYPERLINK(1)', '', '.hidden', 'a/b', 'x'.repeat(65)])
      expect(problems(good.replace('student: alice', `student: ${JSON.stringify(bad)}`)).length, bad).toBeGreaterThan(0);
    const r = validateSubmissionText(good.replace('  drop-syn:', '  nope:'), lab2);
    expect(r.ok === false && r.student).toBe('alice');
  });

  it('refuses YAML anchors and aliases, and what is not a mapping', () => {
    const aliased = 'student: alice\nlab: 2\nanswers:\n  drop-syn:\n    client: &x "iptables -L"\n    server: *x\n';
    expect(problems(aliased)[0]!.message).toMatch(/anchors and aliases/);
    expect(problems('- a\n- b\n')[0]!.message).toMatch(/a submission is a mapping/);
    expect(problems('student: [unclosed\n')[0]!.line).toBeGreaterThan(0);
  });

  it('bounds the file and each answer', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcplab-sub-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const big = join(dir, 'big.yaml');
    writeFileSync(big, good + `# ${'x'.repeat(70 * 1024)}\n`);
    const r = loadSubmission(big, lab2);
    expect(r.ok === false && r.problems[0]!.message).toMatch(/a submission may have at most 65536/);
    const long = good.replace('iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP', 'x'.repeat(17 * 1024));
    expect(problems(long)[0]!.message).toMatch(/at most 16384 characters per machine/);
    const missing = loadSubmission(join(dir, 'nope.yaml'), lab2);
    expect(missing.ok === false && missing.problems[0]!.message).toMatch(/cannot read: ENOENT/);
    const notAFile = loadSubmission(dir, lab2);
    expect(notAFile.ok === false && notAFile.problems[0]!.message).toMatch(/not a regular file/);
  });

  it('what lab submit renders loads back as the same submission, comments and all', () => {
    const s = {
      student: 'alice',
      lab: 1,
      answers: { 'your-turn': { server: 'nc -l 5637\n', client: "echo 'hi: there' | nc -q0 {{server.ip}} 5637\n  # indented\n" } },
      tcplab: '0.1.0',
      labHash: labHash('x'),
      submittedAt: '2026-11-26T00:00:00.000Z',
    };
    const text = renderSubmission(s, [{ step: 'your-turn', title: 'Your task: TIME_WAIT', status: 'lab check passed at attempt 1' }]);
    expect(text).toContain('# Your task: TIME_WAIT (lab check passed at attempt 1)');
    expect(text).toMatch(/client: \|/);
    const r = validateSubmissionText(text, lab1);
    expect(r.ok && r.submission).toEqual(s);
    expect(validateSubmissionText(renderSubmission({ student: 'b', lab: 1, answers: {} }), lab1).ok).toBe(true);
  });
});
