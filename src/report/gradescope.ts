// Gradescope's autograder results (results.json, per its "Autograder Specifications"): a top-level score and
// execution_time, an output for the whole run, and a test per graded item with name, score, max_score, status
// (passed/failed) and output. Test names and numbers come from the lab file, never from a run, so the same
// test has the same name for every student and every regrade.
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { Lab } from '../lab/schema.js';
import type { SubmissionResult } from '../submit/batch.js';
import { itemOutput, runOutput } from './feedback.js';
import { printableDeep } from '../printable.js';

interface GradescopeTest {
  name: string;
  number: string;
  score: number;
  max_score: number;
  status: 'passed' | 'failed';
  output: string;
  tags: string[];
}

interface GradescopeResults {
  score: number;
  execution_time: number;
  output: string;
  tests: GradescopeTest[];
  extra_data: Record<string, unknown>;
}

export function gradescopeResults(lab: Lab, r: SubmissionResult): GradescopeResults {
  const labName = `Lab ${lab.id} (${lab.slug})`;
  const tests: GradescopeTest[] = r.gradable
    ? r.tasks.flatMap((section, i) =>
        section.items.map((item, j) => ({
          name: `${item.step}: ${item.name}`,
          number: `${i + 1}.${j + 1}`,
          score: item.points,
          max_score: item.maxPoints,
          status: item.passed ? ('passed' as const) : ('failed' as const),
          output: itemOutput(item),
          tags: [section.step ?? 'lab'],
        })),
      )
    : [{ name: 'the submission can be graded', number: '0', score: 0, max_score: 0, status: 'failed', output: r.reason ?? '', tags: [] }];
  return printableDeep({
    score: r.score,
    execution_time: Math.round(r.durationMs / 1000),
    output: runOutput(r, labName),
    tests,
    extra_data: { student: r.student, file: r.file, lab: { id: lab.id, slug: lab.slug }, maxScore: r.maxScore, gradable: r.gradable },
  });
}

/**
 * The folder of a result in DIR/<folder>/results.json (Gradescope, PrairieLearn): the student's id (letters,
 * digits, . _ @ + -), or for a file that does not say who it is from, "_" and the file's name with every other
 * character made "_". A name that had to change, or is longer than 64, gets a hash of the whole name instead of
 * its tail, so that no two files share a folder and every folder's name fits a file system's 255 bytes.
 */
export function resultFolder(r: Pick<SubmissionResult, 'student' | 'file'>): string {
  if (r.student) return r.student;
  const name = basename(r.file);
  const safe = name.replace(/[^A-Za-z0-9._-]/g, '_');
  if (safe === name && name.length <= 64 && !/^\.+$/.test(name)) return `_${name}`;
  return `_${safe.slice(0, 64)}-${createHash('sha256').update(name).digest('hex').slice(0, 12)}`;
}
