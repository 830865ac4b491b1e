// A submission as the YAML file `lab submit` writes: the fields of submission.ts, a comment above each task
// with its title and what the walk saw, and each task's commands as a timeline a person can read and edit (a
// command of several lines as a literal block).
import { Document, isMap, isScalar, isSeq, type YAMLMap } from 'yaml';
import type { TimelineEntry } from './record.js';
import { formatTime, type Submission, type TimelineItem } from './submission.js';

export interface TaskNote {
  step: string;
  title: string;
  /** One line for the comment: "checked: met at attempt 2", "not done". */
  status: string;
}

const HEADER =
  ' tcplab submission, written by `lab submit`. Each task lists the commands typed in `lab shell` during it, on\n' +
  ' every machine, in the order they happened, up to the `lab check` that passed: at is when one started (from\n' +
  " the task's first command); exit, that it ended on its own (ended: when, if the next one had started by\n" +
  ' then); ctrl-c, when Ctrl-C ended it; none of them: still running when the check passed. When graded, each\n' +
  ' runs with bash in its machine, in this order and the same way: what was still running keeps running, and a\n' +
  ' Ctrl-C comes at its time. You may edit it: `lab grade <lab> --submission FILE` grades it as the instructor\n' +
  ' will.';

const RUNNING = ' still running when the task ended';

/** A task's timeline as the file writes it: `ended` only where the end came after the next command started
 *  (without it, an exit means "before the next one"). */
export function timelineItems(entries: TimelineEntry[]): TimelineItem[] {
  return entries.map((e, i) => {
    const item: TimelineItem = { at: formatTime(e.at) };
    item[e.node] = e.command;
    if (e.end?.by === 'ctrl-c') item['ctrl-c'] = formatTime(e.end.at);
    else if (e.end) {
      if (e.end.exit !== undefined) item.exit = e.end.exit;
      const next = entries[i + 1];
      if (e.end.at !== undefined && next !== undefined && e.end.at >= next.at) item.ended = formatTime(e.end.at);
    }
    return item;
  });
}

export function renderSubmission(s: Submission, notes: TaskNote[] = []): string {
  const ordered: Record<string, unknown> = { student: s.student, lab: s.lab, answers: {} };
  const answers = ordered.answers as Record<string, unknown>;
  for (const [step, answer] of Object.entries(s.answers ?? {})) {
    if (Array.isArray(answer)) {
      answers[step] = answer.map((e) => {
        // Machine first, then when, then how it ended: the order a reader asks in.
        const item: Record<string, unknown> = {};
        for (const key of ['client', 'server', 'firewall', 'at', 'exit', 'ended', 'ctrl-c'] as const)
          if (e[key] !== undefined) item[key] = e[key];
        return item;
      });
      continue;
    }
    const byNode: Record<string, string> = {};
    for (const [node, text] of Object.entries(answer)) if (text !== undefined) byNode[node] = text.endsWith('\n') ? text : `${text}\n`;
    answers[step] = byNode;
  }
  for (const key of ['tcplab', 'labHash', 'submittedAt'] as const) if (s[key] !== undefined) ordered[key] = s[key];
  const doc = new Document(ordered);
  doc.commentBefore = HEADER;
  const map = doc.get('answers', true);
  if (isMap(map)) {
    for (const pair of map.items) {
      const key = pair.key;
      if (!isScalar(key)) continue;
      const note = notes.find((n) => n.step === key.value);
      if (note) key.commentBefore = ` ${note.title} (${note.status})`;
      if (isSeq(pair.value)) for (const item of pair.value.items) if (isMap(item)) markRunning(item);
    }
    if (map.items.length === 0) map.flow = true;
  }
  return doc.toString({ lineWidth: 0, blockQuote: 'literal' });
}

/** "still running" said where the file says nothing of an end. */
function markRunning(item: YAMLMap): void {
  if (item.has('exit') || item.has('ended') || item.has('ctrl-c')) return;
  const at = item.get('at', true);
  if (isScalar(at)) at.comment = RUNNING;
}
