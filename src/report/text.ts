// Grade results for people: one way to show a check, used by `lab grade`, the walk and `lab check`.
import type { Check, LabResult } from '../grade/grade.js';
import { formatDuration } from '../lab/duration.js';
import type { Style } from './style.js';
import { printable } from '../printable.js';

interface CheckLineOptions {
  indent?: string;
  /** Show what was seen for passed checks too (failed ones always show it). */
  verbose?: boolean;
}

/** A check: met or not, what was expected, why it matters, and (when it failed) what was seen instead. */
export function renderCheck(c: Check, style: Style, opts: CheckLineOptions = {}): string {
  const indent = opts.indent ?? '  ';
  const pad = `${indent}            `;
  const mark = c.passed ? style.green('✓ met    ') : style.red('✗ not met');
  // What a check saw includes what commands printed, which a student (or a lab) controls: shown escaped.
  const lines = [`${indent}${mark} ${c.task ? style.cyan('[task] ') : ''}${printable(c.expected)}`];
  if (c.why) lines.push(`${pad}${style.dim(printable(c.why))}`);
  if (!c.passed || opts.verbose) for (const s of c.seen) lines.push(`${pad}${style.dim('seen:')} ${printable(s)}`);
  return lines.join('\n');
}

export function renderChecks(checks: Check[], style: Style, opts: CheckLineOptions = {}): string {
  return checks.map((c) => renderCheck(c, style, opts)).join('\n');
}

export function renderLabResult(r: LabResult, style: Style): string {
  const head = `${r.passed ? style.green('PASS') : style.red('FAIL')} Lab ${r.lab.id} ${r.lab.slug}: ${r.score.passed}/${r.score.total} checks in ${formatDuration(r.durationMs)}`;
  const lines = [head];
  for (const step of r.steps) {
    if (step.passed) continue;
    lines.push(`  step ${step.id}: ${step.title}`);
    lines.push(
      renderChecks(
        step.checks.filter((x) => !x.passed),
        style,
        { indent: '    ' },
      ),
    );
  }
  if (r.error) lines.push(`  ${style.red('error:')} ${printable(r.error)}`);
  return lines.join('\n');
}
