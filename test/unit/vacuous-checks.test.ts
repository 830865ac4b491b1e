// Checks that cannot tell answers apart are refused when a lab is loaded, each at its own line: an empty rule
// word (found in every rule), a command check that asks nothing, an output pattern that matches any output, a
// count every number meets. Templates in an output pattern are literal text when graded.
import { describe, expect, it } from 'vitest';
import { validateLabText } from '../../src/lab/load.js';
import { evaluate, type NodeSnapshot } from '../../src/grade/grade.js';
import { oneStepLab } from '../helpers/lab-text.js';

const lab = (expectation: string) =>
  oneStepLab(`      - ${expectation}`, '      - { on: client, run: [nc, -v, "{{server.ip}}", "5555"], name: probe, background: true }');
const problems = (expectation: string) => validateLabText(lab(expectation)).problems;

describe('vacuous checks are refused', () => {
  it('a check that asks something loads (the control case)', () => {
    for (const e of [
      '{ on: client, command: { name: probe, running: true } }',
      '{ on: client, command: { name: probe, output: "refused" } }',
      '{ on: client, iptables: { chain: OUTPUT, rule: ["-j DROP"], packets: { min: 1 } } }',
      '{ on: client, socket: { state: SYN_SENT, count: { min: 1 } } }',
      '{ on: client, segments: { flags: SYN, count: 0 } }',
    ])
      expect(problems(e), e).toEqual([]);
  });

  it('an empty rule word, or one of spaces', () => {
    for (const word of ['""', '"  "']) {
      const p = problems(`{ on: client, iptables: { chain: OUTPUT, rule: ["-j DROP", ${word}], packets: 0 } }`);
      expect(p).toHaveLength(1);
      expect(p[0]).toMatchObject({ line: 13, path: 'steps[0].expect[0].iptables.rule[1]' });
      expect(p[0]!.message).toMatch(/empty rule word matches every rule/);
    }
  });

  it('a command check with a name and nothing else', () => {
    const p = problems('{ on: client, command: { name: probe } }');
    expect(p).toHaveLength(1);
    expect(p[0]!.message).toMatch(/must ask something: running, exit or output/);
    expect(p[0]!.line).toBe(13);
  });

  it('running: true with an exit status, which never hold together', () => {
    expect(problems('{ on: client, command: { name: probe, running: true, exit: 0 } }')[0]!.message).toMatch(/never hold together/);
  });

  it('an output pattern that matches any output, the empty one first', () => {
    for (const pattern of ['""', '".*"', '"^"', '"x?"', '"(?:)"', '"{{server.ip}}|"']) {
      const p = problems(`{ on: client, command: { name: probe, output: ${pattern} } }`);
      expect(p, pattern).toHaveLength(1);
      expect(p[0]!.message).toMatch(/matches any output/);
    }
    expect(problems('{ on: client, command: { name: probe, output: "(" } }')[0]!.message).toMatch(/not a valid regular expression/);
  });

  it('a count every number meets', () => {
    expect(problems('{ on: client, socket: { state: SYN_SENT, count: {} } }')[0]!.message).toMatch(/holds with no socket at all/);
    expect(problems('{ on: client, socket: { state: SYN_SENT, count: { min: 0 } } }')[0]!.message).toMatch(/holds with no socket/);
    expect(problems('{ on: client, segments: { flags: SYN, count: { min: 0 } } }')[0]!.message).toMatch(/holds with no segment/);
  });
});

describe('templates in an output pattern are literal text', () => {
  const vars = { 'server.ip': '198.18.4.3' };
  const snap = (output: string): NodeSnapshot => ({
    node: 'client',
    at: 0,
    sockets: [],
    commands: { probe: { running: false, exit: 0, output } },
  });
  const holds = (pattern: string, output: string) =>
    evaluate({ on: 'client', command: { name: 'probe', output: pattern } }, snap(output), vars).holds;

  it("an address's dots are dots: 198.18.4.3 does not match 198.18.413 or 198x18x4x3", () => {
    expect(holds('to {{server.ip}} port', 'Connection to 198.18.4.3 port 5555 succeeded')).toBe(true);
    expect(holds('to {{server.ip}} port', 'Connection to 198.18.413 port 5555 succeeded')).toBe(false);
    expect(holds('to {{server.ip}} port', 'Connection to 198x18x4x3 port 5555 succeeded')).toBe(false);
  });

  it('the pattern around a template is still a pattern', () => {
    expect(holds('^Connection to {{server.ip}} port \\d+', 'Connection to 198.18.4.3 port 5555 succeeded')).toBe(true);
    expect(holds('^Connection to {{server.ip}} port \\d+', 'Connection to 198.18.4.3 port x')).toBe(false);
  });
});

describe('a counter check over several matching rules', () => {
  it('adds their counters and says that several matched', () => {
    const counters = [
      {
        table: 'filter',
        chain: 'OUTPUT',
        packets: 2,
        bytes: 120,
        spec: '-p tcp --dport 5555 -j DROP',
        line: '[2:120] -A OUTPUT -p tcp --dport 5555 -j DROP',
      },
      {
        table: 'filter',
        chain: 'OUTPUT',
        packets: 3,
        bytes: 180,
        spec: '-d 198.18.4.3/32 -j DROP',
        line: '[3:180] -A OUTPUT -d 198.18.4.3/32 -j DROP',
      },
      { table: 'filter', chain: 'OUTPUT', packets: 7, bytes: 420, spec: '-p udp -j ACCEPT', line: '[7:420] -A OUTPUT -p udp -j ACCEPT' },
    ];
    const snap: NodeSnapshot = { node: 'client', at: 0, sockets: [], counters };
    const e = (packets: number | { min: number }) => ({ on: 'client' as const, iptables: { chain: 'OUTPUT', rule: ['-j DROP'], packets } });
    const five = evaluate(e(5), snap, {});
    expect(five.holds).toBe(true);
    expect(five.seen.at(-1)).toBe('2 rules match: 2 + 3 = 5 packets');
    expect(evaluate(e(3), snap, {}).holds).toBe(false);
    // One rule: its own counter, and no sum line.
    const one = evaluate({ on: 'client', iptables: { chain: 'OUTPUT', rule: ['--dport 5555'], packets: 2 } }, snap, {});
    expect(one).toEqual({ holds: true, seen: ['[2:120] -A OUTPUT -p tcp --dport 5555 -j DROP'] });
  });
});
