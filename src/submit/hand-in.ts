// What a student hands in, from what their walk recorded of each task: the submission file's text (the timeline
// of every task, src/submit/render.ts) and what it holds. `lab submit` writes it; `lab serve` can write the same.
import type { Lab } from '../lab/schema.js';
import { LabError, formatProblem } from '../errors.js';
import type { TimelineEntry } from './record.js';
import { renderSubmission, timelineItems, type TaskNote } from './render.js';
import { MAX_ANSWER_CHARS, MAX_SUBMISSION_BYTES, MAX_TIMELINE_ENTRIES, validateSubmissionText, type Submission } from './submission.js';

/** One task as a walk recorded it (src/walk/state-files.ts TaskWork has this shape). */
interface RecordedTask {
  title: string;
  passed: boolean;
  attempts: number;
  solvedByTcplab?: boolean;
  /** Per machine, the older form: what a record of an older tcplab holds. */
  answer: { node: string; lines: string[] }[];
  /** Every command of the task in the order it started, with how it ended. */
  timeline?: TimelineEntry[];
}

interface HandIn {
  text: string;
  submission: Submission;
  /** Tasks with commands, and tasks without. */
  tasks: string[];
  missing: string[];
}

/** The file for a student's recorded tasks. What it returns loads as the grader will load it, or this throws (a
 *  bug: what tcplab writes must be readable by tcplab). */
export function handIn(
  lab: Lab,
  student: string,
  tasks: Record<string, RecordedTask | undefined>,
  meta: { tcplab: string; labHash?: string; submittedAt: string },
): HandIn {
  const answers: NonNullable<Submission['answers']> = {};
  for (const st of lab.steps) {
    const t = tasks[st.id];
    if (!st.task || !t) continue;
    if (t.timeline) {
      if (t.timeline.length) answers[st.id] = timelineItems(t.timeline);
    } else if (t.answer.length) answers[st.id] = Object.fromEntries(t.answer.map((a) => [a.node, a.lines.join('\n') + '\n']));
  }
  const submission: Submission = {
    student,
    lab: lab.id,
    answers,
    tcplab: meta.tcplab,
    ...(meta.labHash ? { labHash: meta.labHash } : {}),
    submittedAt: meta.submittedAt,
  };
  const notes: TaskNote[] = lab.steps
    .filter((st) => st.task && tasks[st.id])
    .map((st) => {
      const t = tasks[st.id]!;
      const status = t.passed
        ? `lab check passed at attempt ${t.attempts}`
        : t.solvedByTcplab
          ? 'not done: tcplab showed the solution'
          : `not done: ${t.attempts} lab check attempt${t.attempts === 1 ? '' : 's'}`;
      return { step: st.id, title: st.title, status };
    });
  const text = renderSubmission(submission, notes);
  const check = validateSubmissionText(text, lab);
  // More commands, or longer ones, than a submission holds: the student's record, not a bug, and it is said so.
  const tooBig = (why: string) =>
    new LabError(
      `the commands recorded for lab ${lab.id} do not fit in a submission: ${why}`,
      `a submission holds at most ${MAX_TIMELINE_ENTRIES} commands per task, ${MAX_ANSWER_CHARS} characters per command and ${MAX_SUBMISSION_BYTES} bytes in all: do the task again in a new walk, with fewer or shorter commands`,
    );
  if (!check.ok) {
    if (check.problems.every((p) => p.path.startsWith('answers.')))
      throw tooBig(check.problems.map((p) => `${p.path}: ${p.message}`).join('; '));
    throw new Error(`tcplab wrote a submission that does not load: ${check.problems.map((p) => formatProblem('-', p)).join('; ')}`);
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_SUBMISSION_BYTES) throw tooBig(`the file would have ${bytes} bytes`);
  return {
    text,
    submission: check.submission,
    tasks: Object.keys(answers),
    missing: lab.steps.filter((st) => st.task && !answers[st.id]).map((st) => st.id),
  };
}
