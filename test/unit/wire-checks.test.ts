// The expectation kinds on the wire (segments) and in the socket (send-q, timer, retransmissions), evaluated
// on what the real image recorded (test/fixtures/capture, from scripts/capture-fixtures.mjs).
import { describe, expect, it } from 'vitest';
import { describeExpectation, evaluate, type NodeSnapshot } from '../../src/grade/grade.js';
import type { Expectation, NodeName } from '../../src/lab/schema.js';
import { validateLabText } from '../../src/lab/load.js';
import { parseSs } from '../../src/observe/ss.js';
import { loadCaptureFixture, record } from '../helpers/capture-fixtures.js';
import { oneStepLab } from '../helpers/lab-text.js';

const direct = loadCaptureFixture('direct');
const rec = record(direct);
const vars = direct.vars;
const snap = (node: NodeName, filter: (at: number) => boolean = () => true): NodeSnapshot => ({
  node,
  at: 0,
  sockets: [],
  segments: rec.allSegments().filter((s) => s.node === node && filter(s.at)),
});

describe('segments expectations', () => {
  it('counts the SYNs from the client to the server, retransmissions included', () => {
    const e: Expectation = {
      on: 'server',
      segments: { from: '{{client.ip}}:*', to: '{{server.ip}}:5555', flags: 'SYN', without: 'ACK', count: { min: 3 } },
    };
    const r = evaluate(e, snap('server'), vars);
    expect(r.holds).toBe(true);
    expect(r.seen[0]).toMatch(/^\d+ segments:$/);
    expect(r.seen[1]).toMatch(/^\+0\.000s in eth0 .* > .*:5555 \[S\] seq \d+ win \d+ length 0$/);
    expect(describeExpectation(e, vars)).toBe(
      `server: at least 3 SYN segments without ACK from ${vars['client.ip']}:* to ${vars['server.ip']}:5555 on the wire within 5s`,
    );
    // The SYN|ACKs are not SYNs without ACK.
    const all = evaluate({ on: 'server', segments: { flags: 'SYN', from: '{{client.ip}}:*' } }, snap('server'), vars);
    const synOnly = evaluate(e, snap('server'), vars);
    expect(all.seen[0]).toBe(synOnly.seen[0]);
  });

  it('tells retransmissions from first sendings', () => {
    const first = evaluate(
      { on: 'client', segments: { flags: [SYN], without: [ACK], retransmission: false, dir: 'out', count: 1 } },
      snap('client'),
      vars,
    );
    expect(first.holds).toBe(true);
    const again = evaluate(
      { on: 'client', segments: { flags: [SYN], without: [ACK], retransmission: true, dir: 'out', count: { min: 2 } } },
      snap('client'),
      vars,
    );
    expect(again.holds).toBe(true);
    expect(again.seen.slice(1).every((l) => l.endsWith('(retransmission)'))).toBe(true);
  });

  it('tells segments by the TTL they arrived with', () => {
    const synsIn = rec.allSegments().filter((s) => s.node === 'server' && s.dir === 'in' && s.flags.join() === 'SYN');
    const ttl = synsIn[0]!.ttl;
    expect(ttl).toBeGreaterThan(1);
    const withTtl = (range: { min?: number; max?: number }): Expectation => ({
      on: 'server',
      segments: { flags: 'SYN', without: 'ACK', dir: 'in', ttl: range },
    });
    expect(evaluate(withTtl({ min: ttl }), snap('server'), vars).holds).toBe(true);
    expect(evaluate(withTtl({ min: ttl + 1 }), snap('server'), vars).holds).toBe(false);
    expect(evaluate(withTtl({ max: ttl - 1 }), snap('server'), vars).holds).toBe(false);
    expect(describeExpectation(withTtl({ min: 2 }), vars)).toContain('with TTL >= 2');
  });

  it('tells segments that carried IP options (a source route) from those that carried none', () => {
    const synsIn = rec.allSegments().filter((s) => s.node === 'server' && s.dir === 'in' && s.flags.join() === 'SYN');
    expect(synsIn.every((s) => s.ipOptions === 0)).toBe(true);
    const withOptions = (ipOptions: boolean): Expectation => ({
      on: 'server',
      segments: { flags: 'SYN', without: 'ACK', dir: 'in', ipOptions },
    });
    expect(evaluate(withOptions(false), snap('server'), vars).holds).toBe(true);
    expect(evaluate(withOptions(true), snap('server'), vars).holds).toBe(false);
    // The same SYNs as if sent with a loose source route (IP_OPTIONS on the client's socket).
    const routed: NodeSnapshot = { ...snap('server'), segments: snap('server').segments!.map((s) => ({ ...s, ipOptions: 8 })) };
    expect(evaluate(withOptions(false), routed, vars).holds).toBe(false);
    expect(evaluate(withOptions(true), routed, vars).holds).toBe(true);
    expect(describeExpectation(withOptions(false), vars)).toContain('at least 1 SYN segment without ACK with no IP options arriving');
    expect(describeExpectation(withOptions(true), vars)).toContain('with IP options');
  });

  it('a check not met only for how the segments travelled shows them, with what they had', () => {
    const synsIn = rec.allSegments().filter((s) => s.node === 'server' && s.dir === 'in' && s.flags.join() === 'SYN');
    const ttl = synsIn[0]!.ttl;
    const r = evaluate(
      { on: 'server', segments: { flags: 'SYN', without: 'ACK', dir: 'in', ttl: { min: ttl + 1 } } },
      snap('server'),
      vars,
    );
    expect(r.holds).toBe(false);
    expect(r.seen[0]).toBe(`${synsIn.length} otherwise matching, but not as asked:`);
    expect(r.seen[1]).toMatch(new RegExp(`\\[S\\] .*\\(TTL ${ttl}\\)$`));
    const opts = evaluate({ on: 'server', segments: { flags: 'SYN', without: 'ACK', dir: 'in', ipOptions: true } }, snap('server'), vars);
    expect(opts.seen[1]).toMatch(/\(no IP options\)$/);
    // Nothing near: nothing more to say.
    expect(evaluate({ on: 'server', segments: { flags: 'RST', ttl: { min: 2 } } }, snap('server'), vars).seen).toEqual([]);
  });

  it('"no SYN|ACK reaches the client" holds while the server drops them, and fails once one gets through', () => {
    const none: Expectation = { on: 'client', segments: { flags: 'SYN|ACK', dir: 'in', count: 0 } };
    const firstSynAck = rec.allSegments().find((s) => s.node === 'client' && s.dir === 'in' && s.flags.includes('SYN'))!;
    expect(
      evaluate(
        none,
        snap('client', (at) => at < firstSynAck.at),
        vars,
      ).holds,
    ).toBe(true);
    const after = evaluate(none, snap('client'), vars);
    expect(after.holds).toBe(false);
    expect(after.seen.join('\n')).toMatch(/\[S\.\]/);
  });

  it('finds payload and a RST only where there is one', () => {
    expect(evaluate({ on: 'server', segments: { from: '{{client.ip}}:*', data: true } }, snap('server'), vars).holds).toBe(true);
    const rst = evaluate({ on: 'client', segments: { flags: 'RST' } }, snap('client'), vars);
    expect(rst.holds).toBe(false);
    expect(rst.seen).toEqual([]);
  });

  it('last: counts only what the capture saw in that long before the look, on the kernel clock of the look', () => {
    const syns = rec.allSegments().filter((s) => s.node === 'server' && s.flags.includes('SYN') && !s.flags.includes('ACK'));
    expect(syns.length).toBeGreaterThanOrEqual(3);
    const last = syns[syns.length - 1]!.at;
    const e: Expectation = { on: 'server', segments: { flags: 'SYN', without: 'ACK', last: '500ms', count: 0 } };
    // Looked at long after the last SYN: none in the window, though the step saw them all.
    expect(evaluate(e, { ...snap('server'), clock: last + 5000 }, vars).holds).toBe(true);
    expect(evaluate({ ...e, segments: { ...e.segments!, last: undefined } }, { ...snap('server'), clock: last + 5000 }, vars).holds).toBe(
      false,
    );
    // Looked at right after the last one: it is in the window, and the first, seconds earlier, is not.
    const now = evaluate({ ...e, segments: { ...e.segments!, count: undefined } }, { ...snap('server'), clock: last + 100 }, vars);
    const n = syns.filter((s) => s.at >= last + 100 - 500).length;
    expect(now.holds).toBe(true);
    expect(n).toBeLessThan(syns.length);
    expect(now.seen[0]).toBe(`${n} segment${n === 1 ? '' : 's'}:`);
    expect(describeExpectation(e, vars)).toMatch(/ on the wire in the last 500ms within 5s$/);
    // The engine's own clock is not the kernel's: without the look's kernel clock, a window cannot be placed.
    expect(evaluate(e, snap('server'), vars)).toEqual({ holds: false, seen: ["can't tell: this look has no kernel clock"] });
  });

  it('sees nothing without a capture', () => {
    expect(evaluate({ on: 'client', segments: { flags: 'SYN' } }, { node: 'client', at: 0, sockets: [] }, vars).holds).toBe(false);
  });
});

