// What an instructor writing a lab from the docs alone ran into (a trial with README.md, docs/authoring.md and
// the JSON Schema only): rules the schema did not say, templates shown to students unfilled, a `closed` check
// that can never hold, no way to check a mutant or to know a student's variants without Docker, and a class
// graded with no capture for a lab whose only capture-reading check is `closed`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newLabText } from '../../src/cli/commands/new.js';
import { parseLab, validateLabText } from '../../src/lab/load.js';
import { labJsonSchemaText } from '../../src/lab/json-schema.js';
import { usesSegments } from '../../src/submit/batch.js';
import { validateSubmissionText } from '../../src/submit/submission.js';
import { variantValues } from '../../src/lab/variants.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const base = newLabText('my-lab', 100);
const TASK_CHECK = 'socket: { state: TIME_WAIT, local: "{{client.ip}}:*", peer: "{{server.ip}}:{{variant.port}}", closed: first }';
const messages = (text: string) => validateLabText(text).problems.map((p) => `${p.path}: ${p.message}`);

function lab(args: string[]) {
  return spawnSync(process.execPath, ['bin/lab.js', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NO_COLOR: '1', DOCKER_HOST: 'tcp://127.0.0.1:1' },
  });
}

describe('closed: first | second', () => {
  it('is refused on states where it can never hold, and accepted on TIME_WAIT (first) and LAST_ACK (second)', () => {
    expect(base).toContain(TASK_CHECK);
    expect(messages(base)).toEqual([]);
    const established = messages(base.replace(TASK_CHECK, TASK_CHECK.replace('TIME_WAIT', 'ESTABLISHED')));
    expect(established.join('\n')).toMatch(
      /closed: closed: first holds only for a socket in TIME_WAIT .*no socket in ESTABLISHED can match/,
    );
    expect(messages(base.replace(TASK_CHECK, TASK_CHECK.replace('closed: first', 'closed: second'))).join('\n')).toMatch(
      /closed: second holds only for a socket in LAST_ACK/,
    );
    expect(
      messages(base.replace(TASK_CHECK, TASK_CHECK.replace('TIME_WAIT', 'LAST_ACK').replace('closed: first', 'closed: second'))),
    ).toEqual([]);
    expect(messages(base.replace(TASK_CHECK, TASK_CHECK.replace('TIME_WAIT', '[FIN_WAIT_2, TIME_WAIT]')))).toEqual([]);
  });

  it('makes a class graded with a capture, even when no segments check does', () => {
    const lab = parseLab(base);
    expect(JSON.stringify(lab)).not.toMatch(/"segments"/);
    expect(usesSegments(lab)).toBe(true);
    expect(usesSegments(parseLab(base.replace(', closed: first', '')))).toBe(false);
  });
});

