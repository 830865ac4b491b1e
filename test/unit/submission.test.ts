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
import { classParallel, nullAnswerOf } from '../../src/submit/batch.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { handIn } from '../../src/submit/hand-in.js';
import { formatProblem } from '../../src/errors.js';
import type { TimelineEntry } from '../../src/submit/record.js';

const lab2 = resolveLab('2').lab;
const lab1 = resolveLab('1').lab;
/** Lab 7's task as a student did it: the firewall's rule, the server's listener ended by Ctrl-C, the client. */
const lab7Timeline = (): TimelineEntry[] => [
  {
    node: 'firewall',
    command: 'iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP',
    at: 0,
    end: { by: 'exit', exit: 0, at: 12 },
  },
  { node: 'server', command: 'nc -l 5556', at: 6213, end: { by: 'ctrl-c', at: 19_804 } },
  { node: 'client', command: 'nc {{server.ip}} 5556', at: 12_507 },
];

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
    expect(missing.ok === false && missing.problems[0]!.message).toMatch(/cannot read: no such file/);
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

describe('the timeline form (what lab submit writes)', () => {
  const lab7 = resolveLab('7').lab;
  const timeline = `student: alice
lab: 7
answers:
  your-turn:
    - firewall: iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP
      at: 0s
      exit: 0
    - server: nc -l 5556
      at: 6.2s
      ctrl-c: 19.8s
    - client: nc {{server.ip}} 5556
      at: 12.5s
    - server: |
        for i in 1 2; do
          ss -tn
        done
      at: 21s
      exit: 0
      ended: 21.5s
`;

  it('loads as a timeline: each command on its machine, in bash, with when it started and how it ended', () => {
    const r = validateSubmissionText(timeline, lab7);
    expect(r.ok ? [] : r.problems).toEqual([]);
    if (!r.ok) return;
    expect(answersOf(r.submission)['your-turn']).toEqual([
      {
        node: 'firewall',
        script: 'iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP',
        shell: 'bash',
        at: 0,
        end: { by: 'exit', exit: 0 },
      },
      { node: 'server', script: 'nc -l 5556', shell: 'bash', at: 6200, end: { by: 'ctrl-c', at: 19_800 } },
      { node: 'client', script: 'nc {{server.ip}} 5556', shell: 'bash', at: 12_500 },
      { node: 'server', script: 'for i in 1 2; do\n  ss -tn\ndone\n', shell: 'bash', at: 21_000, end: { by: 'exit', exit: 0, at: 21_500 } },
    ]);
  });

  it('takes entries written by hand without times: they keep the order written', () => {
    const r = validateSubmissionText(
      'student: a\nlab: 7\nanswers:\n  your-turn:\n    - server: nc -l 5556\n    - client: nc {{server.ip}} 5556\n',
      lab7,
    );
    expect(r.ok && answersOf(r.submission)['your-turn']).toEqual([
      { node: 'server', script: 'nc -l 5556', shell: 'bash' },
      { node: 'client', script: 'nc {{server.ip}} 5556', shell: 'bash' },
    ]);
  });

  it('says at which line an entry is wrong, and why', () => {
    const at = (text: string) => problems(text, lab7).map((p) => `${p.line}: ${p.message}`);
    expect(at(timeline.replace('    - server: nc -l 5556\n', '    - server: nc -l 5556\n      client: nc x 5556\n'))).toEqual([
      expect.stringMatching(/^8: an entry names one machine with its command \(.*\); this one names client and server$/),
    ]);
    expect(at(timeline.replace('      at: 12.5s', '      at: 5s'))).toEqual([
      '12: at 5s is before the entry above it (6.2s): the list is in the order things happened',
    ]);
    expect(at(timeline.replace('      ctrl-c: 19.8s', '      ctrl-c: 19.8s\n      exit: 130'))).toEqual([
      '10: a command ends one way: by ctrl-c, or on its own (exit, ended); not both',
    ]);
    expect(at(timeline.replace('ctrl-c: 19.8s', 'ctrl-c: 3s'))).toEqual(['10: ctrl-c 3s is before the command started (at 6.2s)']);
    expect(at(timeline.replace('at: 6.2s', 'at: 6.2'))[0]).toBe(
      "9: a time from the task's first command, with its unit: 0s, 4.25s, 800ms or 2m",
    );
    expect(at(timeline.replace('ctrl-c: 19.8s', 'ctrl_c: 19.8s'))).toEqual([
      "10: unknown key 'ctrl_c': an entry has one of client, server, firewall (the command), and at, exit, ended or ctrl-c",
    ]);
    expect(at(timeline.replace('ctrl-c: 19.8s', 'end: 19.8s'))[0]).toMatch(/^10: unknown key 'end': an entry has one of client/);
    for (const bad of ['exit: abc', 'exit: 300', 'exit: 1.5', 'exit: -1'])
      expect(at(timeline.replace('      exit: 0\n      ended', `      ${bad}\n      ended`)), bad).toEqual([
        '18: an exit status: a whole number from 0 to 255 (0: it succeeded)',
      ]);
    for (const bad of ['ctrl-c: soon', 'ctrl-c: 3', 'ctrl-c:', 'ctrl-c: -2s'])
      expect(at(timeline.replace('ctrl-c: 19.8s', bad)), bad).toEqual([
        "10: a time from the task's first command, with its unit: 0s, 4.25s, 800ms or 2m",
      ]);
    const lab2Timeline = 'student: a\nlab: 2\nanswers:\n  drop-syn:\n    - firewall: iptables -S\n';
    expect(problems(lab2Timeline).map((p) => `${p.line}: ${p.message}`)).toEqual(['5: lab 2 has no firewall (it has client, server)']);
    expect(at(timeline.replace('    - client: nc {{server.ip}} 5556\n      at: 12.5s\n', '    - at: 12.5s\n'))).toEqual([
      expect.stringMatching(/^11: an entry names one machine .* this one names none$/),
    ]);
  });

  it('lab submit renders a recorded timeline that loads back as what was recorded, and says what is still running', () => {
    const recorded: TimelineEntry[] = [
      ...lab7Timeline(),
      { node: 'client', command: "echo 'a: b' # #x", at: 20_000, end: { by: 'exit', exit: 2, at: 25_000 } },
      { node: 'server', command: 'for i in 1 2; do\n  echo $i\ndone', at: 21_000, end: { by: 'exit', exit: 0, at: 21_002 } },
    ];
    const written = handIn(
      lab7,
      'alice',
      { 'your-turn': { title: 'Your task', passed: true, attempts: 2, answer: [], timeline: recorded } },
      {
        tcplab: '0.1.0',
        submittedAt: '2026-11-26T00:00:00.000Z',
      },
    );
    expect(written.text).toContain('# Your task: hold the server in FIN_WAIT_1 (lab check passed at attempt 2)');
    expect(written.text).toContain(
      [
        '  your-turn:',
        '    - firewall: iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP',
        '      at: 0s',
        '      exit: 0',
        '    - server: nc -l 5556',
        '      at: 6.213s',
        '      ctrl-c: 19.804s',
        '    - client: nc {{server.ip}} 5556',
        '      at: 12.507s # still running when the task ended',
      ].join('\n'),
    );
    // The sleep-like command that ended after the next one started says when.
    expect(written.text).toContain('      exit: 2\n      ended: 25s\n');
    expect(written.tasks).toEqual(['your-turn']);
    const back = answersOf(written.submission)['your-turn']!;
    expect(back.map((a) => [a.node, a.script, a.at, a.end])).toEqual([
      [recorded[0]!.node, recorded[0]!.command, 0, { by: 'exit', exit: 0 }],
      ['server', 'nc -l 5556', 6213, { by: 'ctrl-c', at: 19_804 }],
      ['client', 'nc {{server.ip}} 5556', 12_507, undefined],
      ['client', "echo 'a: b' # #x", 20_000, { by: 'exit', exit: 2, at: 25_000 }],
      ['server', 'for i in 1 2; do\n  echo $i\ndone', 21_000, { by: 'exit', exit: 0 }],
    ]);
  });

  it('a bad time or end in a hand-edited file is reported as file:line:column, never thrown', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcplab-sub-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'bob.yaml');
    const report = (text: string) => {
      writeFileSync(file, text);
      const r = loadSubmission(file, lab7);
      expect(r.ok === false && r.student).toBe('alice');
      return r.ok ? [] : r.problems.map((p) => formatProblem(file, p));
    };
    expect(report(timeline.replace('at: 12.5s', 'at: half past'))).toEqual([
      `${file}:12:7: answers.your-turn[2].at: a time from the task's first command, with its unit: 0s, 4.25s, 800ms or 2m`,
    ]);
    expect(report(timeline.replace('exit: 0\n      ended', 'exit: yes\n      ended'))).toEqual([
      `${file}:18:7: answers.your-turn[3].exit: an exit status: a whole number from 0 to 255 (0: it succeeded)`,
    ]);
    expect(report(timeline.replace('ctrl-c: 19.8s', 'ctrl-c: 1s'))).toEqual([
      `${file}:10:7: answers.your-turn[1].ctrl-c: ctrl-c 1s is before the command started (at 6.2s)`,
    ]);
  });

  it('the file lab submit writes reads as a timeline and can be edited by hand: a time changed, a line taken out', () => {
    const recorded = lab7Timeline();
    const { text } = handIn(
      lab7,
      'alice',
      { 'your-turn': { title: 'T', passed: true, attempts: 1, answer: [], timeline: recorded } },
      {
        tcplab: '0.1.0',
        submittedAt: '2026-11-26T00:00:00.000Z',
      },
    );
    // The header says what the keys mean.
    expect(text).toMatch(/^# tcplab submission, written by `lab submit`/);
    for (const key of ['at is when', 'exit,', 'ctrl-c,', 'ended:']) expect(text).toContain(key);
    // The Ctrl-C comes later, and the firewall's rule goes.
    const edited = text.replace('ctrl-c: 19.804s', 'ctrl-c: 30s').replace(/ {4}- firewall: .*\n {6}at: 0s\n {6}exit: 0\n/, '');
    const r = validateSubmissionText(edited, lab7);
    expect(r.ok ? [] : r.problems).toEqual([]);
    expect(r.ok && answersOf(r.submission)['your-turn']!.map((a) => [a.node, a.at, a.end])).toEqual([
      ['server', 6213, { by: 'ctrl-c', at: 30_000 }],
      ['client', 12_507, undefined],
    ]);
    // A Ctrl-C taken out: the listener now runs on.
    const noCtrlC = validateSubmissionText(text.replace(/ {6}ctrl-c: .*\n/, ''), lab7);
    expect(noCtrlC.ok && answersOf(noCtrlC.submission)['your-turn']![1]).toEqual({
      node: 'server',
      script: 'nc -l 5556',
      shell: 'bash',
      at: 6213,
    });
  });

  it('a record of an older tcplab (no timeline) is handed in in the per-machine form', () => {
    const written = handIn(
      lab1,
      'alice',
      { 'your-turn': { title: 'T', passed: true, attempts: 1, answer: [{ node: 'server', lines: ['nc -l 5637'] }] } },
      { tcplab: '0.1.0', submittedAt: '2026-11-26T00:00:00.000Z' },
    );
    expect(written.submission.answers).toEqual({ 'your-turn': { server: 'nc -l 5637\n' } });
  });
});

describe('how many submissions are graded at once without --parallel', () => {
  const engine = (cpus: number | undefined, fails = false) =>
    ({
      info: async () => {
        if (fails) throw new Error('no engine');
        return { version: '20.10', apiVersion: '1.41', os: 'linux', kernel: '6', ...(cpus ? { cpus } : {}) };
      },
    }) as unknown as Runtime;

  it("is four per CPU of the engine's host, from 4 to 16", async () => {
    expect(await classParallel(engine(1))).toBe(4);
    expect(await classParallel(engine(2))).toBe(8);
    expect(await classParallel(engine(3))).toBe(12);
    expect(await classParallel(engine(8))).toBe(16);
  });

  it('is 4 when the engine does not say how many CPUs it has, or cannot be asked', async () => {
    expect(await classParallel(engine(undefined))).toBe(4);
    expect(await classParallel(engine(2, true))).toBe(4);
  });
});
