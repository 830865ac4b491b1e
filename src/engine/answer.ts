// A student's answer to a task, replayed in place of the task's solution (`lab grade --submissions`, `lab
// submit --verify`). An answer is a timeline: the commands the student typed in `lab shell`, on every machine,
// in the order they happened, each with how it ended (src/submit/record.ts). The replay does them in that
// order and the same way:
//   - each command runs in a shell of its own (bash, as `lab shell`; sh for the older per-machine form), inside
//     its machine only, as the student (tcplab-agent student: root with NET_ADMIN and NET_RAW and nothing else),
//     its standard input an open pipe: a terminal where nothing is typed;
//   - one that was still running when the next started (a listener, while the client connects in another
//     terminal) keeps running; one that had ended before the next started is waited for (at most a few
//     seconds longer than it took the student), as the student waited for the prompt;
//   - one that Ctrl-C ended gets SIGINT to its process group (the end of its exec's input, which
//     `tcplab-agent student --interrupt-on-eof` turns into Ctrl-C) at its place in the timeline;
//   - the time between two things the student did is kept, up to GAP_CAP_MS (time spent typing is not part of
//     an answer, and a replay must fit the task's time limit), and nothing starts before what came before it has
//     settled: ended, or waiting (every process of the machine asleep: a listener in accept()), or SETTLE_CAP_MS.
// A file without times (the per-machine form, or entries written without `at`) replays as it always did: each
// part starts once the one before has settled. Then the task's expectations are polled as for any step.
//
// The lines are untrusted, and so is everything they print. They get the node's capabilities, its memory and
// pids limits and its read-only root, nothing from the host: they travel as one argv element through the
// Docker API and only the node's own shell parses them. Their output and exit status come back on the exec's
// own stream, kept by the engine (bounded), never read from a file in the node; and they cannot reach the
// agent, the lab's commands or what the grader reads (tcplab-agent.c says why). On top of that:
//   - the task's time limit, counted from the answer's first command: `timeout` kills each command's whole
//     process group (a fork bomb's too) when it runs out, and nothing starts after it;
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
 * When to do the next thing of the timeline: once what was just started has finished, or is waiting (a listener
 * in accept(), a client connected), or at the latest after this long. "Waiting" is no process of the machine
 * runnable for three looks in a row (the agent counts them): a command still running, or still queued for a CPU
 * on a busy host, is not done yet, so no fixed pause can be too short under load or needlessly long idle.
 */
const SETTLE_CAP_MS = 5_000;
const SETTLE_LOOK_MS = 20;
/** The longest wait between two things the student did that the replay keeps. */
export const GAP_CAP_MS = 2_000;
/** A command that had ended before the next thing the student did: how much longer than it took the student
 *  the replay waits for it to end before it goes on anyway. */
const END_SLACK_MS = 3_000;
/** After a Ctrl-C: how long the replay waits for the command to end (the student's prompt came back). */
const CTRL_C_WAIT_MS = 3_000;
/** Less time than this left of the task's limit: the rest of the timeline is not started. */
const MIN_LEFT_MS = 500;
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

/** One command of an answer (or one machine's lines), running or done. */
export interface RunningAnswer {
  node: NodeName;
  /** Its first line, to tell the commands of a machine apart in reports. */
  command: string;
  session: ExecSession;
  output: BoundedOutput;
  /** Settles with its exit code (undefined if the engine could not tell) once its shell has ended. */
  ended: Promise<number | undefined>;
  done: boolean;
  exit?: number;
  /** The replay sent it Ctrl-C, as the student did. */
  interrupted?: boolean;
}

/** The variables an answer's text may use: the lab's addresses, never the student's variants. A variant
 *  written as a template would fit every student; an answer is graded as written. */
function answerVars(vars: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(vars).filter(([k]) => !k.startsWith('variant.')));
}

/** What the replay does, in order: start a command, or Ctrl-C one. */
interface Step {
  kind: 'start' | 'ctrl-c';
  /** Index into the scripts. */
  i: number;
  /** When the student did it (ms from the first command); for a start without a time, the time of the one above. */
  t: number;
  /** The student's time is known (not inherited from the entry above). */
  timed: boolean;
}

/** The timeline's steps in the order they happened: by time, and in the file's order at the same time. */
export function replayOrder(scripts: AnswerScript[]): Step[] {
  const steps: Step[] = [];
  let last = 0;
  scripts.forEach((s, i) => {
    last = s.at ?? last;
    steps.push({ kind: 'start', i, t: last, timed: s.at !== undefined });
    // Never before its own start (an entry written without a time starts at the one above's).
    if (s.end?.by === 'ctrl-c') steps.push({ kind: 'ctrl-c', i, t: Math.max(s.end.at, last), timed: true });
  });
  // Array.prototype.sort is stable: equal times keep the file's order.
  return steps.sort((a, b) => a.t - b.t);
}

/**
 * Before which step (its index in the order) each command must have ended, as it had for the student: a command
 * that ended on its own before the next thing the student did. Undefined: it may run on.
 */
export function mustEndBefore(scripts: AnswerScript[], order: Step[]): (number | undefined)[] {
  return scripts.map((s, i) => {
    if (s.end?.by !== 'exit') return undefined;
    const startedAt = order.findIndex((st) => st.kind === 'start' && st.i === i);
    // Without a time: before the next command in the file starts.
    if (s.end.at === undefined) {
      const next = order.findIndex((st) => st.kind === 'start' && st.i === i + 1);
      return next >= 0 ? next : undefined;
    }
    const endAt = s.end.at;
    const k = order.findIndex((st, j) => j > startedAt && st.t > endAt);
    return k >= 0 ? k : undefined;
  });
}

