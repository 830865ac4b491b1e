// Loads test/fixtures/capture/<scenario>/ (recorded from the real image by scripts/capture-fixtures.mjs):
// every tcplab-observe answer per node, in order, and the lab's addresses.
import { readFileSync } from 'node:fs';
import type { NodeName, Topology } from '../../src/lab/schema.js';
import { LabRecorder } from '../../src/trace/recorder.js';

interface CaptureFixture {
  topology: Topology;
  addresses: Partial<Record<NodeName, string[]>>;
  vars: Record<string, string>;
  answers: Partial<Record<NodeName, string[]>>;
}

export function loadCaptureFixture(name: string): CaptureFixture {
  const dir = new URL(`../fixtures/capture/${name}/`, import.meta.url);
  const lab = JSON.parse(readFileSync(new URL('lab.json', dir), 'utf8')) as Omit<CaptureFixture, 'answers'>;
  const answers: CaptureFixture['answers'] = {};
  for (const node of Object.keys(lab.addresses) as NodeName[]) {
    const text = readFileSync(new URL(`${node}.txt`, dir), 'utf8');
    answers[node] = text.split(/^### end \d+ \d+\n/m).filter((a) => a.length > 0);
  }
  return { ...lab, answers };
}

/** Feed every answer to a recorder, round by round as the engine would. */
export function record(f: CaptureFixture): LabRecorder {
  const rec = new LabRecorder(f.topology, f.addresses);
  const nodes = Object.keys(f.answers) as NodeName[];
  const rounds = Math.max(...nodes.map((n) => f.answers[n]!.length));
  for (let i = 0; i < rounds; i++) for (const n of nodes) if (f.answers[n]![i] !== undefined) rec.ingest(n, f.answers[n]![i]!);
  return rec;
}
