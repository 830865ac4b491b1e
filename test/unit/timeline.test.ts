import { describe, expect, it } from 'vitest';
import { buildTimeline, statesAt, type Transmission } from '../../src/trace/timeline.js';
import { HeadTail, LabRecorder } from '../../src/trace/recorder.js';
import { loadCaptureFixture, record } from '../helpers/capture-fixtures.js';
import { renderLadder } from '../../src/report/ladder-text.js';
import type { Segment } from '../../src/observe/segments.js';
import { parseEndpoint, parseSs } from '../../src/observe/ss.js';

const names = (tx: Transmission) => tx.flags.filter((f) => f !== 'PSH').join('|');

describe('the timeline of a direct lab (Lab 2: SYN dropped in OUTPUT, then SYN|ACK dropped and released)', () => {
  const f = loadCaptureFixture('direct');
  const rec = record(f);
  const t = rec.timeline();
  const server = f.vars['server.ip']!;

  it('joins each segment seen by the sender and by the receiver into one delivered transmission', () => {
    const firstSyn = t.transmissions.find((x) => names(x) === 'SYN')!;
    expect(firstSyn.from).toBe('client');
    expect(firstSyn.to).toBe('server');
    expect(firstSyn.sightings.map((s) => `${s.node}:${s.dir}`)).toEqual(['client:out', 'server:in']);
    expect(firstSyn.fate).toBe('delivered');
    expect(firstSyn.retransmission).toBe(false);
    // Every segment of the capture is in exactly one transmission, once per capture.
    const sightings = t.transmissions.reduce((n, x) => n + x.sightings.length, 0);
    expect(sightings).toBe(rec.allSegments().length);
  });

  it('numbers seq and ack relative to each side, and marks retransmitted SYNs', () => {
    const conn = t.transmissions.find((x) => names(x) === 'SYN')!.conn;
    const syns = t.transmissions.filter((x) => x.conn === conn && names(x) === 'SYN');
    expect(syns.length).toBeGreaterThanOrEqual(3);
    expect(syns.slice(1).every((x) => x.retransmission && x.relSeq === 0)).toBe(true);
    const synAck = t.transmissions.find((x) => x.conn === conn && names(x) === 'SYN|ACK')!;
    expect([synAck.relSeq, synAck.relAck]).toEqual([0, 1]);
    const data = t.transmissions.find((x) => x.conn === conn && x.len > 0)!;
    expect([data.relSeq, data.len, data.relAck]).toEqual([1, 6, 1]);
  });

  it('never shows the SYN|ACKs the server OUTPUT dropped on the wire, but its counter does', () => {
    // Before the release, the client retransmits its SYN and the server answers each: none of those
    // answers leaves the server, so the first SYN|ACK seen comes after the first three SYNs.
    const conn = t.transmissions.find((x) => names(x) === 'SYN')!.conn;
    const list = t.transmissions.filter((x) => x.conn === conn);
    expect(list.findIndex((x) => names(x) === 'SYN|ACK')).toBeGreaterThanOrEqual(3);
    const drops = t.events.filter((e) => e.kind === 'drop');
    expect(drops.find((d) => d.node === 'server' && d.chain === 'OUTPUT' && d.packets >= 2)).toBeDefined();
    // The first connection's SYNs died in the client's OUTPUT: no transmission at all, only its socket and the counter.
    expect(drops.find((d) => d.node === 'client' && d.chain === 'OUTPUT' && d.packets >= 2)).toBeDefined();
    const first = t.events.find((e) => e.kind === 'state' && e.node === 'client' && e.to === 'SYN_SENT')!;
    expect(first.kind === 'state' && t.transmissions.some((x) => x.conn === first.conn)).toBe(false);
    expect(t.connections.some((c) => first.kind === 'state' && c.key === first.conn)).toBe(true);
  });

  it('says which segment changed which state', () => {
    const byId = new Map(t.transmissions.map((x) => [x.id, x]));
    const cause = (node: string, to: string) => {
      const e = t.events.find((x) => x.kind === 'state' && x.node === node && x.to === to && x.cause !== undefined);
      return e?.kind === 'state' ? byId.get(e.cause!) : undefined;
    };
    expect(names(cause('server', 'SYN_RECV')!)).toBe('SYN');
    expect(names(cause('client', 'ESTABLISHED')!)).toBe('SYN|ACK');
    expect(names(cause('server', 'ESTABLISHED')!)).toBe('ACK');
    // A state entered by sending comes just before the segment it sent; one entered on receipt, just after.
    const synSent = t.events.find((e) => e.kind === 'state' && e.node === 'client' && e.to === 'SYN_SENT' && e.cause)!;
    expect(synSent.at).toBeLessThan(byId.get((synSent as { cause: number }).cause)!.at);
    const est = t.events.find((e) => e.kind === 'state' && e.node === 'client' && e.to === 'ESTABLISHED')!;
    expect(est.at).toBeGreaterThan(byId.get((est as { cause: number }).cause)!.at);
  });

  it('knows the states at any moment', () => {
    const est = t.events.find((e) => e.kind === 'state' && e.node === 'server' && e.to === 'ESTABLISHED')!;
    const now = statesAt(t, est.at);
    expect(now.find((s) => s.node === 'server' && s.state === 'ESTABLISHED')?.local.host).toBe(server);
    expect(now.find((s) => s.node === 'server' && s.state === 'LISTEN')).toBeDefined();
  });

  it('stamps sockets and segments with the same kernel clock', () => {
    const segs = rec.allSegments();
    const clocks = f.answers.client!.map((a) => a.look.clock);
    // Every segment falls between the first and the last look.
    expect(Math.min(...segs.map((s) => s.at))).toBeGreaterThan(clocks[0]!);
    expect(Math.max(...segs.map((s) => s.at))).toBeLessThan(clocks[clocks.length - 1]!);
  });
});

