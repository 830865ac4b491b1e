// ICMP "destination unreachable" about a TCP segment: what a REJECT other than tcp-reset sends. The agent keeps
// them beside the segments (images/node/tcplab-agent.c); they are read, matched and shown here. The bytes are
// built as the kernel sends them (ipt_REJECT / ip6t_REJECT: the quoted datagram is the refused SYN).
import { describe, expect, it } from 'vitest';
import { describeExpectation, evaluate, type NodeSnapshot } from '../../src/grade/grade.js';
import { validateLabText } from '../../src/lab/load.js';
import type { Expectation } from '../../src/lab/schema.js';
import { formatSegment, parseHeaders, type Segment } from '../../src/observe/segments.js';
import { buildTimeline } from '../../src/trace/timeline.js';
import { segmentLabel } from '../../src/report/ladder-text.js';
import { oneStepLab } from '../helpers/lab-text.js';

const CLIENT = '198.18.0.2';
const SERVER = '198.18.1.3';
const FIREWALL = '198.18.0.254';

function ip4(proto: number, src: string, dst: string, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(0x1234, 4);
  h[8] = 64;
  h[9] = proto;
  Buffer.from(src.split('.').map(Number)).copy(h, 12);
  Buffer.from(dst.split('.').map(Number)).copy(h, 16);
  return Buffer.concat([h, payload]);
}

function tcp(sport: number, dport: number, seq: number, flags: number): Buffer {
  const t = Buffer.alloc(20);
  t.writeUInt16BE(sport, 0);
  t.writeUInt16BE(dport, 2);
  t.writeUInt32BE(seq, 4);
  t[12] = 5 << 4;
  t[13] = flags;
  t.writeUInt16BE(64240, 14);
  return t;
}

const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;
const syn = ip4(6, CLIENT, SERVER, tcp(40000, 5555, 1000, SYN));

/** ICMP type/code from `from`, quoting `quoted` (cut to `keep` bytes, as a router may). */
function icmp4(code: number, from: string, quoted: Buffer, keep = quoted.length): Buffer {
  const head = Buffer.from([3, code, 0, 0, 0, 0, 0, 0]);
  return ip4(1, from, CLIENT, Buffer.concat([head, quoted.subarray(0, keep)]));
}

function ip6(next: number, src: number, dst: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(payload.length, 4);
  h[6] = next;
  h[7] = 64;
  h.writeUInt16BE(0xfd00, 8);
  h[23] = src;
  h.writeUInt16BE(0xfd00, 24);
  h[39] = dst;
  return Buffer.concat([h, payload]);
}

const seg = (hdr: Buffer, over: Partial<Segment> = {}): Segment => ({
  node: 'firewall',
  at: 1000,
  iface: 'front',
  ifindex: 2,
  dir: 'out',
  ...parseHeaders(hdr)!,
  hex: hdr.toString('hex'),
  origLen: hdr.length,
  ...over,
});

