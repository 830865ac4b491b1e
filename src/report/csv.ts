// The gradebook: a header and one row per submission, a column per task (its points: the task and the steps
// after it, src/grade/score.ts), the total and the maximum, why a task scored less than its maximum (which
// checks), and a note. RFC 4180 quoting; a text cell that a spreadsheet would run as a formula (= + - @ at its
// start) gets a leading apostrophe; control characters are shown escaped (\x1b).
// Shards (lab grade --shard K/N) write the same header, so their files merge by keeping one header:
//   head -n 1 shard-1.csv > gradebook.csv && tail -q -n +2 shard-*.csv >> gradebook.csv
import type { Lab } from '../lab/schema.js';
import { taskSteps } from '../grade/score.js';
import type { SubmissionResult } from '../submit/batch.js';
import { printable } from '../printable.js';
import { sectionWhy } from './feedback.js';

function cell(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  let s = printable(v.replace(/\r\n/g, '\n'));
  if (/^[=+\-@\t]/.test(s)) s = `'${s}`;
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function gradebookHeader(lab: Lab): string[] {
  return ['student', ...taskSteps(lab).map((s) => s.id), 'total', 'max', 'passed', 'gradable', 'file', 'why', 'note'];
}

export function renderGradebook(lab: Lab, results: SubmissionResult[]): string {
  const tasks = taskSteps(lab).map((s) => s.id);
  const rows = [gradebookHeader(lab).map(cell).join(',')];
  for (const r of results) {
    const byTask = new Map(r.tasks.map((t) => [t.step, t.score]));
    const note = r.reason ?? [r.error, ...(r.warnings ?? [])].filter(Boolean).join(' | ');
    rows.push(
      [
        r.student,
        ...tasks.map((t) => (r.gradable ? (byTask.get(t) ?? 0) : null)),
        r.score,
        r.maxScore,
        r.passed,
        r.gradable,
        r.file,
        // Which checks a score below the maximum comes from: partial credit earned, the first check not met.
        r.tasks.map(sectionWhy).filter(Boolean).join(' | ') || null,
        note || null,
      ]
        .map(cell)
        .join(','),
    );
  }
  return rows.join('\r\n') + '\r\n';
}
