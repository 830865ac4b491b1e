// PrairieLearn's external grader results (results.json, per its "External Grading" page): gradable, a score
// from 0 to 1, a message and an output for the whole run, and tests with name, description, points,
// max_points, message and output. A submission that cannot be graded is gradable: false with its problems in
// format_errors, which PrairieLearn shows without costing the student an attempt.
import type { Lab } from '../lab/schema.js';
import type { SubmissionResult } from '../submit/batch.js';
import { clip, itemOutput, runOutput } from './feedback.js';
import { printableDeep } from '../printable.js';

interface PrairieLearnTest {
  name: string;
  description: string;
  points: number;
  max_points: number;
  message: string;
  output: string;
}

type PrairieLearnResults =
  | { gradable: true; score: number; message: string; output: string; tests: PrairieLearnTest[] }
  | { gradable: false; message: string; format_errors: string[] };

export function prairieLearnResults(lab: Lab, r: SubmissionResult): PrairieLearnResults {
  const labName = `Lab ${lab.id} (${lab.slug})`;
  if (!r.gradable) {
    return printableDeep({
      gradable: false,
      message: `${labName}: this submission could not be graded`,
      format_errors: clip(r.reason ?? '').split('\n'),
    });
  }
  const tests = r.tasks.flatMap((section) =>
    section.items.map((item) => ({
      name: `${item.step}: ${item.name}`,
      description: item.checks.map((c) => c.why).find((w) => w) ?? section.title,
      points: item.points,
      max_points: item.maxPoints,
      message: item.passed ? 'met' : item.checks.some((c) => !c.ran) ? 'not checked: something before it failed' : 'not met',
      output: itemOutput(item),
    })),
  );
  return printableDeep({
    gradable: true,
    // PrairieLearn wants a fraction; a lab whose tasks are worth nothing is all or nothing.
    score: r.maxScore > 0 ? Math.min(1, Math.max(0, r.score / r.maxScore)) : r.passed ? 1 : 0,
    message: `${r.score}/${r.maxScore} points`,
    output: runOutput(r, labName),
    tests,
  });
}
