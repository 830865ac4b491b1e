// The instructor's and the student's new commands, end to end through the built CLI, where no engine is
// needed: lab new, lab submit from a recorded walk, lab grade's usage errors; and how --shard splits a class.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { validateLabText } from '../../src/lab/load.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { variantValues } from '../../src/lab/variants.js';
import { newLabText } from '../../src/cli/commands/new.js';
import { inShard, parseShard } from '../../src/submit/batch.js';
import { validateSubmissionText } from '../../src/submit/submission.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { labYaml } from '../reliability/cli.js';

afterAll(removeTempDirs);

const run = promisify(execFile);
const bin = new URL('../../bin/lab.js', import.meta.url).pathname;

async function lab(args: string[], env: Record<string, string> = {}, cwd?: string) {
  try {
    const r = await run('node', [bin, ...args], { env: { ...process.env, ...env }, ...(cwd ? { cwd } : {}) });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe('lab new', () => {
  it('writes a commented starting lab that validates, and never overwrites a file', async () => {
    expect(validateLabText(newLabText('my-lab', 100)).problems).toEqual([]);
    expect(
      newLabText('my-lab', 100)
        .split('\n')
        .filter((l) => /^\s*#/.test(l) || / # /.test(l)).length,
    ).toBeGreaterThan(8);
    const dir = tempDir('tcplab-new-');
    const r = await lab(['new', 'my-lab'], {}, dir);
    expect(r.code).toBe(0);
    expect((await lab(['validate', join(dir, 'my-lab.yaml')])).code).toBe(0);
    const again = await lab(['new', 'my-lab'], {}, dir);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
    expect((await lab(['new', 'Bad Slug'])).code).toBe(2);
  });
});

describe('--shard K/N', () => {
  it('puts every file in exactly one shard, the same one on every run', () => {
    const files = Array.from({ length: 60 }, (_, i) => `subs/student-${i}.yaml`);
    const shards = [1, 2, 3, 4].map((k) => files.filter((f) => inShard(f, { k, n: 4 })));
    expect(shards.flat().sort()).toEqual([...files].sort());
    expect(shards.every((s) => s.length > 5)).toBe(true);
    // By the file's name only: the same file in another folder, or on another machine, is in the same shard.
    expect(inShard('/elsewhere/student-3.yaml', { k: 1, n: 4 })).toBe(inShard('subs/student-3.yaml', { k: 1, n: 4 }));
    expect(() => parseShard('0/4')).toThrow(/K\/N/);
    expect(() => parseShard('5/4')).toThrow(/K\/N/);
    expect(parseShard('2/4')).toEqual({ k: 2, n: 4 });
  });
});

/** A state directory as a walk of Lab 1 by alice leaves it, her task answered with her own port. */
function recordedWalk(): { state: string; port: string } {
  const state = tempDir('tcplab-state-');
  const lab1 = resolveLab('1');
  const port = variantValues(lab1.lab, 'alice')['variant.port']!;
  mkdirSync(join(state, 'work'), { recursive: true });
  writeFileSync(
    join(state, 'work', 'basic-states.json'),
    JSON.stringify({
      student: 'alice',
      lab: { id: 1, slug: 'basic-states', title: lab1.lab.title, file: lab1.file, hash: `sha256:${'0'.repeat(64)}` },
      tcplab: '0.1.0',
      instance: 'abcd1234',
      updatedAt: '2026-11-26T01:00:00.000Z',
      tasks: {
        'your-turn': {
          title: 'Your task',
          startedAt: '2026-11-26T00:59:00.000Z',
          endedAt: '2026-11-26T01:00:00.000Z',
          passed: true,
          attempts: 2,
          answer: [
            { node: 'server', lines: [`nc -l ${port}`] },
            { node: 'client', lines: [`echo hi | nc -q0 {{server.ip}} ${port}`] },
          ],
        },
      },
    }),
  );
  return { state, port };
}

describe('lab submit', () => {
  it('writes the recorded walk as a submission that loads, offline', async () => {
    const { state, port } = recordedWalk();
    const out = join(state, 'alice.yaml');
    const r = await lab(['submit', '-o', out], { TCPLAB_STATE_DIR: state, DOCKER_HOST: 'unix:///nonexistent.sock' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/lab 1 \(basic-states\) for alice, 1 of 1 tasks/);
    const text = readFileSync(out, 'utf8');
    expect(text).toMatch(/# Your task: leave the client in TIME_WAIT yourself \(lab check passed at attempt 2\)/);
    const s = validateSubmissionText(text, resolveLab('1').lab);
    expect(s.ok && s.submission).toMatchObject({
      student: 'alice',
      lab: 1,
      answers: { 'your-turn': { server: `nc -l ${port}\n`, client: `echo hi | nc -q0 {{server.ip}} ${port}\n` } },
      labHash: `sha256:${'0'.repeat(64)}`,
    });
    expect(s.ok && s.submission.tcplab).toMatch(/^\d+\.\d+\.\d+/);
    const printed = await lab(['submit', '1', '-o', '-'], { TCPLAB_STATE_DIR: state });
    expect(printed.stdout).toContain(`nc -l ${port}`);
  });

  it("refuses to hand a walk in under another student's name when the variants differ", async () => {
    const { state } = recordedWalk();
    const lab1 = resolveLab('1').lab;
    const other = ['bob', 'carol', 'dave', 'erin'].find(
      (s) => variantValues(lab1, s)['variant.port'] !== variantValues(lab1, 'alice')['variant.port'],
    )!;
    const r = await lab(['submit', '--student', other, '-o', join(state, 'x.yaml')], { TCPLAB_STATE_DIR: state });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`you walked lab 1 as alice.*differ from ${other}'s`));
    expect(r.stderr).toMatch(/hint: walk it again/);
  });

  it('says what to do when nothing was recorded', async () => {
    const r = await lab(['submit'], { TCPLAB_STATE_DIR: tempDir('tcplab-empty-') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nothing was recorded yet/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('lab grade --submissions: usage', () => {
  const offline = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
  it('clear errors before anything runs', async () => {
    const dir = tempDir('tcplab-subs-');
    // Every lab of the catalogue has a task now: a lab without one is a file of the test's own.
    const taskless = join(tempDir('tcplab-lab-'), 'no-task.yaml');
    writeFileSync(taskless, labYaml(''));
    // A file that is not a submission is named, not passed over in silence.
    writeFileSync(join(dir, 'alice.yaml.txt'), 'student: alice\nlab: 2\n');
    const cases: [string[], RegExp][] = [
      [['grade', taskless, '--submissions', dir], /has no tasks, so there is nothing to submit/],
      [['grade', '2', '--submissions', dir], /no submissions in .* \(1 file not ending in \.yaml or \.yml: alice\.yaml\.txt\)/],
      [['grade', '2', '--gradebook', 'x.csv'], /--gradebook goes with --submissions/],
      [['grade', '--all', '--submissions', dir], /--all grades the labs themselves/],
      [['grade', '2', '--submission', 'a.yaml', 'b.yaml'], /--submission grades one file/],
      [['grade', '2', '--submissions', dir, '--shard', '3/2'], /--shard takes K\/N/],
      [['grade', '2', '--submissions', dir, '--timeout', 'soon'], /--timeout takes a duration/],
      [['grade', '2', '--submissions', dir, '--student', 'bob'], /--student is for a lab run, or with --submission FILE/],
      [['grade', '2', '--submission', 'a.yaml', '--student', '=cmd'], /--student '=cmd' cannot be a student id/],
    ];
    const got = await Promise.all(cases.map(([args]) => lab(args, offline)));
    cases.forEach(([args, message], i) => {
      expect(got[i]!.code, args.join(' ')).toBe(2);
      expect(got[i]!.stderr, args.join(' ')).toMatch(message);
    });
  });

  it('an engine that cannot be reached is exit 3, as for every command', async () => {
    const dir = tempDir('tcplab-subs-');
    writeFileSync(join(dir, 'a.yaml'), 'student: a\nlab: 2\n');
    const r = await lab(['grade', '2', '--submissions', dir], offline);
    expect(r.code).toBe(3);
  });
});
