// `lab test` on every shipped lab, by the real CLI against the real engine: each lab's solutions pass (the
// catalogue test: a lab passes because the kernel really showed the states, counters and command results its
// expectations name, graded by the same engine path as `lab grade N`), its null
// answer (every task left undone) scores 0 and fails, no check the null answer meets carries points of its own,
// and every mutant answer beside a lab fails. Then the test itself must be able to fail: a lab that pays for
// what the null answer does, with a "mutant" that is in fact right, fails it; a broken mutant file is exit 2.
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { catalogue, resolveLab } from '../../src/lab/catalogue.js';
import { variantValues } from '../../src/lab/variants.js';
import { mutantFiles, type LabTestReport } from '../../src/submit/lab-test.js';

const exec = promisify(execFile);
const bin = new URL('../../bin/lab.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'tcplab-labtest-'));

async function lab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec('node', [bin, ...args], { env: { ...process.env, TCPLAB_STATE_DIR: dir }, maxBuffer: 64 << 20 });
    return { code: 0, ...r };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describeDocker('lab test', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('every shipped lab: solutions pass, the null answer scores 0 and fails, every mutant fails', async () => {
    const started = performance.now();
    const r = await lab('test', '--all', '--json');
    const seconds = (performance.now() - started) / 1000;
    const doc = JSON.parse(r.stdout) as { passed: boolean; labs: LabTestReport[] };
    console.log(`lab test --all: ${doc.labs.length} labs in ${seconds.toFixed(1)} s`);
    for (const l of doc.labs)
      console.log(
        `  lab ${l.lab.id}: solutions ${l.solutions.passed}/${l.runs}, null ${l.nullAnswer?.scores.join(',')}/${l.solutions.maxScore} meets ${l.nullAnswer?.met.length}, mutants ${l.mutants.map((m) => `${m.failedRuns}/${m.scores.length} failed (${m.scores.join(',')})`).join(' ') || 'none'}`,
      );
    expect(doc.labs.map((l) => l.lab.id)).toEqual(catalogue().map((l) => l.lab.id));
    for (const l of doc.labs) {
      expect(l.problems, `lab ${l.lab.id}`).toEqual([]);
      expect(l.solutions, `lab ${l.lab.id}`).toMatchObject({ passed: 1, scores: [l.solutions.maxScore], failed: [] });
      expect(l.solutions.maxScore).toBeGreaterThan(0);
      // The null answer: 0 points on every lab, and not a pass.
      expect(l.nullAnswer, `lab ${l.lab.id}`).toMatchObject({ scores: [0], failedRuns: 1 });
      expect(l.refused).toEqual([]);
      expect(l.mutants.map((m) => m.failedRuns)).toEqual(mutantFiles(l.file).map(() => 1));
    }
    // The mutants teach what the lab declares: REJECT and the wrong chain earn Lab 2's partial credit.
    const lab2 = doc.labs.find((l) => l.lab.id === 2)!;
    expect(Object.fromEntries(lab2.mutants.map((m) => [m.file.split('/').pop(), m.scores[0]]))).toEqual({
      'reject.yaml': 6,
      'wrong-chain.yaml': 6,
      'wrong-port.yaml': 0,
    });
    expect(doc.passed).toBe(true);
    expect(r.code, r.stderr).toBe(0);
  }, 900_000);

  it('fails a lab that pays for what the null answer does, and a mutant that passes', async () => {
    // Lab 1, with partial credit on a check that holds without any answer (nothing listens on the port), and
    // a "mutant" that is the right answer for its student.
    const src = resolveLab('1');
    const file = join(dir, 'pays-for-nothing.yaml');
    const text = readFileSync(src.file, 'utf8').replace(
      'why: the server closed second and keeps nothing on its port',
      'why: the server closed second and keeps nothing on its port\n          points: 1',
    );
    expect(text).not.toBe(readFileSync(src.file, 'utf8'));
    writeFileSync(file, text.replace('# yaml-language-server: $schema=../schema/lab.schema.json', '# yaml-language-server: $schema=x'));
    mkdirSync(join(dir, 'pays-for-nothing.mutants'));
    const port = variantValues(src.lab, 'right')['variant.port']!;
    writeFileSync(
      join(dir, 'pays-for-nothing.mutants', 'right.yaml'),
      `student: right\nlab: 1\nanswers:\n  your-turn:\n    server: |\n      nc -l ${port} &\n    client: |\n      echo hi | nc -q0 {{server.ip}} ${port}\n`,
    );
    const r = await lab('test', file, '--json');
    const report = (JSON.parse(r.stdout) as { labs: LabTestReport[] }).labs[0]!;
    expect(r.code, r.stderr).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.refused.map((c) => c.name)).toEqual([
      'server: no socket LISTEN|ESTABLISHED|CLOSE_WAIT, local *:{{variant.port}} within 5s',
    ]);
    expect(report.problems.join('\n')).toMatch(
      /the null answer meets 'server: no socket LISTEN\|ESTABLISHED\|CLOSE_WAIT.*1 points of its own/,
    );
    expect(report.problems.join('\n')).toMatch(/mutant right\.yaml passed 1 of 1 runs: it must fail/);
    // Scored as the lab declares its points, the null answer earns that check's point: nothing for nothing fails.
    expect(report.nullAnswer!.scores).toEqual([1]);
    expect(report.problems).toContain('the null answer scored 1 of 2: it must score 0');
    // Its solutions still pass: the refusal is for the points alone.
    expect(report.solutions.passed).toBe(1);
  }, 300_000);

  it('a mutant file that cannot be graded is exit 2 with its file:line, before anything runs', async () => {
    const file = join(dir, 'broken.yaml');
    cpSync(resolveLab('2').file, file);
    mkdirSync(join(dir, 'broken.mutants'), { recursive: true });
    writeFileSync(join(dir, 'broken.mutants', 'typo.yaml'), 'student: typo\nlab: 2\nanswers:\n  drop-sin:\n    client: "true"\n');
    const r = await lab('test', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/broken\.mutants\/typo\.yaml:4:3: answers\.drop-sin: lab 2 has no step 'drop-sin'/);
    expect(r.stderr).not.toMatch(/testing 1 lab/);
  });
});
