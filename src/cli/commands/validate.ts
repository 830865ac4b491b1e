// `lab validate`: check lab files, every problem with file:line (exit 2), warnings for steps that check nothing.
// A submission file (student, lab, answers: a mutant beside a lab, a student's hand-in) is checked as one,
// against its lab: the one beside its `.mutants` folder, or the one its `lab:` names.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { LabError, formatProblem, type Problem } from '../../errors.js';
import { validateLabText, readLabText, loadLabFile } from '../../lab/load.js';
import { resolveLab } from '../../lab/catalogue.js';
import type { Lab } from '../../lab/schema.js';
import { validateSubmissionText } from '../../submit/submission.js';
import { defineCommand } from '../command.js';

interface Report {
  file: string;
  ok: boolean;
  problems: Problem[];
  warnings: Problem[];
  /** A submission: the lab it was checked against. */
  submissionFor?: string;
}

export const validateCommand = defineCommand({
  name: 'validate',
  usage: 'validate <file...> [--json]',
  summary: 'check lab files (and submission files) and report every problem with file:line (exit 2 when a file has problems)',
  options: {},
  async run(ctx, _values, positionals) {
    if (positionals.length === 0) throw new LabError('lab validate needs lab files', 'for example `lab validate labs/*.yaml`');
    const reports = positionals.map((file): Report => {
      const text = readLabText(file);
      if (typeof text !== 'string') return { file, ok: false, problems: [text.problem], warnings: [] };
      const submission = submissionReport(file, text);
      if (submission) return submission;
      const v = validateLabText(text);
      return { file, ok: v.problems.length === 0, problems: v.problems, warnings: v.warnings };
    });
    if (ctx.json) ctx.print(JSON.stringify(reports, null, 2));
    else {
      for (const r of reports) {
        if (r.ok) ctx.print(`${ctx.style.green('ok')} ${r.file}${r.submissionFor ? ` (a submission for ${r.submissionFor})` : ''}`);
        for (const p of r.problems) ctx.print(formatProblem(r.file, p));
        for (const w of r.warnings) ctx.print(`${ctx.style.yellow('warning:')} ${formatProblem(r.file, w)}`);
      }
    }
    // A bad lab file is exit 2, as for every other command (README "Exit codes").
    return reports.every((r) => r.ok) ? 0 : 2;
  },
});

const at = (path: string, message: string): Problem => ({ line: 1, column: 1, path, message });

/** A file with `answers` and no `steps` is a submission: checked against its lab, as `lab grade` would. */
function submissionReport(file: string, text: string): Report | undefined {
  let data: unknown;
  try {
    data = parse(text);
  } catch {
    return undefined;
  }
  if (!data || typeof data !== 'object' || Array.isArray(data) || !('answers' in data) || 'steps' in data) return undefined;
  const dir = dirname(resolve(file));
  const beside = dir.endsWith('.mutants') ? `${dir.slice(0, -'.mutants'.length)}.yaml` : undefined;
  const named = (data as { lab?: unknown }).lab;
  let lab: Lab;
  let labName: string;
  try {
    if (beside && existsSync(beside)) {
      lab = loadLabFile(beside).lab;
      labName = beside;
    } else if (typeof named === 'string' || typeof named === 'number') {
      lab = resolveLab(String(named)).lab;
      labName = `Lab ${lab.id} (${lab.slug})`;
    } else
      return { file, ok: false, problems: [at('lab', 'a submission names its lab: a number or a slug from `lab list`')], warnings: [] };
  } catch (e) {
    if (!(e instanceof LabError)) throw e;
    return { file, ok: false, problems: [at('lab', `a submission, for a lab that cannot be loaded: ${e.message}`)], warnings: [] };
  }
  const v = validateSubmissionText(text, lab);
  return { file, ok: v.ok, problems: v.ok ? [] : v.problems, warnings: [], submissionFor: labName };
}
