// What a student reads about one graded item, shared by the Gradescope and PrairieLearn files: what was
// expected (with their addresses and variants), why it matters, what was seen; and about the whole run.
import { formatDuration } from '../lab/duration.js';
import type { GradedItem, Section } from '../grade/score.js';
import type { SubmissionResult } from '../submit/batch.js';

/** Longest text of one test's output: both formats are shown in a browser, and PrairieLearn's file is <= 1 MB. */
const MAX_OUTPUT = 8 * 1024;

export function clip(text: string, max = MAX_OUTPUT): string {
  return text.length <= max ? text : `${text.slice(0, max)}\n... (${text.length - max} more characters)`;
}

export function itemOutput(item: GradedItem): string {
  const lines: string[] = [];
  for (const c of item.checks) {
    lines.push(`${c.passed ? 'met' : c.ran ? 'not met' : 'not checked'}: ${c.expected}`);
    if (c.why) lines.push(`  why: ${c.why}`);
    if (!c.passed || item.checks.length === 1) for (const s of c.seen) lines.push(`  seen: ${s}`);
  }
  return clip(lines.join('\n'));
}

/**
 * Why a task scored what it did, in one line, when it did not get all its points: which checks earned partial
 * credit, and the first that was not met. "" for full marks. For the gradebook and the terminal.
 */
export function sectionWhy(section: Section): string {
  if (section.score >= section.maxScore && section.passed) return '';
  const parts: string[] = [];
  const earned = section.items.filter((it) => !it.whole && it.points > 0);
  if (earned.length) parts.push(`earned ${earned.map((it) => `${it.points} for '${it.name}'`).join(', ')}`);
  const paidNothing = section.items.filter((it) => it.partial && it.nullMet && it.passed);
  if (paidNothing.length)
    parts.push(
      `nothing for '${paidNothing.map((it) => it.name).join("', '")}': the null answer meets ${paidNothing.length > 1 ? 'them' : 'it'} too`,
    );
  const whole = section.items.find((it) => it.whole);
  const missed = (whole ? whole.checks : section.items.flatMap((it) => it.checks)).filter((c) => !c.passed);
  if (missed.length) {
    const first = missed[0]!;
    // Not checked says why (a command of the check failed, the lab stopped): the one thing to fix first.
    const reason = first.ran
      ? ''
      : (first.seen[0] ?? '')
          .replace(/^not checked: /, '')
          .replace(/\s+/g, ' ')
          .trim();
    parts.push(
      `${first.ran ? 'not met' : 'not checked'}: '${first.name}'${missed.length > 1 ? ` (+${missed.length - 1} more)` : ''}` +
        (reason ? ` because ${reason.length > 240 ? `${reason.slice(0, 239)}…` : reason}` : ''),
    );
  }
  return `${section.step}: ${section.score}/${section.maxScore}${parts.length ? `, ${parts.join('; ')}` : ''}`;
}

/** The run as a whole: score, error, warnings, and what each machine's answer printed. */
export function runOutput(r: SubmissionResult, labName: string): string {
  if (!r.gradable) return clip(`${labName}: this submission could not be graded.\n${r.reason ?? ''}`);
  const lines = [`${labName}: ${r.score}/${r.maxScore} points in ${formatDuration(r.durationMs)}${r.passed ? ', every check met' : ''}`];
  if (r.variants)
    lines.push(
      `your values: ${Object.entries(r.variants)
        .map(([k, v]) => `{{${k}}} = ${v}`)
        .join(', ')}`,
    );
  if (r.error) lines.push(`the lab stopped: ${r.error}`);
  for (const w of r.warnings ?? []) lines.push(`note: ${w}`);
  for (const a of r.answers ?? []) {
    const state = a.running
      ? 'still running when its checks were done'
      : `${a.exit !== undefined ? `exit ${a.exit}` : 'finished'}${a.interrupted ? ', after the Ctrl-C the replay sent' : ''}`;
    const what = a.command !== undefined ? ` \`${a.command}\`` : '';
    lines.push(`answer to ${a.step} on ${a.node}${what} (${state})${a.output ? ':' : ', no output'}`);
    if (a.output)
      lines.push(
        ...clip(a.output, 2048)
          .split('\n')
          .map((l) => `  ${l}`),
      );
  }
  return clip(lines.join('\n'));
}
