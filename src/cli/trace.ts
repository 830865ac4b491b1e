// `lab grade --trace DIR`: what an instructor keeps of a run, per lab in DIR/<slug>/: <node>.pcap for each
// machine (tcpdump -r, Wireshark), ladder.txt and ladder.html (the ladder per step, the page opens offline).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabEvent } from '../engine/events.js';
import type { Instance } from '../engine/instance.js';
import type { LabResult } from '../grade/grade.js';
import { renderLadder } from '../report/ladder-text.js';
import { renderLadderHtml, type LadderSection } from '../report/ladder-html.js';
import { writePcap } from '../report/pcap.js';

const TEXT_WIDTH = 110;

/** Collects each step's title and time window from the engine's events, for the per-step ladders. */
export class StepWindows {
  readonly sections: LadderSection[] = [];
  private titles = new Map<number, string>();

  readonly onEvent = (e: LabEvent): void => {
    if (e.type === 'step') this.titles.set(e.index, `Step ${e.index + 1}: ${e.title}`);
    if (e.type === 'ladder')
      this.sections.push({
        title: this.titles.get(e.index) ?? e.id,
        ...(e.from !== undefined ? { from: e.from } : {}),
        ...(e.to !== undefined ? { to: e.to } : {}),
      });
  };
}

/** Write the trace of one finished run; returns the files written. */
export function writeTrace(dir: string, instance: Instance, result: LabResult, sections: LadderSection[]): string[] {
  const out = join(dir, result.lab.slug);
  mkdirSync(out, { recursive: true });
  const files: string[] = [];
  const write = (name: string, data: string | Buffer) => {
    const f = join(out, name);
    writeFileSync(f, data);
    files.push(f);
  };
  for (const n of instance.plan.nodes) write(`${n.key}.pcap`, writePcap(instance.recorder.segmentsOf(n.key)));
  const t = instance.timeline();
  const title = `Lab ${result.lab.id}: ${result.lab.title}`;
  const verdict = `${result.passed ? 'passed' : 'FAILED'}, ${result.score.passed}/${result.score.total} checks; instance ${result.instance}`;
  const dropped = instance.recorder.droppedSegments + instance.recorder.gaps;
  const note = dropped ? `\n(${dropped} segments were not kept: the store keeps the first and the latest.)\n` : '';
  const text = (sections.length ? sections : [{ title: 'The whole run' } as LadderSection])
    .map(
      (s) =>
        `── ${s.title} ──\n${renderLadder(t, { width: TEXT_WIDTH, ...(s.from !== undefined ? { from: s.from } : {}), ...(s.to !== undefined ? { to: s.to } : {}) })}`,
    )
    .join('\n');
  write('ladder.txt', `${title}\n${verdict}${note}\n\n${text}`);
  write('ladder.html', renderLadderHtml(t, { title, subtitle: verdict, sections }));
  return files;
}