describe('the timeline of a routed lab (Lab 7: the firewall drops the client FINs, then lets them through)', () => {
  const f = loadCaptureFixture('routed');
  const t = record(f).timeline();

  it('follows a segment through the firewall: in on one side, out on the other', () => {
    const syn = t.transmissions.find((x) => names(x) === 'SYN')!;
    expect(syn.sightings.map((s) => `${s.node}:${s.dir}:${s.iface}`)).toEqual([
      'client:out:front',
      'firewall:in:front',
      'firewall:out:back',
      'server:in:back',
    ]);
    expect(syn.fate).toBe('delivered');
  });

  it('finds where a FIN died: in on the firewall, never out', () => {
    const fins = t.transmissions.filter((x) => x.from === 'client' && x.flags.includes('FIN'));
    const lost = fins.filter((x) => x.fate === 'lost');
    expect(lost.length).toBeGreaterThanOrEqual(2);
    for (const x of lost) {
      expect(x.lost?.node).toBe('firewall');
      expect(x.lost?.where).toMatch(/front, never out/);
    }
    expect(lost.slice(1).every((x) => x.retransmission)).toBe(true);
    // The one after the release got through, and the client went to TIME_WAIT on the server's FIN.
    expect(fins[fins.length - 1]!.fate).toBe('delivered');
    const tw = t.events.find((e) => e.kind === 'state' && e.node === 'client' && e.to === 'TIME_WAIT');
    expect(tw?.kind === 'state' && t.transmissions.find((x) => x.id === tw.cause)?.from).toBe('server');
    expect(t.events.some((e) => e.kind === 'drop' && e.node === 'firewall' && e.chain === 'FORWARD')).toBe(true);
  });

  it('calls a segment in flight, not lost, while the next capture has not been read past it', () => {
    const f2 = loadCaptureFixture('routed');
    const rec = record(f2);
    const all = rec.allSegments();
    const lastFin = all.filter((s) => s.node === 'client' && s.flags.includes('FIN')).at(-1)!;
    const early = buildTimeline({
      topology: 'routed',
      addresses: f2.addresses,
      segments: all.filter((s) => s.node === 'client' || s.at < lastFin.at),
      samples: [],
      seenUntil: { client: lastFin.at + 10, firewall: lastFin.at - 1, server: lastFin.at - 1 },
    });
    expect(early.transmissions.at(-1)!.fate).toBe('in-flight');
  });
});

