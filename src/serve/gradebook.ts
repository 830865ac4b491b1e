// The gradebook from live work, in the formats `lab grade --submissions` writes (CSV, JUnit, Gradescope,
// PrairieLearn), with the same renderers (src/report) and the same points (src/grade/score.ts): a student's
// live run is scored as a submission's run is. On request, each student's recorded commands become a
// submission file and are replayed through the same grader (src/submit/batch.ts), in fresh instances.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../lab/schema.js';
import { maxScoreOf, scoreLab } from '../grade/score.js';
import type { StepResult } from '../grade/grade.js';
import { renderGradebook } from '../report/csv.js';
import { renderSubmissionsJunit } from '../report/junit.js';
import { gradescopeResults } from '../report/gradescope.js';
import { prairieLearnResults } from '../report/prairielearn.js';
import { labHash } from '../submit/submission.js';
import { handIn } from '../submit/hand-in.js';
import type { SubmissionResult } from '../submit/batch.js';
import { printableDeep } from '../printable.js';
import type { LabWork } from '../walk/state-files.js';
import type { LabRecord, StudentRecord } from './store.js';

/** One student's live run of a lab as a submission's result: scored from the checks their walk made. */
export function liveResult(lab: Lab, student: StudentRecord, rec: LabRecord | undefined): SubmissionResult {
  const results: StepResult[] = rec?.results ?? [];
  const done = !!rec?.finished;
  // A walk that has not reached the end is graded as far as it got: the checks it did not reach are not met,
  // and say so (the lab has not stopped: the student is still on it, or left it before the end).
  const s = scoreLab(lab, results, undefined, done || !rec ? {} : { settled: "the student's walk has not reached this step" });
  return printableDeep({
    student: student.id,
    file: 'live',
    gradable: !!rec,
    ...(rec ? {} : { reason: 'not started' }),
    passed: done && s.passed,
    score: s.score,
    maxScore: rec ? s.maxScore : maxScoreOf(lab),
    tasks: rec ? s.sections.filter((x) => x.step !== null) : [],
    durationMs: 0,
    ...(rec && !done ? { error: notFinished(results.length, lab.steps.length) } : {}),
  });
}

/** Why a live run is not passed yet, whatever its points. */
function notFinished(done: number, steps: number): string {
  return done >= steps
    ? `not finished: every step done, but the walk not ended (Finish the lab)`
    : `not finished: ${done} of ${steps} steps done`;
}

export interface ExportedFiles {
  dir: string;
  csv: string;
  junit: string;
}

/** Every format into one folder: gradebook.csv, junit.xml, gradescope/<student>/results.json, prairielearn/.... */
export function writeExports(dir: string, lab: Lab, results: SubmissionResult[]): ExportedFiles {
  mkdirSync(dir, { recursive: true });
  const csv = join(dir, 'gradebook.csv');
  const junit = join(dir, 'junit.xml');
  writeFileSync(csv, renderGradebook(lab, results));
  writeFileSync(junit, renderSubmissionsJunit(lab, results));
  for (const [format, doc] of [
    ['gradescope', (r: SubmissionResult) => gradescopeResults(lab, r)],
    ['prairielearn', (r: SubmissionResult) => prairieLearnResults(lab, r)],
  ] as const) {
    for (const r of results) {
      if (!r.student) continue;
      mkdirSync(join(dir, format, r.student), { recursive: true });
      writeFileSync(join(dir, format, r.student, 'results.json'), JSON.stringify(doc(r), null, 2) + '\n');
    }
  }
  return { dir, csv, junit };
}

/** A student's recorded commands of a lab as a submission file (what `lab submit` would write). */
export function submissionText(lab: Lab, labText: string, student: string, work: LabWork, version: string): string {
  // The student's own work only: a task tcplab did for them is no answer of theirs. The rest is what `lab submit`
  // hands in: each task's timeline (or, from an older record, its lines per machine).
  const tasks = Object.fromEntries(Object.entries(work.tasks).filter(([, t]) => !t?.solvedByTcplab));
  return handIn(lab, student, tasks, { tcplab: version, labHash: labHash(labText), submittedAt: new Date().toISOString() }).text;
}
