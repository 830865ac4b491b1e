// A submission: one student's answers to a lab's tasks, as a YAML file a person can also read and write by hand.
//   student: alice            # an id from the course roster
//   lab: 7                    # id or slug
//   answers:
//     your-turn:              # a task's step id: what was typed, in the order it happened, on every machine
//       - firewall: iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP
//         at: 0s              # when it started, from the task's first command
//         exit: 0             # it ended on its own, with this status (ended: when, if not before the next)
//       - server: nc -l 5556
//         at: 6.2s
//         ctrl-c: 19.8s       # Ctrl-C ended it then
//       - client: nc {{server.ip}} 5556
//         at: 12.5s           # no exit, no ctrl-c: still running when the task ended
// The older form, per machine one block of shell lines (`client: |`), still loads and grades as it always did.
// The schema lives here, in one place; loading follows the lab files' stages (bytes -> YAML with positions ->
// schema -> rules against the lab being graded), and every problem comes out with file:line.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Problem } from '../errors.js';
import type { AnswerEnd, AnswerScript } from '../lab/answer-script.js';
import { parseDuration } from '../lab/duration.js';
import { readLimitedText, readYaml, schemaProblems, sortProblems } from '../lab/load.js';
import { DURATION_PATTERN, NODE_NAMES, type Lab, type NodeName } from '../lab/schema.js';
import { nodesOf } from '../lab/topology.js';
import { STUDENT_ID, STUDENT_ID_RULE } from '../identity.js';

export const MAX_SUBMISSION_BYTES = 64 * 1024;
/** One machine's answer to one task. */
export const MAX_ANSWER_CHARS = 16 * 1024;

const StepId = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'a step id: lower-case letters, digits and dashes');
/** Commands of one task's timeline. */
export const MAX_TIMELINE_ENTRIES = 500;

const Lines = z
  .string()
  .max(MAX_ANSWER_CHARS, `at most ${MAX_ANSWER_CHARS} characters per machine`)
  .refine((s) => !s.includes('\0'), 'no NUL characters');

/** The older form: per machine, one block of shell lines, run with sh. */
const ByMachine = z.partialRecord(z.enum(NODE_NAMES), Lines);

const TIME_RULE = "a time from the task's first command, with its unit: 0s, 4.25s, 800ms or 2m";
const Time = z
  .string({ error: TIME_RULE })
  .regex(DURATION_PATTERN, TIME_RULE)
  .describe("A time from the task's first command: 0s, 4.25s, 800ms, 2m.");

const EXIT_RULE = 'an exit status: a whole number from 0 to 255 (0: it succeeded)';
/** The keys an entry of a timeline may have, for a key that is not one of them. */
const ENTRY_KEYS = 'an entry has one of client, server, firewall (the command), and at, exit, ended or ctrl-c';

/** One command of the timeline: the machine it was typed on, with the command, and when and how it ended. */
const Entry = z
  .strictObject({
    client: Lines.optional(),
    server: Lines.optional(),
    firewall: Lines.optional(),
    at: Time.optional().describe('When it started. Without it: right after the entry above has finished or is waiting.'),
    exit: z
      .number({ error: EXIT_RULE })
      .int(EXIT_RULE)
      .min(0, EXIT_RULE)
      .max(255, EXIT_RULE)
      .optional()
      .describe('It ended on its own, with this exit status.'),
    ended: Time.optional().describe('When it ended on its own. Without it (with exit): before the next entry started.'),
    'ctrl-c': Time.optional().describe('Ctrl-C ended it, at this time: the replay sends it SIGINT then.'),
  })
  .describe(
    'One command line as typed in `lab shell` on one machine (client, server or firewall: exactly one), run with bash in a shell of its own. Without exit, ended or ctrl-c it is still running when the task ends.',
  );