const SYN = 'SYN' as const;
const ACK = 'ACK' as const;

describe('socket fields', () => {
  const ss = [
    'SYN-SENT 0      1      198.18.170.2:48566 198.18.170.3:5555 timer:(on,944ms,1)',
    '\t bbr rto:1000 mss:524 cwnd:1 segs_out:2 unacked:1 retrans:0/1 lost:1 rcv_ssthresh:64240',
    'ESTAB    0      6      198.18.170.2:40000 198.18.170.3:5556 timer:(on,1.2sec,3)',
    '\t ts sack cubic rto:1600 unacked:1 retrans:1/4 bytes_sent:30 bytes_retrans:24',
    'ESTAB    0      0      198.18.170.2:40002 198.18.170.3:5556',
    '\t ts sack cubic rto:204 retrans:0/2 bytes_sent:6',
    'TIME-WAIT 0     0      198.18.170.2:40004 198.18.170.3:5556 timer:(timewait,59sec,0)',
  ].join('\n');
  const s: NodeSnapshot = { node: 'client', at: 0, sockets: parseSs(ss) };
  const holds = (m: Expectation['socket']) => evaluate({ on: 'client', socket: m! }, s, vars).holds;

  it('send-q and recv-q', () => {
    expect(holds({ state: 'ESTABLISHED', sendQ: { min: 1 } })).toBe(true);
    expect(holds({ state: 'ESTABLISHED', sendQ: { min: 1 }, count: 1 })).toBe(true);
    expect(holds({ state: 'ESTABLISHED', sendQ: { min: 7 } })).toBe(false);
    expect(holds({ state: 'ESTABLISHED', recvQ: 0, count: 2 })).toBe(true);
  });

  it('the timer and its retransmissions', () => {
    expect(holds({ state: 'ESTABLISHED', timer: 'on', retransmits: { min: 3 } })).toBe(true);
    expect(holds({ state: 'ESTABLISHED', timer: 'on', retransmits: { min: 4 } })).toBe(false);
    expect(holds({ state: 'ESTABLISHED', timer: 'off', count: 1 })).toBe(true);
    expect(holds({ state: 'TIME_WAIT', timer: 'timewait' })).toBe(true);
    expect(holds({ state: 'SYN_SENT', timer: 'keepalive' })).toBe(false);
  });

  it('retransmissions over the life of the connection, after the data got through', () => {
    expect(holds({ peer: '*:5556', state: 'ESTABLISHED', timer: 'off', retransTotal: { min: 1 } })).toBe(true);
    expect(holds({ peer: '*:5556', state: 'ESTABLISHED', timer: 'off', retransTotal: { min: 3 } })).toBe(false);
    expect(
      describeExpectation(
        { on: 'client', socket: { state: 'ESTABLISHED', sendQ: { min: 1 }, timer: 'on', retransmits: { min: 2 } } },
        vars,
      ),
    ).toBe('client: socket ESTABLISHED, send-q >= 1, timer on, retransmits >= 2 within 5s');
  });
});