describe('ICMP errors about TCP segments', () => {
  it('reads an IPv4 destination unreachable as the answer to the segment it quotes', () => {
    const h = parseHeaders(icmp4(13, FIREWALL, syn))!;
    expect(h).toMatchObject({
      src: { host: SERVER, port: 5555 },
      dst: { host: CLIENT, port: 40000 },
      flags: [],
      seq: 1000,
      len: 0,
      icmp: { type: 3, code: 13, name: 'admin-prohibited', sender: FIREWALL },
    });
    expect(parseHeaders(icmp4(3, FIREWALL, syn))!.icmp!.name).toBe('port-unreachable');
    expect(parseHeaders(icmp4(7, FIREWALL, syn))!.icmp!.name).toBe('other');
    // Eight bytes of the segment (RFC 792's minimum) are enough for its ports and sequence number.
    expect(parseHeaders(icmp4(3, FIREWALL, syn, 28))!.src.port).toBe(5555);
    expect(parseHeaders(icmp4(3, FIREWALL, syn, 27))).toBeUndefined();
  });

  it('reads an ICMPv6 destination unreachable the same way', () => {
    const syn6 = ip6(6, 2, 3, tcp(40001, 5555, 7, SYN));
    const h = parseHeaders(ip6(58, 0xfe, 2, Buffer.concat([Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]), syn6])))!;
    expect(h).toMatchObject({
      src: { host: 'fd00::3', port: 5555 },
      dst: { host: 'fd00::2', port: 40001 },
      icmp: { type: 1, code: 1, name: 'admin-prohibited', sender: 'fd00::fe' },
    });
  });

  it('ignores ICMP that is not about TCP, and other ICMP types', () => {
    const udp = Buffer.from(syn);
    udp[9] = 17;
    expect(parseHeaders(icmp4(3, FIREWALL, udp))).toBeUndefined();
    const echo = icmp4(0, FIREWALL, syn);
    echo[20] = 8; // echo request
    expect(parseHeaders(echo)).toBeUndefined();
  });

  const rst = seg(ip4(6, SERVER, CLIENT, tcp(5555, 40000, 0, RST | ACK)));
  const prohibited = seg(icmp4(13, FIREWALL, syn));
  const snap: NodeSnapshot = { node: 'firewall', at: 2000, sockets: [], segments: [prohibited] };
  const vars = { 'client.ip': CLIENT, 'server.ip': SERVER };
  const holds = (e: Expectation, s = snap) => evaluate(e, s, vars).holds;

  it('a refusal is a reset or an ICMP error; other segments checks never count an ICMP error', () => {
    const refused: Expectation = {
      on: 'firewall',
      segments: { from: '{{server.ip}}:5555', to: '{{client.ip}}:*', refusal: true, iface: 'front', dir: 'out' },
    };
    expect(holds(refused)).toBe(true);
    expect(holds(refused, { ...snap, segments: [rst] })).toBe(true);
    expect(holds(refused, { ...snap, segments: [seg(syn, { dir: 'in' })] })).toBe(false);
    expect(holds(refused, { ...snap, segments: [{ ...prohibited, icmp: { ...prohibited.icmp!, name: 'frag-needed' } }] })).toBe(false);
    // A check of TCP sees no segment here: an ICMP error is not one (a count of none still holds).
    expect(holds({ on: 'firewall', segments: { from: '{{server.ip}}:5555' } })).toBe(false);
    expect(holds({ on: 'firewall', segments: { to: '{{client.ip}}:*', count: 0 } })).toBe(true);
    expect(describeExpectation(refused, vars)).toContain('at least 1 refusal (a reset or an ICMP destination unreachable)');
    // More than one is plural; an interface is named as one ("leaving on interface front", not "on front").
    const two = describeExpectation({ ...refused, segments: { ...refused.segments!, count: { min: 2 } } }, vars);
    expect(two).toMatch(/at least 2 refusals \(.*leaving on interface front on the wire/);
  });

  it('icmp: true is any such error, a name one code of it', () => {
    expect(holds({ on: 'firewall', segments: { icmp: true, to: '{{client.ip}}:*' } })).toBe(true);
    expect(holds({ on: 'firewall', segments: { icmp: 'admin-prohibited' } })).toBe(true);
    expect(holds({ on: 'firewall', segments: { icmp: 'port-unreachable' } })).toBe(false);
    expect(holds({ on: 'firewall', segments: { icmp: true } }, { ...snap, segments: [rst] })).toBe(false);
    const r = evaluate({ on: 'firewall', segments: { icmp: true } }, snap, vars);
    expect(r.seen[1]).toBe(`+0.000s out front ICMP admin-prohibited from ${FIREWALL} about ${CLIENT}:40000 > ${SERVER}:5555 seq 1000`);
    expect(formatSegment(prohibited)).toContain('ICMP admin-prohibited');
  });

  it('the ladder draws the error from the machine that sent it to the client, on the connection it refused', () => {
    const t = buildTimeline({
      topology: 'routed',
      addresses: { client: [CLIENT], server: [SERVER], firewall: [FIREWALL] },
      segments: [
        seg(syn, { node: 'client', iface: 'eth0', at: 1000 }),
        seg(syn, { node: 'firewall', iface: 'front', dir: 'in', at: 1000.1 }),
        { ...prohibited, at: 1000.2 },
        { ...prohibited, node: 'client', iface: 'eth0', dir: 'in', at: 1000.3 },
      ],
      samples: [],
    });
    expect(t.transmissions).toHaveLength(2);
    const [first, err] = t.transmissions;
    expect(first!.flags).toEqual(['SYN']);
    expect(first!.relSeq).toBe(0);
    expect(err).toMatchObject({ from: 'firewall', to: 'client', icmp: 'admin-prohibited', fate: 'delivered', conn: first!.conn });
    expect(segmentLabel(err!)).toBe('ICMP admin-prohibited');
    expect(segmentLabel(first!)).toBe('SYN seq 0');
  });

  it('lab validate refuses TCP-only keys beside icmp or refusal, and both together', () => {
    const lab = (matcher: string) => oneStepLab(`      - on: server\n        segments: ${matcher}`);
    const problems = (m: string) => validateLabText(lab(m)).problems.map((p) => `${p.path}: ${p.message}`);
    expect(problems('{ refusal: true, from: "*:5555" }')).toEqual([]);
    expect(problems('{ icmp: port-unreachable }')).toEqual([]);
    expect(problems('{ icmp: true, flags: RST }')).toEqual([
      'steps[0].expect[0].segments.icmp: icmp cannot go with flags: an ICMP error has none',
    ]);
    expect(problems('{ icmp: true, refusal: true }')).toEqual([
      'steps[0].expect[0].segments.refusal: refusal already includes ICMP errors: give icmp or refusal, not both',
    ]);
    expect(problems('{ icmp: admin-denied }')[0]).toMatch(/segments\.icmp/);
  });
});
