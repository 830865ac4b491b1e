// What `lab submit` tells a student about the file it just tried in a fresh instance (src/submit/verify.ts): a
// head line that says plainly whether it passes, and, when it does not, the first check missed, what was seen,
// and each command as the student ran it beside how the replay ran it.
import { describe, expect, it } from 'vitest';
import { resolveLab } from '../../src/lab/catalogue.js';
import type { AnswerScript } from '../../src/lab/answer-script.js';
import type { SubmissionResult } from '../../src/submit/batch.js';
import { verificationReport } from '../../src/submit/verify.js';

const lab7 = resolveLab('7').lab;

const timeline: AnswerScript[] = [
  {
    node: 'firewall',
    script: 'iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP',
    at: 0,
    end: { by: 'exit', exit: 0 },
  },
  { node: 'server', script: 'nc -l 5556', at: 6200, end: { by: 'ctrl-c', at: 19_800 } },
  { node: 'client', script: 'nc {{server.ip}} 5556', at: 12_500 },
];

function result(over: Partial<SubmissionResult>): SubmissionResult {
  return { student: 'bob', file: 'bob.yaml', gradable: true, passed: true, score: 2, maxScore: 2, tasks: [], durationMs: 41_000, ...over };
}

const finWait1 = {
  step: 'your-turn',
  name: 'server: socket FIN_WAIT_1 local {{server.ip}}:5556 for 1s',
  expected: 'server: socket FIN_WAIT_1 local 198.18.7.3:5556 for 1s',
  passed: false,
  ran: true,
  seen: ['ESTAB 198.18.7.3:5556 -> 198.18.6.2:40312', 'LISTEN *:22\u001b]0;pwned\u0007'],
  why: 'the server closed first and its FIN is never acknowledged',
  task: true,
};

describe('the verification report', () => {
  it('a file that passes: says so in one line, with the points and the time', () => {
    expect(verificationReport(result({}), lab7, { 'your-turn': timeline })).toEqual({
      passed: true,
      head: 'it passes: tried once in a fresh instance of lab 7 (fin-wait-1), every check met, 2/2 points (41.0 s)',
      lines: [],
    });
  });

  it('a file that would not pass: the check missed, what was there, and each command as you ran it and as replayed', () => {
    const r = result({
      passed: false,
      score: 0,
      tasks: [
        {
          step: 'your-turn',
          title: 'Your task: hold the server in FIN_WAIT_1',
          passed: false,
          score: 0,
          maxScore: 2,
          items: [
            {
              step: 'your-turn',
              name: 'task your-turn',
              points: 0,
              maxPoints: 2,
              passed: false,
              whole: true,
              checks: [{ ...finWait1 }, { ...finWait1, name: 'client', expected: 'client: socket ESTABLISHED', passed: false }],
            },
          ],
        },
      ],
      answers: [
        { step: 'your-turn', node: 'firewall', command: timeline[0]!.script, running: false, exit: 0, output: '' },
        { step: 'your-turn', node: 'server', command: 'nc -l 5556', running: true, output: '' },
        { step: 'your-turn', node: 'client', command: 'nc {{server.ip}} 5556', running: true, output: 'hello\nbye' },
      ],
    });
    const noCtrlC = timeline.map((s) => (s.node === 'server' ? { node: s.node, script: s.script, at: s.at } : s));
    const report = verificationReport(r, lab7, { 'your-turn': noCtrlC });
    expect(report.passed).toBe(false);
    expect(report.head).toBe('it would not pass: tried once in a fresh instance of lab 7 (fin-wait-1), 0/2 points');
    expect(report.lines).toEqual([
      'your-turn: 0/2, not met: server: socket FIN_WAIT_1 local 198.18.7.3:5556 for 1s (+1 more)',
      '  why: the server closed first and its FIN is never acknowledged',
      '  seen: ESTAB 198.18.7.3:5556 -> 198.18.6.2:40312',
      // What a command printed reaches the terminal escaped.
      '  seen: LISTEN *:22\\x1b]0;pwned\\x07',
      '  the replay of your commands:',
      '    firewall: iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP: you: exit 0; replayed: exit 0',
      '    server: nc -l 5556: you: still running; replayed: still running at the checks',
      '    client: nc {{server.ip}} 5556: you: still running; replayed: still running at the checks (bye)',
    ]);
    // With the Ctrl-C in the file, the line says when it came and that the replay sent it.
    const sent = verificationReport(
      { ...r, answers: r.answers!.map((a) => (a.node === 'server' ? { ...a, running: false, exit: 130, interrupted: true } : a)) },
      lab7,
      { 'your-turn': timeline },
    );
    expect(sent.lines).toContain('    server: nc -l 5556: you: Ctrl-C at 19.8s; replayed: exit 130 after its Ctrl-C');
  });

  it('a file that cannot be graded says why, with the file and line', () => {
    const r = result({
      gradable: false,
      passed: false,
      score: 0,
      reason: "bob.yaml:9:7: answers.your-turn[1].at: a time from the task's first command, with its unit: 0s, 4.25s, 800ms or 2m",
    });
    expect(verificationReport(r, lab7)).toEqual({
      passed: false,
      head: "it cannot be graded: bob.yaml:9:7: answers.your-turn[1].at: a time from the task's first command, with its unit: 0s, 4.25s, 800ms or 2m",
      lines: [],
    });
  });

  it('a lab that stopped part-way says so before the tasks', () => {
    const r = result({ passed: false, score: 0, error: 'the engine went away' });
    expect(verificationReport(r, lab7).lines[0]).toBe('the lab stopped: the engine went away');
  });
});
