// Submission files as a hostile student hands them in, next to honest ones: what a file and its name can be
// (a symlink to a secret or to a classmate's file, bytes that are not UTF-8, a name too long for a folder or
// with a newline, a student id another differs from only by case, a file that makes thousands of problems),
// each of which must cost that file alone a clear reason and leave every output and every other student
// intact. No engine: an engine that fails every call stands in, so nothing here is replayed.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { resolveLab } from '../../src/lab/catalogue.js';
import { loadSubmission } from '../../src/submit/submission.js';
import { gradeSubmissions, prepareSubmission, submissionFiles, type SubmissionResult } from '../../src/submit/batch.js';
import { resultFolder } from '../../src/report/gradescope.js';
import { EngineError, LabError } from '../../src/errors.js';
import { handIn } from '../../src/submit/hand-in.js';
import type { TimelineEntry } from '../../src/submit/record.js';
import { FakeRuntime } from '../reliability/fake-runtime.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

const { lab: lab1 } = resolveLab('1');
afterAll(removeTempDirs);

const honest = (student: string) => `student: ${student}\nlab: 1\nanswers:\n  your-turn:\n    server: |\n      nc -l 5000\n`;

/** The batch against an engine that fails every call: what is not gradable says why before any replay. */
async function batch(files: string[], handedInBy?: string): Promise<SubmissionResult[]> {
  const runtime = new FakeRuntime();
  runtime.before = () => {
    throw new EngineError('no engine in this test');
  };
  const { results } = await gradeSubmissions(files, {
    runtime,
    lab: lab1,
    labText: '',
    image: 'x',
    parallel: 2,
    labTimeoutMs: 5000,
    retries: 0,
    signal: new AbortController().signal,
    version: 'test',
    track: () => {},
    untrack: () => {},
    ...(handedInBy ? { handedInBy } : {}),
  });
  return results;
}

