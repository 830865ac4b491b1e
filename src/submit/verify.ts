// Before a student hands a file in: try it once, as the instructor's `lab grade --submission` will, in a fresh
// instance of the lab, and say plainly what would not pass. `lab submit --verify` (the default when an engine
// is reachable) and `lab serve` use this. Never prints: the result, and the words for it, go back.
import type { AnswerScript } from '../lab/answer-script.js';
import type { Lab } from '../lab/schema.js';
import { formatDuration } from '../lab/duration.js';
import { printable } from '../printable.js';
import { gradeWithRetries, prepareSubmission, type AnswerOutput, type BatchOptions, type SubmissionResult } from './batch.js';
import { formatTime, labHash } from './submission.js';

type VerifyOptions = Omit<BatchOptions, 'parallel' | 'retries' | 'onResult'>;

/** One run of the file in a fresh instance (no second try: a hand-in should pass the first time). The null
 *  answer is not run: it changes points, never whether a file passes. */
export async function verifySubmission(file: string, opts: VerifyOptions): Promise<SubmissionResult> {
  const p = prepareSubmission(file, opts.lab, labHash(opts.labText), opts.version);
  if (p.result) return p.result;
  return gradeWithRetries(p, { ...opts, parallel: 1, retries: 0 }, Promise.resolve({ met: [], warnings: [] }));
}

/**
 * What a student reads about a verification: a head line (passes or not, and why in a few words) and the
 * lines under it: per task that would not pass, the first check not met and what was seen, then each command
 * as the student ran it and as the replay did. Text from the answer is shown with control characters escaped.
 */
export function verificationReport(
  r: SubmissionResult,
  lab: Lab,
  answers: Record<string, AnswerScript[]> = {},
): { passed: boolean; head: string; lines: string[] } {
  const where = `tried once in a fresh instance of lab ${lab.id} (${lab.slug})`;
  if (!r.gradable) return { passed: false, head: `it cannot be graded: ${printable(r.reason ?? '')}`, lines: [] };
  if (r.passed)
    return {
      passed: true,
      head: `it passes: ${where}, every check met, ${r.score}/${r.maxScore} points (${formatDuration(r.durationMs)})`,
      lines: [],
    };
  const lines: string[] = [];
  if (r.error) lines.push(`the lab stopped: ${printable(r.error)}`);
  for (const section of r.tasks.filter((t) => !t.passed)) {
    const whole = section.items.find((it) => it.whole);
    const missed = (whole ? whole.checks : section.items.flatMap((it) => it.checks)).filter((c) => !c.passed);
    const first = missed[0];
    lines.push(
      `${section.step}: ${section.score}/${section.maxScore}` +
        (first
          ? `, ${first.ran ? 'not met' : 'not checked'}: ${printable(first.expected)}${missed.length > 1 ? ` (+${missed.length - 1} more)` : ''}`
          : ''),
    );
    if (first?.why) lines.push(`  why: ${printable(first.why)}`);
    for (const seen of first?.seen.slice(0, 3) ?? []) lines.push(`  seen: ${printable(seen)}`);
    const outputs = (r.answers ?? []).filter((a) => a.step === section.step);
    const scripts = section.step ? (answers[section.step] ?? []) : [];
    if (outputs.length) lines.push(`  the replay of your commands:`);
    outputs.forEach((a, j) => lines.push(`    ${commandLine(a, scripts[j])}`));
  }
  return { passed: false, head: `it would not pass: ${where}, ${r.score}/${r.maxScore} points`, lines };
}

/** "server: nc -l 5556: you: Ctrl-C at 19.8s; replayed: exit 130 after its Ctrl-C" and its output's last line. */
function commandLine(a: AnswerOutput, script: AnswerScript | undefined): string {
  const yours = script?.end
    ? script.end.by === 'ctrl-c'
      ? `Ctrl-C at ${formatTime(script.end.at)}`
      : `exit ${script.end.exit ?? '?'}`
    : script?.at !== undefined
      ? 'still running'
      : undefined;
  const replayed = a.running
    ? 'still running at the checks'
    : `${a.exit !== undefined ? `exit ${a.exit}` : 'ended'}${a.interrupted ? ' after its Ctrl-C' : ''}`;
  const last = a.output.trim().split('\n').at(-1);
  return `${a.node}: ${printable(a.command ?? '')}: ${yours ? `you: ${yours}; ` : ''}replayed: ${replayed}${last ? ` (${printable(last)})` : ''}`;
}
