// Mistakes on the command line are the user's, not tcplab's: each is said plainly, with exit 2 and no stack
// trace. A QA tester who wrote labs from the docs alone met these as "internal error (a bug in tcplab ...)" or
// as Node's own option-parser text.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { parseCommandLine } from '../../src/cli/parse.js';

afterAll(removeTempDirs);

const dir = tempDir('tcplab-cli-usage-');

function lab(args: string[]) {
  return spawnSync(process.execPath, ['bin/lab.js', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    // No engine is needed: each mistake is found before one is asked for; a wrong one fails quickly.
    env: { ...process.env, NO_COLOR: '1', DOCKER_HOST: 'tcp://127.0.0.1:1' },
  });
}

function expectUsageError(r: ReturnType<typeof lab>, message: RegExp): void {
  expect(r.error).toBeUndefined();
  expect(r.stderr).not.toMatch(/internal error|at Object\.|ENOENT/);
  expect(r.stderr).toMatch(message);
  expect(r.status).toBe(2);
}

describe('a file to write in a folder that does not exist', () => {
  const missing = join(dir, 'sub', 'dir');

  it('lab new -o', () => {
    const r = lab(['new', 'second', '-o', join(missing, 'second.yaml')]);
    expectUsageError(r, /the folder .*sub\/dir does not exist/);
    expect(r.stderr).toMatch(/mkdir -p/);
    expect(existsSync(join(dir, 'sub'))).toBe(false);
  });

  it('lab new -o, still writes in a folder that exists', () => {
    mkdirSync(join(dir, 'there'));
    const r = lab(['new', 'second', '-o', join(dir, 'there', 'second.yaml')]);
    expect(r.status).toBe(0);
    expect(existsSync(join(dir, 'there', 'second.yaml'))).toBe(true);
  });

  it('lab compose --output', () => {
    expectUsageError(lab(['compose', 'direct', '--output', join(missing, 'c.yaml')]), /--output .*: the folder .* does not exist/);
  });

  it('lab submit -o', () => {
    expectUsageError(lab(['submit', '-o', join(missing, 's.yaml')]), /-o .*: the folder .* does not exist/);
  });

  it('lab grade --junit, before any lab is run', () => {
    expectUsageError(lab(['grade', '1', '--junit', join(missing, 'j.xml')]), /--junit .*: the folder .* does not exist/);
  });

  it('lab grade --submissions --gradebook and --junit, before anything is graded', () => {
    expectUsageError(
      lab(['grade', '2', '--submissions', dir, '--gradebook', join(missing, 'g.csv')]),
      /--gradebook .*: the folder .* does not exist/,
    );
    expectUsageError(
      lab(['grade', '2', '--submissions', dir, '--junit', join(missing, 'j.xml')]),
      /--junit .*: the folder .* does not exist/,
    );
  });

  it('lab grade --gradescope and --prairielearn: a folder under a file', () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    expectUsageError(
      lab(['grade', '2', '--submissions', dir, '--gradescope', join(file, 'gs')]),
      /--gradescope .*a-file is a file, not a folder/,
    );
    expectUsageError(lab(['grade', '2', '--submissions', dir, '--prairielearn', file]), /--prairielearn .*that is a file, not a folder/);
  });

  it('lab image save, before the image is built', () => {
    expectUsageError(lab(['image', 'save', join(missing, 'image.tar.gz')]), /image save .*: the folder .* does not exist/);
  });
});

describe('an option a command does not take', () => {
  it('is said in tcplab words, for every command, with the command usage', () => {
    for (const command of COMMANDS) {
      const line = parseCommandLine([command.name, '--no-such-option']);
      expect(line).toMatchObject({ kind: 'error', command, message: `lab ${command.name}: unknown option '--no-such-option'` });
    }
  });

  it('names the commands that have it', () => {
    expect(parseCommandLine(['validate', 'x.yaml', '--student', 'a'])).toMatchObject({
      kind: 'error',
      message: "lab validate: unknown option '--student' (--student goes with lab start, grade, plan, submit)",
    });
  });

  it('a value missing, a value given to a switch, an option where a value belongs', () => {
    expect(parseCommandLine(['new', 'x', '-o'])).toMatchObject({ kind: 'error', message: 'lab new: -o needs a value' });
    expect(parseCommandLine(['plan', '1', '--json=yes'])).toMatchObject({
      kind: 'error',
      message: "lab plan: --json takes no value (got '--json=yes')",
    });
    expect(parseCommandLine(['new', 'x', '--output', '--json'])).toMatchObject({
      kind: 'error',
      message: "lab new: --output needs a value, and got the option '--json' (if that is the value, write --output=--json)",
    });
    expect(parseCommandLine(['submit', '-o', '-'])).toMatchObject({ kind: 'run', values: { output: '-' } });
  });

  it('lab validate --student: exit 2, no text of Node option parser', () => {
    const r = lab(['validate', 'x.yaml', '--student', 'a']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^lab validate: unknown option '--student'/m);
    expect(r.stderr).toMatch(/usage: lab validate/);
    expect(r.stderr).not.toMatch(/positional|'--'/);
  });
});