describe('lab files with the new kinds', () => {
  const lab = oneStepLab;
  it('accepts segments and socket fields as the README writes them', () => {
    const p = validateLabText(
      lab(`      - on: server
        segments: { from: "{{client.ip}}:*", to: "{{server.ip}}:5555", flags: SYN, without: ACK, count: { min: 3 } }
        within: 8s
      - on: client
        segments: { flags: SYN|ACK, dir: in, count: 0 }
        for: 2s
      - on: client
        socket: { state: ESTABLISHED, sendQ: { min: 1 }, timer: on, retransmits: { min: 2 } }`),
    ).problems;
    expect(p).toEqual([]);
  });

  it('reports bad flags, unknown names and timers with their lines', () => {
    const p = validateLabText(
      lab(`      - on: server
        segments: { flags: SYNACK }
      - on: server
        segments: { to: "{{router.ip}}:5555" }
      - on: client
        socket: { timer: sometimes }`),
    ).problems;
    const text = p.map((x) => `${x.line}: ${x.message}`).join('\n');
    expect(text).toMatch(/^12: flags such as SYN, SYN\|ACK/m);
    expect(text).toMatch(/^14: an address such as/m);
    expect(text).toMatch(/^16: must be one of on, keepalive, timewait, persist, off/m);
  });

  it('reports contradictions a schema cannot see, with their lines', () => {
    const p = validateLabText(
      lab(`      - on: server
        segments: { flags: SYN, without: [SYN, ACK] }
      - on: client
        socket: { sendQ: { min: 3, max: 1 } }
      - on: client
        segments: { iface: back }
      - on: client
        segments: { ttl: { min: 64, max: 2 } }
      - on: client
        segments: { flags: FIN, forwarded: false }
      - on: client
        segments: { icmp: true, dir: in, forwarded: false }`),
    ).problems;
    const text = p.map((x) => `${x.line}: ${x.message}`).join('\n');
    expect(text).toMatch(/^20: forwarded is said of segments arriving: give dir: in/m);
    expect(text).toMatch(/^22: icmp cannot go with forwarded/m);
    expect(text).toMatch(/^12: SYN cannot be both set and not set/m);
    expect(text).toMatch(/^14: min is larger than max/m);
    expect(text).toMatch(/^16: a direct lab's machines have eth0 only/m);
    expect(text).toMatch(/^18: min is larger than max/m);
  });
});

describe('retransmissions on a machine that forwards', () => {
  const routed = record(loadCaptureFixture('routed'));
  it('a segment the firewall forwards (in on one side, out on the other) is sent once, not again', () => {
    const fw = routed.allSegments().filter((s) => s.node === 'firewall');
    const span = (s: (typeof fw)[number]) => s.len + (s.flags.includes('SYN') ? 1 : 0) + (s.flags.includes('FIN') ? 1 : 0);
    const same = (a: (typeof fw)[number], b: (typeof fw)[number]) =>
      a.src.host === b.src.host && a.src.port === b.src.port && a.seq === b.seq && a.ack === b.ack && a.flags.join() === b.flags.join();
    const forwarded = fw.filter((s) => s.dir === 'out' && span(s) > 0 && fw.some((i) => i.dir === 'in' && same(i, s) && !i.retransmission));
    expect(forwarded.length).toBeGreaterThan(0);
    expect(forwarded.filter((s) => s.retransmission)).toEqual([]);
  });

  // Lab 7's story: the firewall drops the client's FINs for a while, then lets the next one through.
  it('forwarded: tells a segment the firewall sent on from one it dropped, once its copy had time to leave', () => {
    const fw = routed.allSegments().filter((s) => s.node === 'firewall');
    const rvars = loadCaptureFixture('routed').vars;
    const end = fw[fw.length - 1]!.at;
    const look = (clock: number): NodeSnapshot => ({
      node: 'firewall',
      at: 0,
      sockets: [],
      clock,
      segments: fw.filter((s) => s.at <= clock),
    });
    const check = (segments: Expectation['segments']): Expectation => ({ on: 'firewall', segments });
    const finsIn = { from: '{{client.ip}}:*', flags: 'FIN', dir: 'in' } as const;
    expect(evaluate(check({ ...finsIn, forwarded: false, count: { min: 2 } }), look(end + 1000), rvars).holds).toBe(true);
    expect(evaluate(check({ ...finsIn, forwarded: true, count: 1 }), look(end + 1000), rvars).holds).toBe(true);
    // The SYN went through: sent on, and none of the SYNs was kept.
    const synIn = { flags: 'SYN', without: 'ACK', dir: 'in' } as const;
    expect(evaluate(check({ ...synIn, forwarded: true }), look(end + 1000), rvars).holds).toBe(true);
    expect(evaluate(check({ ...synIn, forwarded: false, count: 0 }), look(end + 1000), rvars).holds).toBe(true);
    // The first FIN dropped: neither sent on nor kept until half a second after it arrived.
    const firstDropped = fw.find((s) => s.dir === 'in' && s.flags.includes('FIN') && s.src.host === rvars['client.ip'])!;
    expect(evaluate(check({ ...finsIn, forwarded: false }), look(firstDropped.at + 100), rvars).holds).toBe(false);
    expect(evaluate(check({ ...finsIn, forwarded: true }), look(firstDropped.at + 100), rvars).holds).toBe(false);
    expect(evaluate(check({ ...finsIn, forwarded: false }), look(firstDropped.at + 600), rvars).holds).toBe(true);
    // Without the kernel's clock of the look, it cannot tell.
    const noClock = { ...look(end + 1000), clock: undefined };
    expect(evaluate(check({ ...finsIn, forwarded: false }), noClock, rvars).seen[0]).toMatch(/^can't tell/);
    expect(describeExpectation(check({ ...finsIn, forwarded: false }), rvars)).toContain('at least 1 FIN segment never sent on from');
  });
});
