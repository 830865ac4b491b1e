// Loads test/fixtures/capture/<scenario>/ (recorded from the real image by scripts/capture-fixtures.mjs):
// every look answer of each node's agent, in order, as the frames came, and the lab's addresses.
import { readFileSync } from 'node:fs';
import type { NodeName, Topology } from '../../src/lab/schema.js';
import { LabRecorder } from '../../src/trace/recorder.js';
import { decodeLook, type Look } from '../../src/observe/agent-protocol.js';
import { FrameReader } from '../../src/observe/wire.js';

interface CaptureFixture {
  topology: Topology;
  addresses: Partial<Record<NodeName, string[]>>;
  vars: Record<string, string>;
  /** Per node, each answer decoded, with the segment cursor its look asked from. */
  answers: Partial<Record<NodeName, { from: number; look: Look }[]>>;
}

export function loadCaptureFixture(name: string): CaptureFixture {
  const dir = new URL(`../fixtures/capture/${name}/`, import.meta.url);
  const lab = JSON.parse(readFileSync(new URL('lab.json', dir), 'utf8')) as Omit<CaptureFixture, 'answers'>;
  const answers: CaptureFixture['answers'] = {};
  for (const node of Object.keys(lab.addresses) as NodeName[]) {
    const lines = readFileSync(new URL(`${node}.frames`, dir), 'utf8')
      .split('\n')
      .filter(Boolean);
    answers[node] = lines.map((l) => {
      const { from, frame } = JSON.parse(l) as { from: number; frame: string };
      const [f] = new FrameReader().push(Buffer.from(frame, 'base64'));
      return { from, look: decodeLook(node, f!, from) };
    });
  }
  return { ...lab, answers };
}

/** Feed every answer to a recorder, round by round as the engine would. */
export function record(f: CaptureFixture): LabRecorder {
  const rec = new LabRecorder(f.topology, f.addresses);
  const nodes = Object.keys(f.answers) as NodeName[];
  const rounds = Math.max(...nodes.map((n) => f.answers[n]!.length));
  for (let i = 0; i < rounds; i++)
    for (const n of nodes) {
      const a = f.answers[n]![i];
      if (a) rec.ingest(n, a.look, a.from);
    }
  return rec;
}
