import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decide, describeExpectation, evaluate, summarize, toCheck, type NodeSnapshot, type Sample } from '../../src/grade/grade.js';
import type { Expectation, NodeName } from '../../src/lab/schema.js';
import { parseSs } from '../../src/observe/ss.js';
import { parseIptablesSave } from '../../src/observe/iptables.js';
import { renderJunit } from '../../src/report/junit.js';
import { quietOf } from '../../src/engine/instance.js';

const vars = { 'client.ip': '198.18.250.11', 'server.ip': '198.18.250.10' };
const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');
const server: NodeSnapshot = {
  node: 'server',
  at: 0,
  sockets: parseSs(fixture('ss/server-mixed.out')),
  counters: parseIptablesSave(fixture('iptables-save-server.out')),
};
const client: NodeSnapshot = { node: 'client', at: 0, sockets: parseSs(fixture('ss/client-mixed.out')) };

describe('evaluate one snapshot', () => {
  it('finds SYN_RECV on the server with templated addresses', () => {
    const e: Expectation = { on: 'server', socket: { state: 'SYN_RECV', local: '{{server.ip}}:5556', peer: '{{client.ip}}:*' } };
    const r = evaluate(e, server, vars);
    expect(r.holds).toBe(true);
    expect(r.seen).toEqual([expect.stringMatching(/^SYN-RECV .*198\.18\.250\.10:5556/)]);
  });

  it('does not find a state that is not there', () => {
    expect(evaluate({ on: 'server', socket: { state: 'SYN_RECV', local: '*:5555' } }, server, vars).holds).toBe(false);
    expect(evaluate({ on: 'client', socket: { state: 'SYN_SENT', peer: '{{server.ip}}:5555' } }, client, vars).holds).toBe(false);
  });

  it("matches a port range, both ends included (a client's ephemeral ports)", () => {
    const tw = (ports: number[]): NodeSnapshot => ({
      node: 'client',
      at: 0,
      sockets: parseSs(ports.map((p) => `TIME-WAIT 0 0 198.18.250.11:${p} 198.18.250.10:5557 timer:(timewait,50sec,0)`).join('\n')),
    });
    const e: Expectation = { on: 'client', socket: { state: 'TIME_WAIT', local: '{{client.ip}}:40000-40049', count: 2 } };
    expect(evaluate(e, tw([40000, 40049]), vars).holds).toBe(true);
    // Ports outside the range (bound by hand) are not the ephemeral ports the task is about.
    expect(evaluate(e, tw([39999, 40050]), vars).holds).toBe(false);
    expect(evaluate(e, tw([40000, 20000]), vars).holds).toBe(false);
  });

  it('counts matching sockets', () => {
    expect(evaluate({ on: 'client', socket: { state: 'SYN_SENT', count: 2 } }, client, vars).holds).toBe(true);
    expect(evaluate({ on: 'client', socket: { state: 'SYN_SENT', count: { min: 3 } } }, client, vars).holds).toBe(false);
  });

  it('a socket that is not there is reported with what is there on the same port (the LISTEN socket)', () => {
    const r = evaluate({ on: 'server', socket: { state: 'SYN_RECV', local: '*:5555' } }, server, vars);
    expect(r.holds).toBe(false);
    expect(r.seen).toEqual([
      'no SYN_RECV socket, local *:5555; there is on port 5555:',
      '  LISTEN *:5555 -> *:*',
      '  ESTABLISHED 198.18.250.10:5555 -> 198.18.250.11:36802',
    ]);
  });

  it('with nothing on the port, every socket of the machine is shown; with nothing at all, that', () => {
    const r = evaluate({ on: 'client', socket: { state: 'SYN_SENT', peer: '{{server.ip}}:7000' } }, client, vars);
    expect(r.seen[0]).toBe('no SYN_SENT socket, peer 198.18.250.10:7000; there is:');
    expect(r.seen).toHaveLength(5);
    const empty = evaluate({ on: 'client', socket: { state: 'SYN_SENT' } }, { ...client, sockets: [] }, vars);
    expect(empty.seen).toEqual(['no SYN_SENT socket; no TCP sockets at all']);
  });

  it('a socket whose state and addresses match but a field does not: says which field, and what the socket had', () => {
    const peer = '{{server.ip}}:5555';
    const timer = evaluate({ on: 'client', socket: { state: 'ESTABLISHED', peer, timer: 'on' } }, client, vars);
    expect(timer.holds).toBe(false);
    expect(timer.seen).toEqual([
      'no ESTABLISHED socket, peer 198.18.250.10:5555, timer on; the socket with that state and those addresses:',
      '  ESTABLISHED 198.18.250.11:36802 -> 198.18.250.10:5555: timer off, expected on',
    ]);
    const queues = evaluate(
      { on: 'client', socket: { state: 'ESTABLISHED', peer, sendQ: { min: 1 }, recvQ: 0, retransmits: { min: 2, max: 5 } } },
      client,
      vars,
    );
    expect(queues.seen[1]).toBe(
      '  ESTABLISHED 198.18.250.11:36802 -> 198.18.250.10:5555: sendQ 0, expected at least 1; retransmits 0, expected 2 to 5',
    );
    const total = evaluate(
      { on: 'client', socket: { state: 'SYN_SENT', peer: '{{server.ip}}:5556', retransTotal: { min: 1 } } },
      client,
      vars,
    );
    expect(total.seen[1]).toMatch(/: retransTotal not known \(.*ss -i\), expected at least 1$/);
    // The state does not match: what is on the port, as before.
    const other = evaluate({ on: 'client', socket: { state: 'TIME_WAIT', peer, timer: 'timewait' } }, client, vars);
    expect(other.seen[0]).toBe('no TIME_WAIT socket, peer 198.18.250.10:5555, timer timewait; there is on port 5555:');
  });

  it('absent holds only when nothing matches, and shows what does', () => {
    expect(evaluate({ on: 'server', absent: { state: 'TIME_WAIT' } }, server, vars).holds).toBe(true);
    const r = evaluate({ on: 'server', absent: { local: '*:5556' } }, server, vars);
    expect(r.holds).toBe(false);
    expect(r.seen).toHaveLength(2);
  });

  it('reads iptables counters by the words of the rule', () => {
    expect(
      evaluate({ on: 'server', iptables: { chain: 'OUTPUT', rule: ['--sport 5556', '-j DROP'], packets: { min: 2 } } }, server, vars).holds,
    ).toBe(true);
    expect(evaluate({ on: 'server', iptables: { chain: 'OUTPUT', rule: ['--sport 5556'], packets: { min: 4 } } }, server, vars).holds).toBe(
      false,
    );
    const missing = evaluate({ on: 'server', iptables: { chain: 'INPUT', rule: ['-j DROP'], packets: 0 } }, server, vars);
    expect(missing).toEqual({ holds: false, seen: ['no rule in filter/INPUT matches -j DROP', 'filter/INPUT has no rules'] });
  });

  it("checks a command's exit status and output", () => {
    const snap: NodeSnapshot = {
      node: 'client',
      at: 0,
      sockets: [],
      commands: { c: { running: false, exit: 1, output: 'nc: connect to 198.18.0.3 port 5555 (tcp) failed: Connection refused' } },
    };
    expect(evaluate({ on: 'client', command: { name: 'c', exit: 1, output: 'Connection refused' } }, snap, vars).holds).toBe(true);
    expect(evaluate({ on: 'client', command: { name: 'c', exit: 0 } }, snap, vars).holds).toBe(false);
    expect(evaluate({ on: 'client', command: { name: 'c', output: 'timed out' } }, snap, vars).holds).toBe(false);
    expect(evaluate({ on: 'client', command: { name: 'other', running: true } }, snap, vars).holds).toBe(false);
  });
});

