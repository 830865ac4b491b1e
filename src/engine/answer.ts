// A student's answer to a task, replayed in place of the task's solution (`lab grade --submissions`).
// Each machine's lines run with `sh -c` inside that machine only, as the student: root with NET_ADMIN and
// NET_RAW and nothing else (tcplab-agent student), exactly what `lab shell` gives. They start in the order the
// submission gives them and keep running, as they ran in the student's shells: a listener typed in one `lab
// shell` keeps listening while the client in another connects. The next machine's lines start once the
// previous machine's have finished or are waiting (a listener in accept()). Then the task's expectations are
// polled as for any step.
//
// The lines are untrusted, and so is everything they print. They get the node's capabilities, its memory and
// pids limits and its read-only root, nothing from the host: they travel as one argv element through the
// Docker API and only the node's own sh parses them. Their output and exit status come back on the exec's
// own stream, kept by the engine (bounded), never read from a file in the node; and they cannot reach the
// agent, the lab's commands or what the grader reads (tcplab-agent.c says why). On top of that:
//   - a time limit per task: `timeout` kills the whole process group (a fork bomb's too) after it;
//   - they run niced, so an endless loop yields the CPU to every other lab on the host;
//   - their output is bounded: the first and the last 32 KiB are kept, the rest read and dropped.
import type { NodeName } from '../lab/schema.js';
import { fill } from '../lab/templates.js';
import type { AnswerScript } from '../lab/answer-script.js';
import type { ExecSession } from '../runtime/runtime.js';
import { BoundedOutput } from '../runtime/bounded-output.js';
import type { EventSink } from './events.js';
import { studentArgv } from '../observe/agent-protocol.js';

/** How long a submitted answer may run per task when the lab does not say (task.timeout). */
export const DEFAULT_ANSWER_TIMEOUT_MS = 30_000;
/**
 * When to start the next machine's lines (or poll the task's checks): once this machine's have finished, or
 * are all waiting (a listener in accept(), a client connected), or at the latest after this long. "Waiting" is
 * no process of the machine runnable for two looks in a row (the agent counts them): a command still running,
 * or still queued for a CPU on a busy host, is not done yet, so no fixed pause can be too short under load or
 * needlessly long idle.
 */
const SETTLE_CAP_MS = 5_000;
const SETTLE_LOOK_MS = 20;
const OUTPUT_HALF = 32 * 1024;

export interface AnswerHost {
  /** Start argv in a node as the student, its standard input an open pipe (a terminal nobody types in). */
  startStudent(node: NodeName, argv: string[]): Promise<ExecSession>;
  /** How many processes of the node are runnable (the agent's count), or undefined if it cannot tell. */
  busy(node: NodeName): Promise<number | undefined>;
  sleep(ms: number): Promise<void>;
  now(): number;
  vars: Record<string, string>;
  emit: EventSink;
}

/** One machine's part of an answer, running. */
export interface RunningAnswer {
  node: NodeName;
  session: ExecSession;
  output: BoundedOutput;
  /** Settles with its exit code (undefined if the engine could not tell) once its shell has ended. */
  ended: Promise<number | undefined>;
  done: boolean;
  exit?: number;
}

/** The variables an answer's text may use: the lab's addresses, never the student's variants. A variant
 *  written as a template would fit every student; an answer is graded as written. */
function answerVars(vars: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(vars).filter(([k]) => !k.startsWith('variant.')));
}

/**
 * Start every machine's part of an answer. Returns the running parts, or a reason when one could not even be
 * started (the machine refused: a fork bomb left by an earlier task, say), which fails the task like a failed
 * command.
 */
export async function startAnswer(
  host: AnswerHost,
  scripts: AnswerScript[],
  timeoutMs: number,
): Promise<{ running: RunningAnswer[]; failed?: { node: NodeName; message: string } }> {
  const secs = (timeoutMs / 1000).toFixed(3);
  const running: RunningAnswer[] = [];
  for (const { node, script } of scripts) {
    const lines = fill(script, answerVars(host.vars));
    host.emit({ type: 'action', node, display: `(answer) ${firstLine(lines)}`, typed: true, background: true });
    let session: ExecSession;
    try {
      session = await host.startStudent(node, studentArgv(['timeout', '-k', '2', secs, 'nice', '-n', '10', 'sh', '-c', lines]));
    } catch (e) {
      return { running, failed: { node, message: `the answer could not start on ${node}: ${(e as Error).message}` } };
    }
    const output = new BoundedOutput(OUTPUT_HALF, OUTPUT_HALF);
    session.onStdout((b) => output.push(b));
    session.onStderr((b) => output.push(b));
    const part: RunningAnswer = {
      node,
      session,
      output,
      done: false,
      ended: new Promise<number | undefined>((resolve) => session.onClose(() => resolve(session.exitCode()))),
    };
    void part.ended.then((code) => {
      part.done = true;
      if (code !== undefined) part.exit = code;
    });
    running.push(part);
    await settle(host, part);
  }
  return { running };
}

/** Until the part has ended, or nothing in its machine is runnable for three looks in a row, or the cap. The
 *  looks begin once the engine says its shell's process exists: a session opens before that, and a machine
 *  that is idle because the answer has not started yet is not settled. */
async function settle(host: AnswerHost, part: RunningAnswer): Promise<void> {
  const deadline = host.now() + SETTLE_CAP_MS;
  await Promise.race([part.session.started(), part.ended, host.sleep(SETTLE_CAP_MS)]);
  let idle = 0;
  while (!part.done && idle < 3 && host.now() < deadline) {
    await host.sleep(SETTLE_LOOK_MS);
    const busy = await host.busy(part.node);
    idle = busy === 0 ? idle + 1 : 0;
  }
}

/** What each machine's answer printed, and whether it is still running; told as events, never thrown. */
export function reportAnswer(host: AnswerHost, step: { id: string }, running: RunningAnswer[]): void {
  for (const part of running) {
    const output = part.output.read().text.trimEnd();
    host.emit({
      type: 'answer',
      step: step.id,
      node: part.node,
      running: !part.done,
      ...(part.exit !== undefined ? { exit: part.exit } : {}),
      output,
    });
  }
}

function firstLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim());
  return lines.length <= 1 ? (lines[0] ?? '') : `${lines[0]} ... (${lines.length} lines)`;
}