describe('templates where text is shown as written', () => {
  it("are refused in a step's title and a check's why, and filled in explain and a prediction's why", () => {
    const titled = base.replace('title: The server listens', 'title: The server listens on {{variant.port}}');
    expect(messages(titled).join('\n')).toMatch(/title: templates are not filled in in a step's title/);
    const why = base.replace('why: a passive open waits in LISTEN', 'why: "{{server.ip}} waits in LISTEN"');
    expect(messages(why).join('\n')).toMatch(/why: templates are not filled in in a check's why/);
    const taskWhy = base.replace('why: whoever closes first waits in TIME_WAIT', 'why: "{{client.ip}} closed first"');
    expect(messages(taskWhy).join('\n')).toMatch(/templates are not filled in in a check's why/);
    expect(messages(base.replace('A task is done by the student', 'A task on {{server.ip}} is done by the student'))).toEqual([]);
  });
});

describe('the JSON Schema says what lab validate will', () => {
  interface Obj {
    required?: string[];
    properties: { [key: string]: Obj };
    items: Obj;
  }
  const schema = JSON.parse(labJsonSchemaText()) as Obj;
  const at = (o: Obj, ...keys: string[]): Obj => keys.reduce((x, k) => (k === 'items' ? x.items : x.properties[k]!), o);
  const step = at(schema, 'steps', 'items');
  it('a task needs a solution', () => {
    expect(at(step, 'task').required).toEqual(expect.arrayContaining(['prompt', 'expect', 'solution']));
  });
  it('absent takes no count (socket does)', () => {
    expect(Object.keys(at(step, 'expect', 'items', 'absent').properties)).not.toContain('count');
    expect(Object.keys(at(step, 'expect', 'items', 'socket').properties)).toContain('count');
    expect(Object.keys(at(step, 'task', 'expect', 'items', 'absent').properties)).not.toContain('count');
  });
});

describe('without Docker', () => {
  const dir = tempDir('tcplab-from-docs-');
  const labFile = join(dir, 'my-lab.yaml');
  writeFileSync(labFile, base);
  mkdirSync(join(dir, 'my-lab.mutants'));
  const sub = (answers: string) => `student: alice\nlab: my-lab\nanswers:\n  close-first:\n${answers}`;

  it('lab validate checks a mutant as a submission, against the lab beside its folder', () => {
    const good = join(dir, 'my-lab.mutants', 'server-closes.yaml');
    writeFileSync(good, sub('    - server: echo hi\n      exit: 0\n'));
    const bad = join(dir, 'my-lab.mutants', 'typo.yaml');
    writeFileSync(bad, sub('    - client: echo hi\n      exitt: 0\n'));
    const wrongStep = join(dir, 'my-lab.mutants', 'wrong-step.yaml');
    writeFileSync(wrongStep, 'student: alice\nlab: my-lab\nanswers:\n  nope:\n    - client: echo hi\n');
    const ok = lab(['validate', good]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/ok .*server-closes\.yaml \(a submission for .*my-lab\.yaml\)/);
    const r = lab(['validate', bad, wrongStep]);
    expect(r.status).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/typo\.yaml:\d+:\d+: .*unknown key 'exitt'/);
    expect(r.stdout + r.stderr).toMatch(/wrong-step\.yaml:\d+:\d+: .*nope/);
    expect(r.stdout + r.stderr).not.toMatch(/id: missing|unknown template/);
  });

  it('lab validate checks a submission elsewhere against the lab file given with it, and says so when none is', () => {
    const f = join(dir, 'stray.yaml');
    writeFileSync(f, sub('    - client: echo hi\n      exit: 0\n'));
    const alone = lab(['validate', f]);
    expect(alone.status).toBe(2);
    expect(alone.stdout + alone.stderr).toMatch(
      /stray\.yaml:1:1: lab: a submission, for a lab that cannot be loaded: .*give its lab file in the same command/,
    );
    // A path where the lab's number or slug belongs is not followed: a hand-in must not make the grader read a file.
    const byPath = join(dir, 'by-path.yaml');
    writeFileSync(byPath, `student: alice\nlab: ${labFile}\nanswers: {}\n`);
    const p = lab(['validate', byPath]);
    expect(p.status).toBe(2);
    expect(p.stdout + p.stderr).toMatch(/by-path\.yaml:1:1: lab: a submission names its lab by number or slug/);
    const beside = lab(['validate', labFile, f]);
    expect(beside.status, beside.stdout + beside.stderr).toBe(0);
    expect(beside.stdout).toMatch(/ok .*stray\.yaml \(a submission for .*my-lab\.yaml\)/);
  });

  it('lab validate reads a hostile lab file once, even with its mutants beside it, and refuses it', () => {
    const deep = tempDir('tcplab-from-docs-deep-');
    writeFileSync(join(deep, 'deep.yaml'), `a: ${'['.repeat(60000)}${']'.repeat(60000)}\n`);
    mkdirSync(join(deep, 'deep.mutants'));
    for (const m of ['m1', 'm2']) writeFileSync(join(deep, 'deep.mutants', `${m}.yaml`), 'student: a\nlab: 1\nanswers: {}\n');
    const r = lab(['validate', join(deep, 'deep.yaml'), join(deep, 'deep.mutants', 'm1.yaml'), join(deep, 'deep.mutants', 'm2.yaml')]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stdout).toMatch(/deep\.yaml:1:\d+: nested too deeply/);
    expect(r.stdout.match(/a submission for .*deep\.yaml, which has problems/g)).toHaveLength(2);
  });

  it("lab plan --student fills in that student's variants, as grading will", () => {
    const port = variantValues(parseLab(base), 'alice')['variant.port']!;
    const r = lab(['plan', labFile, '--student', 'alice']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`variants of student alice: {{variant.port}} = ${port}`);
    expect(r.stdout).toContain(`nc -l ${port}`);
    expect(r.stdout).not.toContain('{{variant.port}} &');
    const json = JSON.parse(lab(['plan', labFile, '--student', 'alice', '--json']).stdout) as { variants: Record<string, string> };
    expect(json.variants).toEqual({ 'variant.port': port });
    const bad = lab(['plan', labFile, '--student', 'a b']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--student takes a student id/);
  });
});

describe('a value with a colon in it', () => {
  it('gets a hint to quote it, with its line, in a lab file and in a submission', () => {
    const summary = base.replace(/^summary: .*$/m, 'summary: Watch it: the state');
    expect(summary).not.toBe(base);
    const [p] = validateLabText(summary).problems;
    expect(p).toMatchObject({ line: summary.split('\n').findIndex((l) => l.startsWith('summary:')) + 1 });
    expect(p!.message).toMatch(/a value with ': ' \(a colon and a space\) in it must be quoted/);
    // Quoted, it is a lab again.
    expect(messages(base.replace(/^summary: .*$/m, 'summary: "Watch it: the state"'))).toEqual([]);
    // A submission's command: `echo a: b` unquoted.
    const sub = validateSubmissionText('student: alice\nlab: "1"\nanswers:\n  task:\n    - client: echo a: b\n', parseLab(base));
    expect(sub).toMatchObject({ ok: false, problems: [{ line: 5, message: expect.stringMatching(/must be quoted/) }] });
  });
});
