// A submission: one student's answers to a lab's tasks, as a YAML file a person can also write by hand.
//   student: alice            # an id from the course roster
//   lab: 2                    # id or slug
//   answers:
//     drop-syn:               # a task's step id
//       client: |             # machine: shell lines, run with sh inside that machine only
//         iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP
// The schema lives here, in one place; loading follows the lab files' stages (bytes -> YAML with positions ->
// schema -> rules against the lab being graded), and every problem comes out with file:line.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Problem } from '../errors.js';
import type { AnswerScript } from '../lab/answer-script.js';
import { readLimitedText, readYaml, schemaProblems, sortProblems } from '../lab/load.js';
import { NODE_NAMES, type Lab, type NodeName } from '../lab/schema.js';
import { nodesOf } from '../lab/topology.js';
import { STUDENT_ID, STUDENT_ID_RULE } from '../identity.js';

const MAX_SUBMISSION_BYTES = 64 * 1024;
/** One machine's answer to one task. */
const MAX_ANSWER_CHARS = 16 * 1024;

const StepId = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'a step id: lower-case letters, digits and dashes');

export const SubmissionSchema = z
  .strictObject({
    $schema: z.string().optional(),
    student: z.string().regex(STUDENT_ID, `a student id: ${STUDENT_ID_RULE}`).describe('The id from the course roster.'),
    lab: z
      // "2" in quotes is still lab 2.
      .preprocess(
        (v) => (typeof v === 'string' && /^\d{1,3}$/.test(v) ? Number(v) : v),
        z.union([z.number().int().min(1).max(999), StepId]),
      )
      .describe('The lab these answers are for: its number or its slug.'),
    answers: z
      .record(
        StepId,
        z.partialRecord(
          z.enum(NODE_NAMES),
          z
            .string()
            .max(MAX_ANSWER_CHARS, `at most ${MAX_ANSWER_CHARS} characters per machine`)
            .refine((s) => !s.includes('\0'), 'no NUL characters'),
        ),
      )
      .optional()
      .describe(
        "Per task (its step id), per machine: shell lines, run with sh inside that machine. The lab's addresses ({{server.ip}}, {{net.lan}}) are filled in; {{variant.NAME}} is not: an answer uses the student's own values as written.",
      ),
    tcplab: z.string().max(40).optional().describe('The tcplab version that wrote the file (lab submit).'),
    labHash: z
      .string()
      .regex(/^sha256:[0-9a-f]{64}$/, 'sha256: and 64 hex digits')
      .optional()
      .describe('The content hash of the lab file the student worked with.'),
    submittedAt: z.string().max(40).optional(),
  })
  .describe('A tcplab submission: one student, one lab.');

export type Submission = z.infer<typeof SubmissionSchema>;

/** A submission's answers, per task step id. */
export function answersOf(s: Submission): Record<string, AnswerScript[]> {
  const out: Record<string, AnswerScript[]> = {};
  for (const [step, byNode] of Object.entries(s.answers ?? {})) {
    out[step] = Object.entries(byNode)
      .filter((e): e is [NodeName, string] => typeof e[1] === 'string')
      .map(([node, script]) => ({ node, script }));
  }
  return out;
}

/** "sha256:<hex>" of a lab file's bytes: a submission records it, and grading compares. */
export function labHash(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

type Loaded = { ok: true; submission: Submission } | { ok: false; student?: string; problems: Problem[] };

/** Read and check a submission file against the lab being graded. Never throws for a bad file. */
export function loadSubmission(file: string, lab: Lab): Loaded {
  const text = readLimitedText(file, MAX_SUBMISSION_BYTES, 'a submission');
  if (typeof text !== 'string') return { ok: false, problems: [text.problem] };
  return validateSubmissionText(text, lab);
}

export function validateSubmissionText(text: string, lab: Lab): Loaded {
  const read = readYaml(text, 'a submission is a mapping with student, lab and answers');
  if (!read.doc) return { ok: false, problems: read.problems };
  const { data, locate } = read.doc;
  // The student, when it can be read at all, names the student in the reports even if the rest is broken.
  const student = typeof data.student === 'string' && STUDENT_ID.test(data.student) ? data.student : undefined;
  const parsed = SubmissionSchema.safeParse(data);
  if (!parsed.success)
    return { ok: false, ...(student ? { student } : {}), problems: sortProblems(schemaProblems(parsed.error.issues, read.doc)) };
  const s = parsed.data;
  const problems: Problem[] = [];
  if (s.lab !== lab.id && s.lab !== lab.slug)
    problems.push(locate({ path: ['lab'], message: `this submission is for lab ${s.lab}, not lab ${lab.id} (${lab.slug})` }));
  const tasks = new Set(lab.steps.filter((st) => st.task).map((st) => st.id));
  const machines = new Set<string>(nodesOf(lab.topology ?? 'direct').map((n) => n.name));
  for (const [step, byNode] of Object.entries(s.answers ?? {})) {
    if (!tasks.has(step)) {
      const known = [...tasks].join(', ') || 'none';
      const what = lab.steps.some((st) => st.id === step) ? `step '${step}' has no task` : `lab ${lab.id} has no step '${step}'`;
      problems.push(locate({ path: ['answers', step], message: `${what}; its tasks are ${known}` }));
      continue;
    }
    for (const node of Object.keys(byNode)) {
      if (!machines.has(node))
        problems.push(
          locate({ path: ['answers', step, node], message: `lab ${lab.id} has no ${node} (it has ${[...machines].join(', ')})` }),
        );
    }
  }
  if (problems.length) return { ok: false, student: s.student, problems: sortProblems(problems) };
  return { ok: true, submission: s };
}
