// An answer to a task, as the engine runs it: below both the engine (which runs it) and src/submit (which reads
// it from a student's file), so neither imports the other for it.
import type { NodeName } from './schema.js';

/** How a command ended when the student ran it (times in ms from the answer's first command). */
export type AnswerEnd =
  /** It ended on its own, with this status; at: when (absent: before the next command started). */
  | { by: 'exit'; exit?: number; at?: number }
  /** The student pressed Ctrl-C: bash reported it ended by SIGINT (status 130). */
  | { by: 'ctrl-c'; at: number };

/**
 * One command of an answer (a submission's timeline), or one machine's lines (a file in the older per-machine
 * form), in the order the submission gives them: the order they are started in.
 */
export interface AnswerScript {
  node: NodeName;
  script: string;
  /** When the student started it: ms from the answer's first command. Absent: as soon as the one before has
   *  settled (a file in the per-machine form, or an entry written by hand without a time). */
  at?: number;
  /** How it ended; absent: it was still running when the task ended (or the file does not say). */
  end?: AnswerEnd;
  /** The shell that reads it: bash for a timeline (what `lab shell` runs), sh for the per-machine form. */
  shell?: 'bash' | 'sh';
}
