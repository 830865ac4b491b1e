import { describe, expect, it } from 'vitest';
import { renderLadder } from '../../src/report/ladder-text.js';
import { buildTimeline } from '../../src/trace/timeline.js';
import { loadCaptureFixture, record } from '../helpers/capture-fixtures.js';

const direct = record(loadCaptureFixture('direct')).timeline();
const routed = record(loadCaptureFixture('routed')).timeline();

function lineOf(text: string, re: RegExp): number {
  return text.split('\n').findIndex((l) => re.test(l));
}

describe('the ladder as text', () => {
  it('draws the handshake with states between the segments that changed them', () => {
    const text = renderLadder(direct, { width: 100 });
    expect(text.split('\n')[0]).toMatch(/^time \(s\)\s+client\s+server$/);
    // Two connections, told apart by a letter: the first never got a SYN out; the second is the handshake.
    const c = /\[([a-z]):SYN_RECV\]/.exec(text)![1]!;
    const synSent = lineOf(text, new RegExp(`\\[${c}:SYN_SENT\\]`));
    const syn = lineOf(text, new RegExp(`\\|- ${c}:SYN seq 0 -+>\\|`));
    const synRecv = lineOf(text, new RegExp(`\\[${c}:SYN_RECV\\]`));
    const synAck = lineOf(text, new RegExp(`\\|<-+ ${c}:SYN\\|ACK seq 0 ack 1 \\|`));
    const est = lineOf(text, new RegExp(`\\[${c}:ESTABLISHED\\]\\s+\\|$`));
    expect(synSent).toBeGreaterThan(0);
    expect(syn).toBe(synSent + 1);
    expect(synRecv).toBe(syn + 1);
    expect(synAck).toBeGreaterThan(synRecv);
    expect(est).toBeGreaterThan(synAck);
    // The connection whose SYNs died in the client's OUTPUT shows as its counter.
    expect(text).toMatch(/X client OUTPUT dropped \d+: .*--dport 5555/);
    expect(text).toMatch(new RegExp(`${c}:SYN seq 0 rtx`));
    expect(text).toMatch(/^ {2}a = .*:5555$/m);
  });

  it('marks a segment that died at the firewall with an X at the firewall column', () => {
    const text = renderLadder(routed, { width: 90 });
    const lost = text.split('\n').filter((l) => /FIN\|ACK seq 7 ack 1/.test(l) && l.includes('X'));
    expect(lost.length).toBeGreaterThanOrEqual(2);
    const fwColumn = text.split('\n')[0]!.indexOf('firewall') + 'firewall'.length / 2;
    for (const l of lost) expect(Math.abs(l.indexOf('X') - fwColumn)).toBeLessThanOrEqual(6);
    const through = text.split('\n').find((l) => /SYN seq 0 -+\+-+>\|/.test(l));
    expect(through, text).toBeDefined();
  });

  it('fits the width it is given, down to its minimum', () => {
    for (const width of [40, 56, 72, 100, 160])
      for (const t of [direct, routed]) {
        const lines = renderLadder(t, { width }).trimEnd().split('\n');
        for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(Math.max(56, width));
      }
  });

  it('is plain ASCII without colour', () => {
    expect(renderLadder(routed, { width: 80 })).toMatch(/^[\x20-\x7e\n]*$/);
  });

  it('shows a window of time, with the states standing when it opens', () => {
    const release = routed.events.find((e) => e.kind === 'segment' && e.tx.fate === 'delivered' && e.tx.flags.includes('FIN'))!;
    const text = renderLadder(routed, { width: 80, from: release.at - 1 });
    expect(text).toMatch(/\[FIN_WAIT_1\]/);
    expect(lineOf(text, /\[FIN_WAIT_1\]/)).toBeLessThan(lineOf(text, /FIN\|ACK seq 7 ack 1 rtx -+\+-+>\|/));
    expect(text).not.toMatch(/SYN seq 0/);
  });

  it('keeps the first and the last rows when there are too many', () => {
    const text = renderLadder(direct, { width: 80, maxRows: 6 });
    expect(text).toMatch(/\.\.\. \d+ more events \.\.\./);
    expect(text).toMatch(/LISTEN/);
    expect(text).toMatch(/CLOSED/);
  });

  it('matches the reviewed rendering of the recorded Lab 2 run', async () => {
    await expect(renderLadder(direct, { width: 100 })).toMatchFileSnapshot('../fixtures/capture/direct/ladder-100.txt');
    await expect(renderLadder(routed, { width: 100 })).toMatchFileSnapshot('../fixtures/capture/routed/ladder-100.txt');
  });

  it('says a REJECT rule rejected what it counted, and a DROP rule dropped it', () => {
    const rule = (target: string, packets: number) => ({
      table: 'filter',
      chain: 'OUTPUT',
      packets,
      bytes: packets * 60,
      spec: `-p tcp -m tcp --dport 5555 -j ${target}`,
      line: '',
    });
    const counters = [
      { node: 'client' as const, at: 1000, counters: [rule('REJECT --reject-with icmp-port-unreachable', 0), rule('DROP', 0)] },
      { node: 'client' as const, at: 2000, counters: [rule('REJECT --reject-with icmp-port-unreachable', 1), rule('DROP', 2)] },
    ];
    const text = renderLadder(
      buildTimeline({
        topology: 'direct',
        addresses: { client: ['198.18.7.2'], server: ['198.18.7.3'] },
        segments: [],
        samples: [],
        counters,
      }),
      { width: 120 },
    );
    expect(text).toMatch(/X client OUTPUT rejected 1: .*-j REJECT/);
    expect(text).toMatch(/X client OUTPUT dropped 2: .*-j DROP/);
  });
});
