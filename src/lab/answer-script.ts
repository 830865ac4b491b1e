// An answer to a task, as the engine runs it: below both the engine (which runs it) and src/submit (which reads
// it from a student's file), so neither imports the other for it.
import type { NodeName } from './schema.js';

/** One machine's part of an answer, in the order the submission gives them (the order they are started in). */
export interface AnswerScript {
  node: NodeName;
  script: string;
}