const sample = (at: number, holds: boolean): Sample => ({ at, evaluation: { holds, seen: [] } });

describe('decide over time', () => {
  const e: Expectation = { on: 'client', socket: { state: 'SYN_SENT' }, within: '1s' };
  it('passes at the first sample that holds', () => {
    const d = decide(e, [sample(100, false), sample(200, true)], 0, 200);
    expect(d).toMatchObject({ done: true, passed: true, at: 200 });
  });
  it('keeps waiting before the deadline', () => {
    expect(decide(e, [sample(100, false)], 0, 500)).toEqual({ done: false });
  });
  it('fails once the deadline has passed', () => {
    expect(decide(e, [sample(900, false), sample(1100, false)], 0, 1100)).toMatchObject({ done: true, passed: false });
  });
  it('does not count a first hold after the deadline', () => {
    expect(decide(e, [sample(900, false), sample(1100, true)], 0, 1100)).toMatchObject({ done: true, passed: false });
  });
  it('with for: needs an unbroken run of that length', () => {
    const h: Expectation = { ...e, for: '500ms' };
    expect(decide(h, [sample(100, true), sample(400, true)], 0, 400)).toEqual({ done: false });
    expect(decide(h, [sample(100, true), sample(400, false), sample(700, true)], 0, 700)).toEqual({ done: false });
    expect(decide(h, [sample(100, true), sample(400, false), sample(700, true), sample(1250, true)], 0, 1250)).toMatchObject({
      done: true,
      passed: true,
      at: 1250,
    });
    // A run that started before the deadline may finish after it; a break after the deadline fails.
    expect(decide(h, [sample(900, true), sample(1200, false)], 0, 1200)).toMatchObject({ done: true, passed: false });
  });
});

