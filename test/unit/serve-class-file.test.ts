// lab serve's class file: validated like a lab file (every problem with file:line, unknown keys refused), the
// roster from a file or a list, the defaults `lab serve` alone uses, and the JSON Schema kept in step.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LabFileError } from '../../src/errors.js';
import { classJsonSchemaText, defaultClass, loadClassFile, parseClass, parseRoster } from '../../src/serve/class-file.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-class-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problems(text: string): string[] {
  try {
    parseClass(text, 'class.yaml');
  } catch (e) {
    if (e instanceof LabFileError)
      return e.message
        .split('\n')
        .slice(1)
        .map((l) => l.trim());
    throw e;
  }
  return [];
}

describe('class files', () => {
  it('read a full class: labs, a roster file, a join code, limits, state beside the file', () => {
    writeFileSync(join(dir, 'roster.txt'), 'id,name\nalice, Alice Liddell\n# a comment\n\nbob\n');
    const file = join(dir, 'class.yaml');
    writeFileSync(
      file,
      [
        '# yaml-language-server: $schema=../schema/class.schema.json',
        'title: Networks 101',
        'labs: [1, incomplete-handshake]',
        'join:',
        '  roster: roster.txt',
        '  code: ABCDEFGH',
        'limits: { runningLabs: 12, idle: 20m, idleWarning: 2m }',
        'state: ./st',
        'publicUrl: https://lab.example.edu/',
      ].join('\n'),
    );
    const c = loadClassFile(file);
    expect(c.title).toBe('Networks 101');
    expect(c.labs).toEqual([1, 'incomplete-handshake']);
    expect(c.roster).toEqual([
      { id: 'alice', name: 'Alice Liddell' },
      { id: 'bob', name: 'bob' },
    ]);
    expect(c.joinCode).toBe('ABCDEFGH');
    expect(c.limits).toEqual({ runningLabs: 12, idleMs: 20 * 60_000, idleWarningMs: 2 * 60_000, startsAtOnce: 6 });
    expect(c.stateDir).toBe(join(dir, 'st'));
    expect(c.publicUrl).toBe('https://lab.example.edu');
  });

  it('report every problem with file:line, unknown keys included, in one run', () => {
    const found = problems(['title: x', 'labs: [0]', 'join:', '  code: abc', 'limits:', '  idle: 10 minutes', '  colour: red'].join('\n'));
    expect(found).toHaveLength(4);
    expect(found[0]).toMatch(/^class\.yaml:2:\d+: labs\[0\]/);
    expect(found.some((p) => /^class\.yaml:4:\d+: join\.code: 6 to 12/.test(p))).toBe(true);
    expect(found.some((p) => /^class\.yaml:6:\d+: limits\.idle: a duration/.test(p))).toBe(true);
    expect(found.some((p) => /^class\.yaml:7:\d+: limits: unknown key 'colour'/.test(p))).toBe(true);
  });

  it('refuse a class nobody could join, a warning longer than the idle time, a student twice, a bad roster line', () => {
    expect(problems('join: { code: false }')).toEqual([expect.stringMatching(/join: nobody could join/)]);
    expect(problems('limits: { idle: 5m, idleWarning: 5m }')).toEqual([expect.stringMatching(/limits\.idleWarning: must be shorter/)]);
    expect(problems('join: { roster: [a, b, a] }')).toEqual([expect.stringMatching(/student a is on the roster twice/)]);
    writeFileSync(join(dir, 'bad.txt'), 'alice\n../etc/passwd\n');
    expect(() => loadClassFile(writeClass('join: { roster: bad.txt }'))).toThrow(
      /line 2 of the roster: '\.\.\/etc\/passwd' is not a student id/,
    );
  });

  it('give a join code by default when there is no roster, none when there is one', () => {
    expect(parseClass('title: t').joinCode).toBe('generate');
    expect(parseClass('join: { roster: [a] }').joinCode).toBeUndefined();
    expect(parseClass('join: { roster: [a], code: true }').joinCode).toBe('generate');
    expect(defaultClass('/s')).toMatchObject({ joinCode: 'generate', roster: [], stateDir: '/s' });
  });

  it('parse a roster of ids, or ids and names as a two-column CSV writes them', () => {
    expect(parseRoster('student,name\n"carol","Carol, Jr"\n')).toEqual({ students: [{ id: 'carol', name: 'Carol, Jr' }] });
  });

  it('have a committed JSON Schema that matches the zod schema (npm run schema)', () => {
    const committed = readFileSync(new URL('../../schema/class.schema.json', import.meta.url), 'utf8');
    expect(committed).toBe(classJsonSchemaText());
  });
});

function writeClass(text: string): string {
  const f = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(f, text);
  return f;
}