describe('hostile submission files', () => {
  it("a symlink is not handed in: not to a secret of the grader's host, not to a classmate's file", () => {
    const dir = tempDir('tcplab-hostile-');
    const secret = join(tempDir('tcplab-secret-'), 'secret.yaml');
    writeFileSync(secret, 'aws_secret_access_key: hunter2-do-not-show\n');
    writeFileSync(join(dir, 'alice.yaml'), honest('alice'));
    symlinkSync(secret, join(dir, 'mallory.yaml'));
    symlinkSync(join(dir, 'alice.yaml'), join(dir, 'mallet.yaml'));
    symlinkSync('loop.yaml', join(dir, 'loop.yaml'));
    const files = submissionFiles([dir]);
    const reasons = files.map((f) => prepareSubmission(f, lab1, 'x', 'x').result?.reason);
    expect(reasons[0]).toBeUndefined();
    for (const r of reasons.slice(1)) expect(r).toMatch(/a symbolic link, not a file/);
    expect(reasons.join('\n')).not.toMatch(/hunter2|aws_secret/);
    // Alice is graded as herself, alone: a link to her file is not a second submission of hers.
    expect(prepareSubmission(files[0]!, lab1, 'x', 'x').student).toBe('alice');
  });

  it('bytes that are not UTF-8 are refused where they are, not graded as replacement characters', () => {
    const dir = tempDir('tcplab-hostile-');
    const file = join(dir, 'latin1.yaml');
    writeFileSync(file, Buffer.concat([Buffer.from(honest('alice').replace('nc -l 5000\n', 'echo caf')), Buffer.from([0xe9, 0x0a])]));
    const r = loadSubmission(file, lab1);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems[0]).toMatchObject({ line: 6, message: expect.stringMatching(/not UTF-8/) as unknown });
    // A byte-order mark is UTF-8 and is fine.
    writeFileSync(file, `\ufeff${honest('alice')}`);
    expect(loadSubmission(file, lab1).ok).toBe(true);
  });

  it('a file that makes thousands of problems gets a reason of a few lines, saying how many more there are', () => {
    const dir = tempDir('tcplab-hostile-');
    const file = join(dir, 'tags.yaml');
    writeFileSync(file, `student: mallory\nlab: 1\nx: ${'!!str '.repeat(10_000)}a\n`);
    const reason = prepareSubmission(file, lab1, 'x', 'x').result!.reason!;
    expect(reason.split('\n').length).toBeLessThanOrEqual(11);
    expect(reason.length).toBeLessThan(4096);
    expect(reason).toMatch(/and \d{4} more problems/);
    // So does one problem that lists thousands of keys.
    writeFileSync(file, `student: mallory\nlab: 1\n${Array.from({ length: 5000 }, (_, i) => `k${i}: 1\n`).join('')}`);
    const keys = prepareSubmission(file, lab1, 'x', 'x').result!.reason!;
    expect(keys.length).toBeLessThan(4096);
    expect(keys).toMatch(/unknown keys 'k0', 'k1'/);
    // And one key of 60 000 characters, which is in the path of its problem.
    writeFileSync(file, `student: mallory\nlab: 1\nanswers:\n  ${'a'.repeat(60_000)}:\n    client: x\n`);
    expect(prepareSubmission(file, lab1, 'x', 'x').result!.reason!.length).toBeLessThan(1024);
  });

  it("a folder's files that are not .yaml or .yml are not graded, and are named as skipped", () => {
    const dir = tempDir('tcplab-hostile-');
    for (const name of ['alice.yaml', 'bob.YML', 'carol.yaml.txt', 'notes.md']) writeFileSync(join(dir, name), honest('x'));
    const skipped: string[] = [];
    expect(submissionFiles([dir], skipped).map((f) => f.slice(dir.length + 1))).toEqual(['alice.yaml', 'bob.YML']);
    expect(skipped.map((f) => f.slice(dir.length + 1))).toEqual(['carol.yaml.txt', 'notes.md']);
  });

  it("a second document, or a key that is a list, is a problem at its line, not the YAML library's words or a Node warning", () => {
    const dir = tempDir('tcplab-hostile-');
    const file = join(dir, 'odd.yaml');
    writeFileSync(file, `${honest('alice')}---\nstudent: bob\n`);
    expect(prepareSubmission(file, lab1, 'x', 'x').result!.reason).toMatch(/odd\.yaml:7:1: one YAML document only/);
    const warn = vi.spyOn(process, 'emitWarning');
    writeFileSync(file, `${honest('alice')}? [a, b]\n: 1\n`);
    expect(prepareSubmission(file, lab1, 'x', 'x').result!.reason).toMatch(/unknown key '\[ a, b \]'/);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
  });

  it('a file name with a newline or a tab stays on one line in every result', async () => {
    const dir = tempDir('tcplab-hostile-');
    const name = 'x\n✓ PASS alice: 2 of 2 points\tforged.yaml';
    writeFileSync(join(dir, name), 'not: a submission\n');
    const [r] = await batch(submissionFiles([dir]));
    expect(r!.file).not.toMatch(/[\n\t]/);
    // One line per problem, each starting with the file's name: none that a reader could take for a result.
    for (const line of r!.reason!.split('\n')) expect(line.startsWith(`${r!.file}:`)).toBe(true);
    expect(r!.reason).toContain('x\\n✓ PASS alice');
  });

  it('two files whose students differ only by case are two submissions of one student', async () => {
    const dir = tempDir('tcplab-hostile-');
    writeFileSync(join(dir, 'alice.yaml'), honest('alice'));
    writeFileSync(join(dir, 'mallory.yaml'), honest('ALICE'));
    const results = await batch(submissionFiles([dir]));
    for (const r of results) expect(r).toMatchObject({ gradable: false, reason: expect.stringMatching(/has 2 submissions/) as unknown });
  });

  it("a classmate's file handed in whole as one's own is not graded when the platform says who handed it in", async () => {
    const dir = tempDir('tcplab-hostile-');
    const file = join(dir, 'submission.yaml');
    writeFileSync(file, honest('alice'));
    const [copied] = await batch([file], 'mallory');
    expect(copied).toMatchObject({ student: 'alice', gradable: false });
    expect(copied!.reason).toMatch(/names student alice, but mallory handed it in/);
    // Her own file goes on to be graded (here, to an engine that is not there).
    const [own] = await batch([file], 'Alice');
    expect(own!.reason).toMatch(/^engine: /);
  });

  it('each result gets a folder of its own that the file system can make, whatever the file is called', () => {
    const base = { gradable: false, passed: false, score: 0, maxScore: 2, tasks: [], durationMs: 0 };
    const names = ['L'.repeat(250) + '.yaml', 'L'.repeat(250) + '.yml', 'a b.yaml', 'a_b.yaml', 'a\nb.yaml', '..yaml', '.yaml'];
    const folders = names.map((n) => resultFolder({ ...base, student: null, file: `subs/${n}` }));
    expect(new Set(folders).size).toBe(names.length);
    for (const f of folders) {
      expect(Buffer.byteLength(f)).toBeLessThanOrEqual(255);
      expect(f).toMatch(/^_[A-Za-z0-9._-]+$/);
      const out = tempDir('tcplab-folder-');
      mkdirSync(join(out, f));
      writeFileSync(join(out, f, 'results.json'), '{}');
      expect(readFileSync(join(out, f, 'results.json'), 'utf8')).toBe('{}');
    }
    expect(resultFolder({ ...base, student: 'alice', file: 'subs/x.yaml' })).toBe('alice');
  });
});

describe('a recorded walk too big for a submission', () => {
  const entries = (n: number): TimelineEntry[] =>
    Array.from({ length: n }, (_, i) => ({ node: 'client', command: `echo ${i}`, at: i * 10, end: { by: 'exit', exit: 0 } }));
  const task = (timeline: TimelineEntry[]) => ({ title: 't', passed: false, attempts: 1, answer: [], timeline });
  const meta = { tcplab: 'test', submittedAt: '2026-12-05T00:00:00Z' };

  it('is refused with what to do (a LabError, not a bug): 501 commands in a task, or a command of 20 KB', () => {
    for (const timeline of [entries(501), [{ node: 'client' as const, command: 'x'.repeat(20_000), at: 0 }]]) {
      let thrown: unknown;
      try {
        handIn(lab1, 'alice', { 'your-turn': task(timeline) }, meta);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(LabError);
      expect((thrown as Error).message).toMatch(/your-turn/);
      expect((thrown as Error).message).not.toMatch(/tcplab wrote/);
    }
    expect(handIn(lab1, 'alice', { 'your-turn': task(entries(500)) }, meta).tasks).toEqual(['your-turn']);
  });
});