/**
 * Replay an answer's timeline. Returns the commands started, or a reason when one could not even be started
 * (the machine refused: a fork bomb left by an earlier task, say), which fails the task like a failed command.
 */
export async function startAnswer(
  host: AnswerHost,
  scripts: AnswerScript[],
  timeoutMs: number,
): Promise<{ running: RunningAnswer[]; failed?: { node: NodeName; message: string } }> {
  const vars = answerVars(host.vars);
  const order = replayOrder(scripts);
  const endBefore = mustEndBefore(scripts, order);
  const t0 = host.now();
  const parts = new Map<number, RunningAnswer>();
  const startedAt = new Map<number, number>();
  let doneAt: number | undefined;
  for (const [k, step] of order.entries()) {
    // What the student had seen end before this step must have ended here too (or run well past its time).
    for (const [i, before] of endBefore.entries()) {
      const part = parts.get(i);
      if (before === k && part && !part.done) {
        const s = scripts[i]!;
        // How long it took the student: until it ended, or (a file that does not say when: it ended before the
        // next command started, the step here) at most until this step. A command given no time took nothing.
        const took = s.at === undefined ? 0 : Math.max(0, (s.end?.at ?? step.t) - s.at);
        await ended(host, part, Math.min(startedAt.get(i)! + took + END_SLACK_MS, t0 + timeoutMs));
      }
    }
    // The student's pause before this step, up to the cap.
    const prev = order[k - 1];
    if (prev && doneAt !== undefined && step.timed && prev.timed) {
      const wait = doneAt + Math.min(Math.max(0, step.t - prev.t), GAP_CAP_MS) - host.now();
      if (wait > 0) await host.sleep(wait);
    }
    const left = t0 + timeoutMs - host.now();
    if (step.kind === 'ctrl-c') {
      const part = parts.get(step.i);
      // Already ended on its own, or never started: there is nothing to interrupt.
      if (part && !part.done) {
        part.interrupted = true;
        host.emit({ type: 'action', node: part.node, display: `(answer) Ctrl-C: ${part.command}`, typed: true, background: true });
        part.session.end();
        await ended(host, part, host.now() + Math.min(CTRL_C_WAIT_MS, Math.max(left, 0)));
      }
      doneAt = host.now();
      continue;
    }
    const { node, script, shell = 'sh' } = scripts[step.i]!;
    if (left < MIN_LEFT_MS) {
      parts.set(step.i, notStarted(node, script, `(not started: the task's time limit of ${(timeoutMs / 1000).toFixed(0)} s had run out)`));
      continue;
    }
    const lines = fill(script, vars);
    host.emit({ type: 'action', node, display: `(answer) ${firstLine(lines)}`, typed: true, background: true });
    let session: ExecSession;
    try {
      const argv = ['timeout', '-k', '2', (left / 1000).toFixed(3), 'nice', '-n', '10', shell, '-c', lines];
      session = await host.startStudent(node, studentArgv(argv, { interruptOnEof: true }));
    } catch (e) {
      return { running: [...parts.values()], failed: { node, message: `the answer could not start on ${node}: ${(e as Error).message}` } };
    }
    const output = new BoundedOutput(OUTPUT_HALF, OUTPUT_HALF);
    session.onStdout((b) => output.push(b));
    session.onStderr((b) => output.push(b));
    const part: RunningAnswer = {
      node,
      command: firstLine(script),
      session,
      output,
      done: false,
      ended: new Promise<number | undefined>((resolve) => session.onClose(() => resolve(session.exitCode()))),
    };
    void part.ended.then((code) => {
      part.done = true;
      if (code !== undefined) part.exit = code;
    });
    parts.set(step.i, part);
    startedAt.set(step.i, host.now());
    // One that must end before the next step is waited for there; the others until they settle.
    if (endBefore[step.i] !== k + 1) await settle(host, part);
    doneAt = host.now();
  }
  return { running: [...parts.values()] };
}

/** A command the replay did not start, reported like the others. */
function notStarted(node: NodeName, script: string, why: string): RunningAnswer {
  const output = new BoundedOutput(OUTPUT_HALF, OUTPUT_HALF);
  output.push(Buffer.from(why));
  const session: ExecSession = {
    write: () => {},
    end: () => {},
    onStdout: () => {},
    onStderr: () => {},
    onClose: (fn) => fn(),
    exitCode: () => Promise.resolve(undefined),
    started: () => Promise.resolve(),
    close: () => {},
  };
  return { node, command: firstLine(script), session, output, ended: Promise.resolve(undefined), done: true };
}

/** Until the part has ended, or the deadline. */
async function ended(host: AnswerHost, part: RunningAnswer, deadline: number): Promise<void> {
  await part.session.started();
  while (!part.done && host.now() < deadline)
    await Promise.race([part.ended, host.sleep(Math.min(SETTLE_LOOK_MS * 5, deadline - host.now()))]);
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

/** What each command of the answer printed, and whether it is still running; told as events, never thrown. */
export function reportAnswer(host: AnswerHost, step: { id: string }, running: RunningAnswer[]): void {
  for (const part of running) {
    const output = part.output.read().text.trimEnd();
    host.emit({
      type: 'answer',
      step: step.id,
      node: part.node,
      command: part.command,
      running: !part.done,
      ...(part.exit !== undefined ? { exit: part.exit } : {}),
      ...(part.interrupted ? { interrupted: true } : {}),
      output,
    });
  }
}

function firstLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim());
  return lines.length <= 1 ? (lines[0] ?? '') : `${lines[0]} ... (${lines.length} lines)`;
}
