import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { validateLabText } from '../../src/lab/load.js';
import { catalogue, observableStates, resolveLab } from '../../src/lab/catalogue.js';
import { labJsonSchemaText } from '../../src/lab/json-schema.js';
import { oneStepLab } from '../helpers/lab-text.js';

const minimal = oneStepLab(
  '      - on: server\n        socket: { state: LISTEN, local: "*:5555" }',
  '      - { on: server, run: [nc, -l, "5555"], name: srv, background: true }',
);

const problems = (text: string) => validateLabText(text).problems;

describe('lab files', () => {
  it('accepts a minimal lab', () => {
    expect(problems(minimal)).toEqual([]);
  });

  it('reports an unknown key at its own line', () => {
    const p = problems(minimal.replace('    title: One\n', '    title: One\n    colour: blue\n'));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ line: 9, path: 'steps[0]', message: "unknown key 'colour'" });
  });

  it('refuses a port range that runs downwards', () => {
    const p = problems(minimal.replace('local: "*:5555"', 'local: "*:5555-5554"'));
    expect(p).toEqual([
      expect.objectContaining({ path: 'steps[0].expect[0].socket.local', message: expect.stringMatching(/must run upwards/) }),
    ]);
  });

  it('refuses a sliding window too short to see anything (a count of none in it would always hold)', () => {
    const segments = (last: string) =>
      problems(minimal.replace('socket: { state: LISTEN, local: "*:5555" }', `segments: { flags: SYN, last: ${last}, count: 0 }`));
    expect(segments('500ms')).toEqual([
      expect.objectContaining({ path: 'steps[0].expect[0].segments.last', message: expect.stringMatching(/too short to see anything/) }),
    ]);
    expect(segments('3s')).toEqual([]);
  });

  it('says why text with ": " in it is not text, and how to write it', () => {
    // A list item `- Note: ...` is a mapping of one key, where the schema wants a string.
    const p = problems(minimal.replace('intro: i\n', 'intro: i\nnotes:\n  - Note: netstat is ss here\n'));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ line: 7, path: 'notes[0]' });
    expect(p[0]!.message).toMatch(/read as a key and a value; quote it/);
  });

  it('reports every problem at once, each with its line', () => {
    const bad = minimal.replace('state: LISTEN', 'state: LISTENING').replace('on: server, run', 'on: router, run');
    const p = problems(bad);
    expect(p.map((x) => x.line).sort()).toEqual([11, 14]);
    expect(p.map((x) => x.message).join('\n')).toMatch(/must be one of client, server, firewall/);
    expect(p.map((x) => x.message).join('\n')).toMatch(/must be one of CLOSED, LISTEN/);
  });

  it('refuses a firewall in the direct topology', () => {
    const p = problems(minimal.replace('on: server, run', 'on: firewall, run'));
    expect(p[0]!.message).toMatch(/direct topology has no firewall/);
    expect(p[0]!.line).toBe(11);
  });

  it('refuses unknown templates, which is how a lab could aim at the host', () => {
    const p = problems(minimal.replace('"5555"]', '"5555", "{{host.ip}}"]'));
    expect(p[0]!.message).toMatch(/unknown template \{\{host.ip\}\}/);
  });

  it('refuses a stop of a command that was never started', () => {
    const p = problems(minimal.replace('    expect:\n', '      - { on: client, stop: nope }\n    expect:\n'));
    expect(p[0]!.message).toMatch(/no earlier command is named 'nope'/);
  });

  it('needs exactly one kind per expectation', () => {
    const p = problems(
      minimal.replace('socket: { state: LISTEN, local: "*:5555" }', 'socket: { state: LISTEN }\n        absent: { state: LISTEN }'),
    );
    expect(p[0]!.message).toMatch(/exactly one of socket, absent, iptables, command, segments/);
  });

  it('says YAML syntax errors with their line', () => {
    const p = problems('id: 1\nsteps: [\n');
    expect(p.length).toBeGreaterThan(0);
    expect(p[0]!.line).toBeGreaterThanOrEqual(2);
  });

  it('refuses YAML aliases (no billion laughs)', () => {
    const p = problems('a: &a [x, x]\nb: [*a, *a]\n');
    expect(p[0]!.message).toMatch(/alias/i);
  });

  it('refuses a predicted answer that is not a choice', () => {
    const p = problems(
      minimal.replace('    explain: e\n', '    explain: e\n    predict: { question: q, choices: [A, B], answer: C, why: w }\n'),
    );
    expect(p[0]!.message).toMatch(/answer must be one of the choices/);
  });

  // Mistakes an instructor writing a lab from the docs made (docs/authoring.md), each with a message that says
  // what to write instead.
  it('says a bare number is not a duration, and that arguments are quoted text', () => {
    const forTwo = problems(minimal.replace('local: "*:5555" }\n', 'local: "*:5555" }\n        for: 2\n'));
    expect(forTwo).toEqual([
      expect.objectContaining({ path: 'steps[0].expect[0].for', message: expect.stringMatching(/needs its unit: 2s/) }),
    ]);
    const bareArg = problems(minimal.replace('[nc, -l, "5555"]', '[nc, -l, 5555]'));
    expect(bareArg).toEqual([
      expect.objectContaining({ path: 'steps[0].run[0].run[2]', message: expect.stringMatching(/quote numbers \("5555"\)/) }),
    ]);
    const line = problems(minimal.replace('[nc, -l, "5555"]', 'nc -l 5555'));
    expect(line).toEqual([expect.objectContaining({ path: 'steps[0].run[0].run', message: expect.stringMatching(/argv list.*\[sh, -c/) })]);
  });

  it('says how many items a list may have', () => {
    const hints =
      '    task:\n      prompt: p\n      hints: [a, b, c, d, e, f]\n      solution: [{ on: client, run: ["true"] }]\n      expect: [{ on: server, socket: { state: LISTEN } }]\n';
    const p = problems(minimal.replace('    expect:\n', `${hints}    expect:\n`));
    expect(p).toEqual([expect.objectContaining({ path: 'steps[0].task.hints', message: 'at most 5 items in this list' })]);
    // A limit that says it in words of its own keeps them.
    const args = Array.from({ length: 200 }, (_, i) => `"a${i}"`).join(', ');
    expect(problems(minimal.replace('[nc, -l, "5555"]', `[${args}]`))).toEqual([
      expect.objectContaining({ path: 'steps[0].run[0].run', message: 'at most 128 arguments' }),
    ]);
  });

  it('refuses a near miss of a template, which would reach the machine as literal text', () => {
    for (const [written, name] of [
      ['{server.ip}', 'server.ip'],
      ['${client.ip}', 'client.ip'],
      ['{{server.ip}', 'server.ip'],
    ]) {
      const p = problems(minimal.replace('"5555"]', `"5555", "${written}"]`));
      expect(p).toEqual([
        expect.objectContaining({ message: `'${written}' is not a template: write {{${name}}}, with two braces on each side` }),
      ]);
    }
    // Shell and awk braces are not templates; spaces inside a template's braces are allowed.
    expect(problems(minimal.replace('"5555"]', `"5555", "awk '{print $1}'; echo \${HOME} {a,b}"]`))).toEqual([]);
    expect(problems(minimal.replace('"5555"]', '"5555", "{{ server.ip }}"]'))).toEqual([]);
  });

  it("refuses an interface a routed lab's machine does not have (a check on it would never see a segment)", () => {
    const routed = minimal.replace('intro: i\n', 'intro: i\ntopology: routed\n');
    const seg = (on: string, iface: string) =>
      problems(
        routed.replace(
          '- on: server\n        socket: { state: LISTEN, local: "*:5555" }',
          `- on: ${on}\n        segments: { iface: ${iface}, flags: FIN, count: 0 }`,
        ),
      );
    expect(seg('firewall', 'front')).toEqual([]);
    expect(seg('firewall', 'back')).toEqual([]);
    expect(seg('client', 'front')).toEqual([]);
    expect(seg('server', 'back')).toEqual([]);
    expect(seg('firewall', 'eth0')).toEqual([
      expect.objectContaining({
        message: "in a routed lab the firewall has the interfaces front and back: on 'eth0' it would never see a segment",
      }),
    ]);
    expect(seg('client', 'back')).toEqual([
      expect.objectContaining({ message: "in a routed lab the client has one interface, front: on 'back' it would never see a segment" }),
    ]);
  });

  it('refuses a timeout of nothing', () => {
    const p = problems(minimal.replace('[nc, -l, "5555"], name: srv, background: true }', '["true"], timeout: 0s }'));
    expect(p).toEqual([
      expect.objectContaining({ path: 'steps[0].run[0].timeout', message: expect.stringMatching(/kills the command before it runs/) }),
    ]);
  });

  it("refuses a later stop or check of a command only a task's solution starts (every submission would fail it)", () => {
    const task = (after: string) =>
      problems(
        minimal +
          `  - id: two
    title: Two
    explain: e
    task:
      prompt: p
      solution: [{ on: client, run: [nc, "{{server.ip}}", "5555"], name: cli, background: true }]
      expect: [{ on: client, socket: { state: ESTABLISHED } }]
  - id: three
    title: Three
    explain: e
${after}`,
      );
    expect(task('    run: [{ on: client, stop: cli }]\n    expect: [{ on: client, socket: { state: TIME_WAIT } }]\n')).toEqual([
      expect.objectContaining({ path: 'steps[2].run[0].stop', message: expect.stringMatching(/started only by a task's solution/) }),
    ]);
    expect(task('    expect: [{ on: client, command: { name: cli, running: true } }]\n')).toEqual([
      expect.objectContaining({ path: 'steps[2].expect[0].command.name', message: expect.stringMatching(/fails every submission/) }),
    ]);
    // The lab's own commands (a step's run, a probe) may be stopped and checked later.
    expect(task('    run: [{ on: server, stop: srv }]\n    expect: [{ on: server, command: { name: srv, running: false } }]\n')).toEqual(
      [],
    );
  });
});

describe('the shipped labs', () => {
  it('all load, and their first line points editors at the schema', () => {
    for (const { file } of catalogue()) {
      expect(readFileSync(file, 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=../schema/lab.schema.json');
    }
  });

  it('are found by number, slug and path', () => {
    expect(resolveLab('2').lab.slug).toBe('incomplete-handshake');
    expect(resolveLab('basic-states').lab.id).toBe(1);
    expect(() => resolveLab('99')).toThrow(/no lab 99/);
  });

  it("make the article's Exercise 1 and 2 states observable", () => {
    expect(observableStates(resolveLab('1').lab)).toEqual(['CLOSED', 'LISTEN', 'ESTABLISHED', 'TIME_WAIT']);
    expect(observableStates(resolveLab('2').lab)).toEqual(expect.arrayContaining(['SYN_SENT', 'SYN_RECV', 'LISTEN']));
  });
});

describe('JSON Schema', () => {
  it('committed schema/lab.schema.json is what the zod schema generates (run npm run schema)', () => {
    const committed = readFileSync(new URL('../../schema/lab.schema.json', import.meta.url), 'utf8');
    expect(committed).toBe(labJsonSchemaText());
  });
});
