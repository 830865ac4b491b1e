import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseEndpoint, parseSs, parseTimerValue } from '../../src/observe/ss.js';
import { parseIptablesSave, ruleMatches } from '../../src/observe/iptables.js';

// Fixtures captured from the lab image (iproute2 6.1) in real containers: see test/fixtures/README.md.
const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');

describe('parseSs on captures from the lab image', () => {
  it("maps ss state names to the article's names and drops Docker's DNS listener", () => {
    const client = parseSs(fixture('ss/client-mixed.out'));
    expect(client.map((s) => s.state)).toEqual(['SYN_SENT', 'ESTABLISHED', 'TIME_WAIT', 'SYN_SENT']);
    expect(client.some((s) => s.local.host === '127.0.0.11')).toBe(false);
    const server = parseSs(fixture('ss/server-mixed.out'));
    expect(server.map((s) => `${s.state} ${s.local.host}:${s.local.port}`)).toEqual([
      'LISTEN *:5555',
      'LISTEN *:5556',
      'ESTABLISHED 198.18.250.10:5555',
      'SYN_RECV 198.18.250.10:5556',
    ]);
    expect(server[3]!.peer).toEqual({ host: '198.18.250.11', port: 51852 });
  });

  it('reads the timers', () => {
    const client = parseSs(fixture('ss/client-mixed.out'));
    expect(client[0]!.timer).toEqual({ name: 'on', ms: 216, retransmits: 1 });
    expect(client[2]!.timer).toEqual({ name: 'timewait', ms: 58_000, retransmits: 0 });
    const later = parseSs(fixture('ss/client-closing.out'));
    expect(later[0]!.timer).toEqual({ name: 'on', ms: 2456, retransmits: 6 });
  });

  it('reads the passive and active sides of a close', () => {
    expect(parseSs(fixture('ss/client-closing.out')).map((s) => s.state)).toEqual(['SYN_SENT', 'CLOSE_WAIT', 'TIME_WAIT', 'SYN_SENT']);
    expect(parseSs(fixture('ss/server-closing.out')).map((s) => s.state)).toEqual(['LISTEN', 'FIN_WAIT_2']);
  });

  it('accepts the header line of plain ss -tan', () => {
    expect(parseSs(fixture('ss/client-header.out'))).toHaveLength(4);
  });

  it('rejects output it does not understand instead of guessing', () => {
    expect(() => parseSs('BOGUS 0 0 1.2.3.4:1 5.6.7.8:2')).toThrow(/unexpected ss line/);
  });
});

describe('ss value formats (iproute2 print_ms_timer)', () => {
  it.each([
    ['216ms', 216],
    ['1.692ms', 1692],
    ['58sec', 58_000],
    ['1min', 60_000],
    ['1min30sec', 90_000],
    ['9.050ms', 9050],
  ])('%s is %d ms', (text, ms) => expect(parseTimerValue(text)).toBe(ms));

  it.each([
    ['0.0.0.0:5555', { host: '*', port: 5555 }],
    ['*:5555', { host: '*', port: 5555 }],
    ['[::]:22', { host: '*', port: 22 }],
    ['[::ffff:198.18.0.3]:5555', { host: '198.18.0.3', port: 5555 }],
    ['[fe80::1]:80', { host: 'fe80::1', port: 80 }],
    ['0.0.0.0%lo:53', { host: '*', port: 53 }],
    ['198.18.0.2:*', { host: '198.18.0.2', port: null }],
  ])('endpoint %s', (text, e) => expect(parseEndpoint(text)).toEqual(e));
});

describe('iptables-save -c', () => {
  const rules = parseIptablesSave(fixture('iptables-save-server.out'));
  it('reads tables, chains and counters', () => {
    const drop = rules.find((r) => r.table === 'filter' && r.chain === 'OUTPUT')!;
    expect(drop.packets).toBe(3);
    expect(drop.bytes).toBe(180);
    expect(rules.filter((r) => r.table === 'nat')).toHaveLength(6);
  });
  it('matches a rule by the words a lab author writes', () => {
    const drop = rules.find((r) => r.table === 'filter')!;
    expect(ruleMatches(drop, ['--sport 5556', '-j DROP'])).toBe(true);
    expect(ruleMatches(drop, ['--sport 5555'])).toBe(false);
    expect(ruleMatches(drop, ['-j ACCEPT'])).toBe(false);
  });
});
