// What the engine reports while it works. Only the CLI renders these (text, listr2, JSON lines).
import type { NodeName } from '../lab/schema.js';
import type { Check, StepResult } from '../grade/grade.js';
import type { Socket } from '../observe/ss.js';
import type { Segment } from '../observe/segments.js';
import type { Timeline } from '../trace/timeline.js';
import type { Removed } from './teardown.js';

export type LabEvent =
  | { type: 'image'; phase: 'found' | 'building' | 'built'; tag: string }
  | { type: 'image-line'; line: string }
  | { type: 'network'; name: string; subnet: string }
  | { type: 'node'; node: NodeName; name: string; ips: string[] }
  | { type: 'ready'; instance: string; ms: number }
  | { type: 'step'; index: number; id: string; title: string; explain: string }
  /** display: the command as a person would type it (typed), or what happened in words (a Ctrl-C). */
  | { type: 'action'; node: NodeName; display: string; typed: boolean; exitCode?: number; output?: string; background: boolean }
  | { type: 'check'; check: Check }
  /** A submitted answer's command (its first line) and its output on one machine, after its task's checks (exit:
   *  its shell's status, once done; interrupted: the replay sent it the student's Ctrl-C). */
  | {
      type: 'answer';
      step: string;
      node: NodeName;
      command?: string;
      running: boolean;
      exit?: number;
      interrupted?: boolean;
      output: string;
    }
  | { type: 'observed'; node: NodeName; sockets: Socket[] }
  /** Segments a node's capture recorded since the last look (kernel clock). */
  | { type: 'segments'; node: NodeName; segments: Segment[] }
  /** The lab's time line so far, and the window of the step that just ended (kernel ms; from undefined: since
   *  the lab began): what the ladder of that step draws. */
  | { type: 'ladder'; index: number; id: string; timeline: Timeline; from?: number; to?: number }
  | { type: 'step-done'; result: StepResult }
  | { type: 'teardown'; instance: string; removed: Removed }
  | { type: 'warning'; message: string };

export type EventSink = (e: LabEvent) => void;
