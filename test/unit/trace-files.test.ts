// The trace renderers, pure: pcap bytes and the HTML page, from the recorded fixtures.
import { describe, expect, it } from 'vitest';
import { LINKTYPE_LINUX_SLL2, readPcap, writePcap } from '../../src/report/pcap.js';
import { renderLadderHtml } from '../../src/report/ladder-html.js';
import { parseHeaders } from '../../src/observe/segments.js';
import { loadCaptureFixture, record } from '../helpers/capture-fixtures.js';

const rec = record(loadCaptureFixture('routed'));

describe('writePcap', () => {
  const fw = rec.segmentsOf('firewall');
  const bytes = writePcap(fw);

  it('writes a nanosecond pcap of Linux cooked v2 records, one per segment, in time order', () => {
    expect(bytes.readUInt32LE(0)).toBe(0xa1b23c4d);
    expect(bytes.readUInt16LE(4)).toBe(2);
    expect(bytes.readUInt16LE(6)).toBe(4);
    expect(bytes.readUInt32LE(20)).toBe(LINKTYPE_LINUX_SLL2);
    const recs = readPcap(bytes);
    expect(recs).toHaveLength(fw.length);
    for (let i = 1; i < recs.length; i++) expect(recs[i]!.at).toBeGreaterThanOrEqual(recs[i - 1]!.at);
  });

  it('keeps each segment: its time to the microsecond, direction, interface and headers', () => {
    const recs = readPcap(bytes);
    const sorted = [...fw].sort((a, b) => a.at - b.at);
    recs.forEach((r, i) => {
      const s = sorted[i]!;
      expect(Math.abs(r.at - s.at)).toBeLessThan(0.001);
      expect(r.dir).toBe(s.dir);
      expect(r.ifindex).toBe(s.ifindex);
      expect(r.ip.toString('hex')).toBe(s.hex);
      expect(r.origLen).toBe(s.origLen);
      expect(parseHeaders(r.ip)!.seq).toBe(s.seq);
    });
    // The firewall saw segments come in on one interface and leave by the other.
    expect(new Set(recs.map((r) => `${r.dir} ${r.ifindex}`)).size).toBe(4);
  });

  it('an empty capture is a valid file with a header only', () => {
    expect(writePcap([])).toHaveLength(24);
    expect(readPcap(writePcap([]))).toEqual([]);
  });
});

describe('renderLadderHtml', () => {
  const t = rec.timeline();
  const html = renderLadderHtml(t, { title: 'Lab 7 <test>', sections: [{ title: 'all & everything' }] });

  it('is one page with inline SVG that needs nothing from anywhere', () => {
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toMatch(/<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(html).not.toMatch(/<script|<link|src=|@import|url\(http/);
  });

  it('escapes text and draws segments, losses and states', () => {
    expect(html).toContain('Lab 7 &lt;test&gt;');
    expect(html).toContain('all &amp; everything');
    expect(html).toContain('FIN|ACK seq 7 ack 1 rtx');
    expect(html).toMatch(/class="seg rtx lost"/);
    expect(html).toMatch(/class="lost-mark"/);
    for (const st of ['ESTABLISHED', 'FIN_WAIT_1', 'TIME_WAIT']) expect(html).toContain(`>${st}</text>`);
  });

  it('draws one section per step window', () => {
    const mid = t.events[Math.floor(t.events.length / 2)]!.at;
    const two = renderLadderHtml(t, {
      title: 'x',
      sections: [
        { title: 'first', to: mid },
        { title: 'second', from: mid },
      ],
    });
    expect(two.match(/<svg /g)).toHaveLength(2);
  });
});