describe('a state that must last, judged only while the lab could act', () => {
  // Lab 2's null answer on a starved host: the probe's nc on the client has not had the CPU to connect, so "no
  // SYN_RECV on the server for 1s" holds at every look. It must not be met while that nc waits to run.
  const e: Expectation = { on: 'server', absent: { state: ['SYN_RECV'], local: '*:5555' }, for: '1s', within: '5s' };
  const holding = (from: number, to: number, step = 100) =>
    Array.from({ length: (to - from) / step + 1 }, (_, k) => sample(from + k * step, true));
  const looks = (node: NodeName, list: [number, number][]) => [node, list.map(([at, runnable]) => ({ at, runnable }))] as const;

  it('is not met while a machine says its commands wait for a CPU, and says why', () => {
    const readings = new Map([
      looks('server', [
        [0, 0],
        [2000, 0],
        [6000, 0],
      ]),
      looks('client', [
        [0, 1],
        [1000, 1],
        [2500, 1],
        [4000, 1],
        [6000, 1],
      ]),
    ]);
    const d = decide(e, holding(0, 6000), 0, 6000, quietOf(['server', 'client'], readings));
    expect(d).toMatchObject({ done: true, passed: false });
    expect((d as { sample: Sample }).sample.evaluation.seen.at(-1)).toMatch(
      /^can't tell whether it lasted: 1 of the lab's own processes on client was runnable/,
    );
    // Without the question, the same samples are met: the hole this closes.
    expect(decide(e, holding(0, 6000), 0, 6000)).toMatchObject({ done: true, passed: true });
  });

  it('begins again after the last look that saw them waiting, and is met once a quiet window lasts', () => {
    const readings = new Map([
      looks('server', [
        [0, 0],
        [3000, 0],
      ]),
      looks('client', [
        [0, 1],
        [700, 1],
        [900, 0],
        [1500, 0],
        [2100, 0],
      ]),
    ]);
    const quiet = quietOf(['server', 'client'], readings);
    // From 900 on (the first sample after the look at 700), a second: met at 1900, once the client has been
    // looked at again after it (2100).
    expect(decide(e, holding(0, 2000), 0, 2000, quiet)).toMatchObject({ done: true, passed: true, at: 1900 });
  });

  it('waits while a machine has not been looked at since the window ended', () => {
    const readings = new Map([
      looks('server', [
        [0, 0],
        [1200, 0],
      ]),
      looks('client', [
        [0, 0],
        [600, 0],
      ]),
    ]);
    expect(decide(e, holding(0, 1200), 0, 1200, quietOf(['server', 'client'], readings))).toEqual({ done: false });
    readings.get('client')!.push({ at: 1300, runnable: 0 });
    expect(decide(e, holding(0, 1200), 0, 1200, quietOf(['server', 'client'], readings))).toMatchObject({
      done: true,
      passed: true,
      at: 1000,
    });
  });

  it('does not ask for a state seen once, nor let a wait begin after the deadline', () => {
    const once: Expectation = { on: 'server', socket: { state: 'LISTEN' }, within: '1s' };
    const busy = new Map([
      looks('server', [
        [0, 1],
        [500, 1],
      ]),
    ]);
    expect(decide(once, [sample(100, true)], 0, 100, quietOf(['server'], busy))).toMatchObject({ done: true, passed: true });
    // Waiting until after the deadline (5 s): no window may begin there.
    const late = new Map([
      looks('server', [
        [0, 1],
        [5100, 0],
        [7000, 0],
      ]),
    ]);
    expect(decide(e, holding(0, 7000), 0, 7000, quietOf(['server'], late))).toMatchObject({ done: true, passed: false });
  });
});

describe('reports', () => {
  it('describes an expectation with its templates filled in', () => {
    expect(describeExpectation({ on: 'server', socket: { state: 'SYN_RECV', local: '{{server.ip}}:5555' }, for: '1s' }, vars)).toBe(
      'server: socket SYN_RECV, local 198.18.250.10:5555 for 1s (within 5s)',
    );
  });

  it('a lab passes only when every check passed, and JUnit shows each check', () => {
    const e: Expectation = { on: 'client', socket: { state: 'SYN_SENT' } };
    const ok = toCheck('s1', e, vars, { done: true, passed: true, at: 10, sample: sample(10, true) }, 0);
    const bad = toCheck('s2', e, vars, { done: true, passed: false, at: 5000, sample: sample(5000, false) }, 0);
    const lab = { id: 2, slug: 'x', title: 'X' };
    expect(summarize(lab, 'i', [{ id: 's1', title: '', checks: [ok], passed: true }], 1).passed).toBe(true);
    const failed = summarize(
      lab,
      'i',
      [
        { id: 's1', title: '', checks: [ok], passed: true },
        { id: 's2', title: '', checks: [bad], passed: false },
      ],
      1,
    );
    expect(failed.passed).toBe(false);
    expect(failed.score).toEqual({ passed: 1, total: 2 });
    expect(summarize(lab, 'i', [], 1).passed).toBe(false);
    const xml = renderJunit([failed]);
    expect(xml.match(/<testcase /g)).toHaveLength(2);
    expect(xml.match(/<failure /g)).toHaveLength(1);
  });
});