/** One entry of a task's timeline as the file holds it. */
export type TimelineItem = z.infer<typeof Entry>;

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
      .record(StepId, z.union([z.array(Entry).max(MAX_TIMELINE_ENTRIES), ByMachine]))
      .optional()
      .describe(
        "Per task (its step id): the commands typed, in the order they happened, each on its machine and with how it ended (a list, what lab submit writes); or per machine, shell lines run with sh inside that machine (the older form). The lab's addresses ({{server.ip}}, {{net.lan}}) are filled in; {{variant.NAME}} is not: an answer uses the student's own values as written.",
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

/** The machine an entry of a timeline names (validation has made sure there is exactly one). */
function machineOf(e: TimelineItem): NodeName | undefined {
  return NODE_NAMES.find((n) => e[n] !== undefined);
}

/** A submission's answers, per task step id, as the replay takes them (times in ms). */
export function answersOf(s: Submission): Record<string, AnswerScript[]> {
  const out: Record<string, AnswerScript[]> = {};
  for (const [step, answer] of Object.entries(s.answers ?? {})) {
    if (Array.isArray(answer)) {
      out[step] = answer.flatMap((e) => {
        const node = machineOf(e);
        if (!node) return [];
        const end: AnswerEnd | undefined =
          e['ctrl-c'] !== undefined
            ? { by: 'ctrl-c', at: parseDuration(e['ctrl-c']) }
            : e.exit !== undefined || e.ended !== undefined
              ? {
                  by: 'exit',
                  ...(e.exit !== undefined ? { exit: e.exit } : {}),
                  ...(e.ended !== undefined ? { at: parseDuration(e.ended) } : {}),
                }
              : undefined;
        return [
          {
            node,
            script: e[node]!,
            shell: 'bash' as const,
            ...(e.at !== undefined ? { at: parseDuration(e.at) } : {}),
            ...(end ? { end } : {}),
          },
        ];
      });
    } else
      out[step] = Object.entries(answer)
        .filter((e): e is [NodeName, string] => typeof e[1] === 'string')
        .map(([node, script]) => ({ node, script }));
  }
  return out;
}

/** Every command text of a submission (both forms), for what a grader looks for in them. */
export function answerTexts(s: Submission): string[] {
  return Object.values(s.answers ?? {}).flatMap((answer) =>
    Array.isArray(answer) ? answer.flatMap((e) => NODE_NAMES.flatMap((n) => e[n] ?? [])) : Object.values(answer).flatMap((t) => t ?? []),
  );
}

/** "sha256:<hex>" of a lab file's bytes: a submission records it, and grading compares. */
export function labHash(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

type Loaded = { ok: true; submission: Submission } | { ok: false; student?: string; problems: Problem[] };

/** Read and check a submission file against the lab being graded. Never throws for a bad file. */
export function loadSubmission(file: string, lab: Lab): Loaded {
  const text = readLimitedText(file, MAX_SUBMISSION_BYTES, 'a submission', { noSymlink: true });
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
  if (!parsed.success) {
    // An unknown key in a timeline's entry (end:, ctrl_c:) says which keys there are.
    const problems = schemaProblems(parsed.error.issues, read.doc).map((p) =>
      /^answers\.[^.[]+\[\d+\]$/.test(p.path) && p.message.startsWith('unknown key') ? { ...p, message: `${p.message}: ${ENTRY_KEYS}` } : p,
    );
    return { ok: false, ...(student ? { student } : {}), problems: sortProblems(problems) };
  }
  const s = parsed.data;
  const problems: Problem[] = [];
  if (s.lab !== lab.id && s.lab !== lab.slug)
    problems.push(locate({ path: ['lab'], message: `this submission is for lab ${s.lab}, not lab ${lab.id} (${lab.slug})` }));
  const tasks = new Set(lab.steps.filter((st) => st.task).map((st) => st.id));
  const machines = new Set<string>(nodesOf(lab.topology ?? 'direct').map((n) => n.name));
  const machineList = () => [...machines].join(', ');
  for (const [step, answer] of Object.entries(s.answers ?? {})) {
    if (!tasks.has(step)) {
      const known = [...tasks].join(', ') || 'none';
      const what = lab.steps.some((st) => st.id === step) ? `step '${step}' has no task` : `lab ${lab.id} has no step '${step}'`;
      problems.push(locate({ path: ['answers', step], message: `${what}; its tasks are ${known}` }));
      continue;
    }
    if (!Array.isArray(answer)) {
      for (const node of Object.keys(answer)) {
        if (!machines.has(node))
          problems.push(locate({ path: ['answers', step, node], message: `lab ${lab.id} has no ${node} (it has ${machineList()})` }));
      }
      continue;
    }
    let before: number | undefined;
    answer.forEach((e, i) => {
      const path = ['answers', step, i];
      const named = NODE_NAMES.filter((n) => e[n] !== undefined);
      if (named.length !== 1)
        problems.push(
          locate({
            path,
            message: `an entry names one machine with its command (${machineList()}: the command); this one names ${named.length ? named.join(' and ') : 'none'}`,
          }),
        );
      for (const node of named)
        if (!machines.has(node))
          problems.push(locate({ path: [...path, node], message: `lab ${lab.id} has no ${node} (it has ${machineList()})` }));
      if (e['ctrl-c'] !== undefined && (e.exit !== undefined || e.ended !== undefined))
        problems.push(
          locate({ path: [...path, 'ctrl-c'], message: 'a command ends one way: by ctrl-c, or on its own (exit, ended); not both' }),
        );
      const at = e.at !== undefined ? parseDuration(e.at) : undefined;
      if (at !== undefined) {
        if (before !== undefined && at < before)
          problems.push(
            locate({
              path: [...path, 'at'],
              message: `at ${e.at} is before the entry above it (${formatTime(before)}): the list is in the order things happened`,
            }),
          );
        before = at;
        for (const key of ['ctrl-c', 'ended'] as const) {
          const t = e[key];
          if (t !== undefined && parseDuration(t) < at)
            problems.push(locate({ path: [...path, key], message: `${key} ${t} is before the command started (at ${e.at})` }));
        }
      }
    });
  }
  if (problems.length) return { ok: false, student: s.student, problems: sortProblems(problems) };
  return { ok: true, submission: s };
}

/** ms as a time the file uses: 0s, 4.25s, 12.5s (to the millisecond, no trailing zeros). */
export function formatTime(ms: number): string {
  return `${Number((Math.min(999_999_000, Math.max(0, Math.round(ms))) / 1000).toFixed(3))}s`;
}
