// A socket's `closed: first | second`: which side of its own connection closed first, read from the FINs its
// machine's capture saw and what acknowledged them.
import { describe, expect, it } from 'vitest';
import { closedOrder, describeExpectation, evaluate, type NodeSnapshot } from '../../src/grade/grade.js';
import type { Expectation } from '../../src/lab/schema.js';
import type { Segment, TcpFlag } from '../../src/observe/segments.js';
import { parseSs } from '../../src/observe/ss.js';

const C = '198.18.0.2';
const S = '198.18.0.3';
const vars = { 'client.ip': C, 'server.ip': S };
const [timeWait] = parseSs(`TIME-WAIT 0 0 ${C}:40000 ${S}:5600 timer:(timewait,59sec,0)`);

let at = 1000;
/** A segment on the client's wire: out from the client's 40000, or in from the server's 5600. */
function seg(dir: 'in' | 'out', flags: TcpFlag[], seq: number, ack: number, len = 0, ports: [number, number] = [40000, 5600]): Segment {
  const client = { host: C, port: ports[0] };
  const server = { host: S, port: ports[1] };
  return {
    node: 'client',
    at: (at += 10),
    iface: 'eth0',
    ifindex: 2,
    dir,
    src: dir === 'out' ? client : server,
    dst: dir === 'out' ? server : client,
    flags,
    seq,
    ack,
    len,
    win: 64,
    ipId: 1,
    ttl: 64,
    ipOptions: 0,
    hex: '',
    origLen: 52,
  };
}

// The client sends 3 bytes from seq 101 and closes: its FIN is seq 104, so the server acknowledges 105.
const clientFirst = [
  seg('out', ['ACK', 'PSH'], 101, 501, 3),
  seg('out', ['FIN', 'ACK'], 104, 501),
  seg('in', ['ACK'], 501, 105),
  seg('in', ['FIN', 'ACK'], 501, 105),
  seg('out', ['ACK'], 105, 502),
];
// The server closes first (its FIN is 501); the client's FIN acknowledges it.
const serverFirst = [
  seg('in', ['FIN', 'ACK'], 501, 101),
  seg('out', ['ACK'], 101, 502),
  seg('out', ['FIN', 'ACK'], 101, 502),
  seg('in', ['ACK'], 502, 102),
];

describe('closedOrder', () => {
  it('first: its FIN left, and the FIN that came back acknowledged it (data before the FIN counted)', () => {
    expect(closedOrder(timeWait!, clientFirst)).toBe('first');
  });

  it('second: the peer closed first, and its own FIN acknowledged the peer’s', () => {
    expect(closedOrder(timeWait!, serverFirst)).toBe('second');
  });

  it('neither: FINs that crossed (a simultaneous close: neither acknowledges the other), no FIN, or another connection’s FINs', () => {
    expect(closedOrder(timeWait!, [seg('out', ['FIN', 'ACK'], 104, 501), seg('in', ['FIN', 'ACK'], 501, 104)])).toBeUndefined();
    expect(closedOrder(timeWait!, [])).toBeUndefined();
    const otherPort = clientFirst.map((g) => ({
      ...g,
      ...(g.dir === 'out' ? { src: { host: C, port: 40001 } } : { dst: { host: C, port: 40001 } }),
    }));
    expect(closedOrder(timeWait!, otherPort)).toBeUndefined();
  });

  it('sequence numbers that wrap past 2^32', () => {
    const wrap = [seg('out', ['FIN', 'ACK'], 0xffffffff, 501), seg('in', ['FIN', 'ACK'], 501, 0)];
    expect(closedOrder(timeWait!, wrap)).toBe('first');
  });
});

describe('a socket check with closed', () => {
  const e: Expectation = {
    on: 'client',
    socket: { state: 'TIME_WAIT', local: '{{client.ip}}:*', peer: '{{server.ip}}:5600', closed: 'first' },
  };
  const snap = (segments: Segment[] | undefined, extra: Partial<NodeSnapshot> = {}): NodeSnapshot => ({
    node: 'client',
    at: 0,
    sockets: [timeWait!],
    ...(segments ? { segments } : {}),
    ...extra,
  });

  it('holds only for the socket whose own connection closed first on the wire', () => {
    expect(evaluate(e, snap(clientFirst), vars).holds).toBe(true);
    const r = evaluate(e, snap(serverFirst), vars);
    expect(r.holds).toBe(false);
    expect(r.seen.join('\n')).toContain('closed second, expected first');
    // A TIME_WAIT made on the loopback: nothing of it on the capture.
    expect(evaluate(e, snap([]), vars).seen.join('\n')).toMatch(/closed unknown .*expected first/);
    expect(describeExpectation(e, vars)).toContain('closed first on the wire');
  });

  it("can't tell without the segments, and with some lost only when the missing ones could change the verdict", () => {
    expect(evaluate(e, snap(undefined), vars)).toEqual({
      holds: false,
      seen: ["can't tell which side closed first: this look has no segments"],
    });
    // Seen closing first: a socket that is one, whatever else was lost.
    expect(evaluate(e, snap(clientFirst, { segmentsLost: 'the kernel dropped 3' }), vars).holds).toBe(true);
    // Not seen: it may have, in what was lost.
    expect(evaluate(e, snap([], { segmentsLost: 'the kernel dropped 3' }), vars).seen[0]).toBe("can't tell: the kernel dropped 3");
    const none: Expectation = { on: 'client', absent: e.socket! };
    expect(evaluate(none, snap([]), vars).holds).toBe(true);
    expect(evaluate(none, snap([], { segmentsLost: 'the kernel dropped 3' }), vars).holds).toBe(false);
  });
});
