// Submission files: the schema in one place, every problem with file:line, checked against the lab graded.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { resolveLab } from '../../src/lab/catalogue.js';
import { answersOf, labHash, loadSubmission, validateSubmissionText } from '../../src/submit/submission.js';
import { renderSubmission } from '../../src/submit/render.js';

const lab2 = resolveLab('2').lab;
const lab1 = resolveLab('1').lab;

const good = `student: alice
lab: 2
answers:
  drop-syn:
    client: |
      iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP
`;

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

  it('an empty submission (no answers) is gradable: every task just goes unanswered', () => {
    expect(problems('student: carol\nlab: 2\n')).toEqual([]);
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
