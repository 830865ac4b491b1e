// What a student typed, from the log every lab machine keeps of its `lab shell` sessions
// (images/node/tcplab-bashrc), to the commands of each task: one timeline across the machines, each command
// with when it started and how it ended (its exit status, or the Ctrl-C that ended it, and when). Pure: log
// text and times in, commands out. `lab submit` (through the walk) and `lab serve` both record with this.
import type { AnswerEnd } from '../lab/answer-script.js';
import type { NodeName } from '../lab/schema.js';

/** One command line as a shell ran it. */
export interface ShellCommand {
  /** ms since the epoch when it started */
  at: number;
  /** ms since the epoch when it ended; absent while it still runs */
  endedAt?: number;
  exit?: number;
  /** "pid:history number": which shell, which line of it */
  key: string;
  text: string;
}

const START = /^S (\d+(?:\.\d+)?) (\d+:\d+) (.*)$/;
const END = /^E (\d+(?:\.\d+)?) (\d+:\d+) (\d+)$/;

/** The log's lines -> commands in the order they started. Lines that do not parse (a torn write) are skipped. */
export function parseShellLog(text: string): ShellCommand[] {
  const byKey = new Map<string, ShellCommand>();
  const out: ShellCommand[] = [];
  for (const line of text.split('\n')) {
    let m = START.exec(line);
    if (m) {
      const c: ShellCommand = { at: Number(m[1]) * 1000, key: m[2]!, text: unescape(m[3]!) };
      byKey.set(c.key, c);
      out.push(c);
      continue;
    }
    m = END.exec(line);
    if (m) {
      const c = byKey.get(m[2]!);
      if (c) {
        c.endedAt = Number(m[1]) * 1000;
        c.exit = Number(m[3]);
      }
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

/** The log's escapes: \\ for a backslash, \n for a newline. */
function unescape(s: string): string {
  return s.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
}

/** Leaving the shell is not part of an answer: in a replayed script it would end the machine's lines early. */
const LEAVING = /^\s*(exit|logout)(\s+\d+)?\s*;?\s*$/;

/**
 * The commands a task consists of on one machine: those started in [from, to], in order. A command that was
 * still running when a later one on the same machine started (a listener in one `lab shell`, the client in
 * another) ran alongside it, so in the one script a machine's answer becomes it is put in the background.
 */
export function taskCommands(commands: ShellCommand[], from: number, to: number): string[] {
  const inside = commands.filter((c) => c.at >= from && c.at <= to && c.text.trim() !== '' && !LEAVING.test(c.text));
  return inside.map((c, i) => {
    const next = inside[i + 1];
    const overlapped = next !== undefined && (c.endedAt === undefined || c.endedAt > next.at);
    return overlapped ? background(c.text) : c.text;
  });
}

function background(text: string): string {
  const t = text.trimEnd();
  if (/&\s*$/.test(t) && !/&&\s*$/.test(t)) return t;
  // `a; &` and `a | &` are not shell: a group runs whatever the line was.
  return /[;|]\s*$/.test(t) || t.includes('\n') ? `{ ${t}\n} &` : `${t} &`;
}

/**
 * A lab instance's addresses back into templates: 198.19.4.3 -> {{server.ip}}. Every instance gets fresh
 * subnets, so an answer with the student's literal addresses would reach nothing when it is replayed; variants
 * are left as typed on purpose (they are the student's own, and a copied answer must keep someone else's).
 */
export function templatize(text: string, vars: Record<string, string>): string {
  // Shortest template name first, so that {{client.ip}} wins over {{client.ip.lan}} for the same address.
  const byValue = new Map<string, string>();
  const names = Object.keys(vars)
    .filter((k) => /^(client|server|firewall)\.ip(\.[a-z]+)?$|^net\.[a-z]+$/.test(k))
    .sort((a, b) => a.length - b.length || a.localeCompare(b));
  for (const name of names) if (!byValue.has(vars[name]!)) byValue.set(vars[name]!, name);
  // Longest value first: a subnet 198.19.4.0/24 before an address inside it.
  const values = [...byValue.keys()].sort((a, b) => b.length - a.length);
  if (values.length === 0) return text;
  const pattern = new RegExp(`(?<![\\d.])(${values.map(escapeRegExp).join('|')})(?![\\d]|\\.\\d)`, 'g');
  return text.replace(pattern, (v) => `{{${byValue.get(v)}}}`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** One command of a task, as the student ran it: times in ms from the task's first command (on any machine). */
export interface TimelineEntry {
  node: NodeName;
  /** The command line as typed (several lines for a multi-line command), addresses as templates. */
  command: string;
  at: number;
  /** How it ended before the task did: its exit status, or Ctrl-C. Absent: still running when the task ended. */
  end?: AnswerEnd;
}

/** bash's $? for a foreground command that SIGINT (Ctrl-C) ended: 128 + 2. */
const CTRL_C_STATUS = 130;
/** bash's $? for a foreground job that Ctrl-Z (or reading or writing the terminal in the background) stopped:
 *  128 + SIGTSTP, SIGTTIN, SIGTTOU. The job is stopped, not ended: the prompt is back, the process still there. */
const STOPPED_STATUS = new Set([148, 149, 150]);
/** `fg` and `bg` (job control: the replay has no jobs, so these are not commands). Taken to mean the job stopped
 *  last, as they do without an argument; `fg %1` with several jobs stopped is rare enough to be taken so too. */
const RESUME = /^\s*(fg|bg)(\s+%([%+]|\d+)?)?\s*$/;

/**
 * The commands of a task on every machine, as one timeline: those started in [from, to] (the task's step began;
 * the check that passed), in the order they started, each with how it ended if it ended by `to`. A command the
 * student stopped with Ctrl-Z and took back with `fg` ends as the `fg` did (a Ctrl-C there ends it); one sent on
 * with `bg`, or left stopped, counts as still running. Leaving the shell is left out.
 */
export function taskTimeline(logs: Map<NodeName, ShellCommand[]>, from: number, to: number, vars: Record<string, string>): TimelineEntry[] {
  const inside = [...logs]
    .flatMap(([node, commands]) => commands.map((c) => ({ node, c })))
    .filter(({ c }) => c.at >= from && c.at <= to && c.text.trim() !== '' && !LEAVING.test(c.text))
    .sort((a, b) => a.c.at - b.c.at);
  const t0 = inside[0]?.c.at ?? 0;
  const ms = (t: number) => Math.max(0, Math.round(t - t0));
  const out: TimelineEntry[] = [];
  /** Per shell (machine and pid): the entries whose command is stopped (Ctrl-Z), the last one last. */
  const stopped = new Map<string, TimelineEntry[]>();
  for (const { node, c } of inside) {
    const shell = `${node} ${c.key.split(':')[0]}`;
    const ended = c.endedAt !== undefined && c.exit !== undefined && c.endedAt <= to;
    const resume = RESUME.exec(c.text);
    if (resume) {
      const job = stopped.get(shell)?.pop();
      if (job) {
        // fg: the job is in the foreground again, and ends as the fg line does (or is stopped again); bg: it
        // runs on, as does a job still in the foreground when the task ended.
        if (resume[1] === 'fg' && ended) {
          if (STOPPED_STATUS.has(c.exit!)) stopped.get(shell)!.push(job);
          else job.end = endOf(c.exit!, ms(c.endedAt!));
        }
        continue;
      }
    }
    const entry: TimelineEntry = { node, command: templatize(c.text, vars), at: ms(c.at) };
    if (ended && STOPPED_STATUS.has(c.exit!)) stopped.set(shell, [...(stopped.get(shell) ?? []), entry]);
    else if (ended) entry.end = endOf(c.exit!, ms(c.endedAt!));
    out.push(entry);
  }
  return out;
}

function endOf(exit: number, at: number): AnswerEnd {
  return exit === CTRL_C_STATUS ? { by: 'ctrl-c', at } : { by: 'exit', exit, at };
}

/** A task's answer per machine, ordered by each machine's first command (the order the replay starts them): the
 *  older form of a submission, which per-machine readers (and older tcplab) still take. */
export function taskAnswer(
  logs: Map<NodeName, ShellCommand[]>,
  from: number,
  to: number,
  vars: Record<string, string>,
): { node: NodeName; lines: string[]; first: number }[] {
  const out: { node: NodeName; lines: string[]; first: number }[] = [];
  for (const [node, commands] of logs) {
    const lines = taskCommands(commands, from, to).map((l) => templatize(l, vars));
    const first = commands.find((c) => c.at >= from && c.at <= to)?.at ?? Infinity;
    if (lines.length) out.push({ node, lines, first });
  }
  return out.sort((a, b) => a.first - b.first);
}
