// Grade results for people.
import type { Check, LabResult } from '../grade/grade.js';
import { formatDuration } from '../lab/duration.js';
import type { Style } from './style.js';

export function checkLine(c: Check, style: Style, indent = '  '): string {
  const mark = c.passed ? style.green('✓') : style.red('✗');
  const lines = [`${indent}${mark} ${c.task ? style.cyan('[task] ') : ''}${c.expected}`];
  const why = c.message && c.message !== 'as expected' ? c.message : '';
  if (why) lines.push(`${indent}    ${style.dim(why)}`);
  if (!c.passed || process.env.TCPLAB_VERBOSE) {
    for (const s of c.seen) lines.push(`${indent}    ${style.dim('seen:')} ${s}`);
  }
  return lines.join('\n');
}

export function renderLabResult(r: LabResult, style: Style): string {
  const head = `${r.passed ? style.green('PASS') : style.red('FAIL')} Lab ${r.lab.id} ${r.lab.slug}: ${r.score.passed}/${r.score.total} checks in ${formatDuration(r.durationMs)}`;
  const lines = [head];
  for (const step of r.steps) {
    if (step.passed) continue;
    lines.push(`  step ${step.id}: ${step.title}`);
    for (const c of step.checks.filter((x) => !x.passed)) lines.push(checkLine(c, style, '    '));
  }
  if (r.error) lines.push(`  ${style.red('error:')} ${r.error}`);
  return lines.join('\n');
}