describe('a state ss saw before the capture stamped its cause', () => {
  // The look's clock is read before ss runs; on a busy host ss runs tens of ms later and sees CLOSE_WAIT from a
  // FIN that arrived after the clock (Lab 7 at a 100-column terminal: CLOSE_WAIT at 15.873, the FIN at 15.879).
  const fin = (node: 'client' | 'server', dir: 'in' | 'out', at: number): Segment => ({
    node,
    at,
    iface: 'eth0',
    ifindex: 2,
    dir,
    src: parseEndpoint('198.18.7.2:40000'),
    dst: parseEndpoint('198.18.7.3:5555'),
    flags: ['FIN', 'ACK'],
    seq: 7,
    ack: 1,
    len: 0,
    win: 502,
    ipId: 9,
    ttl: 64,
    ipOptions: 0,
    hex: '',
    origLen: 52,
  });
  const t0 = 1_000_000;
  const server = (at: number, state: string, since?: number) => ({
    node: 'server' as const,
    at,
    sockets: parseSs(`${state} 0 0 198.18.7.3:5555 198.18.7.2:40000`),
    ...(since !== undefined ? { since } : {}),
  });
  const build = (later: number) =>
    buildTimeline({
      topology: 'direct',
      addresses: { client: ['198.18.7.2'], server: ['198.18.7.3'] },
      segments: [fin('client', 'out', t0 + 15_878), fin('server', 'in', t0 + 15_879)],
      samples: [server(t0, 'ESTAB'), server(t0 + 15_873, 'CLOSE-WAIT', t0 + 15_600), server(later, 'LAST-ACK', later - 50)],
    });

  it('is placed after that segment, which caused it, and the ladder writes it there', () => {
    const t = build(t0 + 16_500);
    const closeWait = t.events.find((e) => e.kind === 'state' && e.to === 'CLOSE_WAIT')!;
    const finIn = t.transmissions.find((x) => x.flags.includes('FIN'))!;
    expect(closeWait.kind === 'state' && closeWait.cause).toBe(finIn.id);
    expect(closeWait.at).toBeGreaterThan(t0 + 15_879);
    const rows = renderLadder(t, { width: 90, origin: t0 }).split('\n');
    const finRow = rows.findIndex((r) => r.includes('FIN|ACK'));
    const stateRow = rows.findIndex((r) => r.includes('[CLOSE_WAIT]'));
    expect(finRow).toBeGreaterThan(0);
    expect(stateRow).toBeGreaterThan(finRow);
  });

  it('but never takes a segment from after the next look for its cause', () => {
    // The node's next sample came before the FIN was stamped: that FIN cannot explain the earlier state.
    const t = build(t0 + 15_875);
    const closeWait = t.events.find((e) => e.kind === 'state' && e.to === 'CLOSE_WAIT')!;
    expect(closeWait.kind === 'state' && closeWait.cause).toBeUndefined();
    expect(closeWait.at).toBe(t0 + 15_873);
  });
});

describe('bounded store', () => {
  it('keeps the first and the latest items and counts the rest', () => {
    const h = new HeadTail<number>(3, 4);
    for (let i = 1; i <= 20; i++) h.push(i);
    expect(h.items()).toEqual([1, 2, 3, 17, 18, 19, 20]);
    expect(h.dropped).toBe(13);
  });

  it('a recorder holds at most its limits, whatever a lab sends', () => {
    const f = loadCaptureFixture('direct');
    const rec = new LabRecorder(f.topology, f.addresses, { segmentsHead: 2, segmentsTail: 3, samples: 8 });
    for (let i = 0; i < f.answers.client!.length; i++) {
      for (const n of ['client', 'server'] as const) rec.ingest(n, f.answers[n]![i]!.look, f.answers[n]![i]!.from);
    }
    expect(rec.allSegments()).toHaveLength(5);
    expect(rec.droppedSegments).toBeGreaterThan(10);
    expect(rec.approxBytes()).toBeGreaterThan(0);
  });

  it('asks each node only for what it has not read (no segment twice)', () => {
    const f = loadCaptureFixture('direct');
    const rec = record(f);
    const keys = rec.allSegments().map((s) => `${s.node} ${s.at} ${s.hex}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(rec.cursor('client')).toBe(f.answers.client!.at(-1)!.look.segments!.next);
    // The same answer twice (a long poll and a plain look that overlapped): nothing is kept twice.
    const again = f.answers.client!.at(-3)!;
    const before = rec.allSegments().length;
    rec.ingest('client', again.look, again.from);
    expect(rec.allSegments()).toHaveLength(before);
  });

  it('says when a window lost segments: the ring moved past the cursor, the kernel dropped some, capture off', () => {
    const f = loadCaptureFixture('direct');
    const rec = record(f);
    const last = f.answers.client!.at(-1)!;
    expect(rec.lossSince('client', f.answers.client![0]!.look.clock)).toBeUndefined();
    const at = last.look.clock + 100;
    rec.ingest('client', { ...last.look, clock: at, segments: { ...last.look.segments!, missed: 40 } }, rec.cursor('client'));
    expect(rec.lossSince('client', at - 1)).toMatch(/40 segments of client went by unread/);
    rec.ingest('server', { ...last.look, clock: at, segments: { ...last.look.segments!, kernelDrops: 3 } }, rec.cursor('server'));
    expect(rec.lossSince('server', at - 1)).toMatch(/kernel dropped 3 segments/);
    // A window that ended before the loss is whole.
    expect(rec.lossSince('server', at + 1)).toBeUndefined();
    rec.ingest(
      'client',
      { ...last.look, clock: at + 5, segments: { ...last.look.segments!, off: 'capture is off' } },
      rec.cursor('client'),
    );
    expect(rec.lossSince('client', at + 10)).toMatch(/records no segments: capture is off/);
  });
});
