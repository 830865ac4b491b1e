// A submission as the YAML file `lab submit` writes: the fields of submission.ts, a comment above each task
// with its title and what the walk saw, and each machine's lines as a literal block a person can edit.
import { Document, isMap, isScalar } from 'yaml';
import type { Submission } from './submission.js';

export interface TaskNote {
  step: string;
  title: string;
  /** One line for the comment: "checked: met at attempt 2", "not done". */
  status: string;
}

export function renderSubmission(s: Submission, notes: TaskNote[] = []): string {
  const ordered: Record<string, unknown> = { student: s.student, lab: s.lab, answers: {} };
  const answers = ordered.answers as Record<string, Record<string, string>>;
  for (const [step, byNode] of Object.entries(s.answers ?? {})) {
    answers[step] = {};
    for (const [node, text] of Object.entries(byNode))
      if (text !== undefined) answers[step][node] = text.endsWith('\n') ? text : `${text}\n`;
  }
  for (const key of ['tcplab', 'labHash', 'submittedAt'] as const) if (s[key] !== undefined) ordered[key] = s[key];
  const doc = new Document(ordered);
  doc.commentBefore =
    ' tcplab submission, written by `lab submit`. Each task lists, per machine, the commands typed in `lab shell`\n' +
    ' during that task, up to the `lab check` that passed; they run with sh inside that machine when graded.\n' +
    ' You may edit them: `lab grade <lab> --submission FILE` grades this file as the instructor will.';
  const map = doc.get('answers', true);
  if (isMap(map)) {
    for (const pair of map.items) {
      const key = pair.key;
      if (!isScalar(key)) continue;
      const note = notes.find((n) => n.step === key.value);
      if (note) key.commentBefore = ` ${note.title} (${note.status})`;
    }
    if (map.items.length === 0) map.flow = true;
  }
  return doc.toString({ lineWidth: 0, blockQuote: 'literal' });
}
