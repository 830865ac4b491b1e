// A student's answer to a task, replayed in place of the task's solution (`lab grade --submissions`).
// Each machine's lines run with `sh -c` inside that machine only, started in the order the submission gives
// them, in the background (tcplab-run), as they ran in the student's shells: a listener typed in one `lab
// shell` keeps listening while the client in another connects. The next machine's lines start once the
// previous machine's have finished or are waiting (a listener in accept()). Then the task's expectations are
// polled as for any step.
//
// The lines are untrusted. They get exactly what any lab command gets (the node's capabilities, its memory and
// pids limits, its read-only root), nothing from the host: they travel as one argv element through the Docker
// API and only the node's own sh parses them. On top of that:
//   - a time limit per task: `timeout` kills the whole process group (a fork bomb's too) after it;
//   - they run niced, so an endless loop yields the CPU to every other lab on the host;
//   - their output is bounded: the first 64 KiB are kept, the rest read and dropped (no writer blocks, and
//     the node's 16 MB /tmp does not fill).
import type { NodeName } from '../lab/schema.js';
import { fill } from '../lab/templates.js';
import type { AnswerScript } from '../lab/answer-script.js';
import type { ExecResult } from '../runtime/runtime.js';
import type { CommandStatus } from '../observe/observation.js';
import type { EventSink } from './events.js';

/** How long a submitted answer may run per task when the lab does not say (task.timeout). */
export const DEFAULT_ANSWER_TIMEOUT_MS = 30_000;
/**
 * When to start the next machine's lines (or poll the task's checks): once this machine's have finished, or
 * are all waiting (a listener in accept(), a client connected), or at the latest after this long. "Waiting" is
 * every process of the machine asleep for two looks in a row: a command still running, or still queued for a
 * CPU on a busy host, is not done yet, so no fixed pause can be too short under load or needlessly long idle.
 */
const SETTLE_CAP_MS = 5_000;
const OUTPUT_LIMIT = 64 * 1024;

/**
 * Runs inside the node, as `sh -c RUNNER answer LIMIT LINES`: the limit and the student's lines are
 * positional parameters, never pasted into this text.
 */
const RUNNER = [`{ timeout -k 2 "$1" nice -n 10 sh -c "$2"; echo "[exit $?]"; } 2>&1 | { head -c ${OUTPUT_LIMIT}; cat >/dev/null; }`].join(
  '\n',
);

interface AnswerHost {
  exec(node: NodeName, argv: string[], opts?: { timeoutMs?: number }): Promise<ExecResult>;
  /** A background command's status and output, read with the node's next look (no exec of its own). */
  status(node: NodeName, name: string): Promise<CommandStatus | undefined>;
  vars: Record<string, string>;
  emit: EventSink;
}

/** The tcplab-run name of a task's answer on one machine. */
function answerName(stepIndex: number, node: NodeName): string {
  return `answer${stepIndex + 1}-${node}`;
}

/**
 * Start every machine's part of an answer. Returns a reason when an answer could not even be started (the
 * machine refused: a fork bomb left by an earlier task, say), which fails the task like a failed command.
 */
export async function startAnswer(
  host: AnswerHost,
  step: { id: string; index: number },
  scripts: AnswerScript[],
  timeoutMs: number,
): Promise<{ node: NodeName; message: string } | undefined> {
  const secs = (timeoutMs / 1000).toFixed(3);
  const polls = Math.ceil(SETTLE_CAP_MS / 20);
  for (const { node, script } of scripts) {
    const name = answerName(step.index, node);
    const lines = fill(script, Object.fromEntries(Object.entries(host.vars).filter(([k]) => !k.startsWith('variant.')))); // answers are literal: {{variant.NAME}} stays as written
    // Start it, then wait inside the node, in the same exec, until it has settled (SETTLE_CAP_MS above).
    // Exit 3: tcplab-run could not start it. Any other failure is the wait's: the machine may have no processes
    // left to give (an answer's fork bomb, here or earlier), which its checks will show; the next machine's
    // answer still starts. Busy: a process other than this script, ps and awk that is running or runnable (R)
    // or in uninterruptible sleep (D).
    const argv = [
      'sh',
      '-c',
      `tcplab-run start "$1" sh -c "$2" answer "$3" "$4" >/dev/null || exit 3
busy() { ps -eo pid=,stat=,comm= | awk -v me=$$ '$1 != me && $3 != "ps" && $3 != "awk" && $2 ~ /^[RD]/ { n++ } END { exit n > 0 ? 0 : 1 }'; }
i=0; idle=0
while [ ! -f "/tmp/tcplab/$1.rc" ] && [ $i -lt ${polls} ] && [ $idle -lt 2 ]; do
  if busy; then idle=0; else idle=$((idle+1)); fi
  sleep 0.02; i=$((i+1))
done`,
      'settle',
      name,
      RUNNER,
      secs,
      lines,
    ];
    host.emit({ type: 'action', node, display: `(answer) ${firstLine(lines)}`, typed: true, background: true });
    // A generous limit: on a host that is busy, docker exec itself can take seconds.
    const r = await host.exec(node, argv, { timeoutMs: SETTLE_CAP_MS + 30_000 });
    if (r.exitCode === 3) return { node, message: `the answer could not start on ${node}: ${(r.stderr || r.stdout).trim() || 'exit 3'}` };
  }
  return undefined;
}

/** What each machine's answer printed, and whether it is still running; told as events, never thrown. */
export async function reportAnswer(host: AnswerHost, step: { id: string; index: number }, scripts: AnswerScript[]): Promise<void> {
  for (const { node } of scripts) {
    const st = await host.status(node, answerName(step.index, node)).catch(() => undefined);
    if (!st) continue;
    let output = st.output.trimEnd();
    const m = /\n?\[exit (\d+)\]$/.exec(output);
    const exit = m ? Number(m[1]) : undefined;
    if (m) output = output.slice(0, m.index);
    host.emit({ type: 'answer', step: step.id, node, running: st.running, ...(exit !== undefined ? { exit } : {}), output });
  }
}

function firstLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim());
  return lines.length <= 1 ? (lines[0] ?? '') : `${lines[0]} ... (${lines.length} lines)`;
}
