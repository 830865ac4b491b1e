// `lab validate`: check lab files, every problem with file:line (exit 2), warnings for steps that check nothing.
// A submission file (student, lab, answers: a mutant beside a lab, a student's hand-in) is checked as one,
// against its lab: the one beside its `.mutants` folder, else a lab file given in the same command whose id or
// slug its `lab:` names, else the shipped lab it names.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { LabError, formatProblem, type Problem } from '../../errors.js';
import { validateLabText, readLabText, loadLabFile, parseLab } from '../../lab/load.js';
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
    const texts = positionals.map((file) => ({ file, text: readLabText(file) }));
    // The labs given beside the submissions, by id and by slug.
    const given = new Map<string, { lab: Lab; file: string }>();
    for (const { file, text } of texts) {
      if (typeof text !== 'string' || isSubmission(text)) continue;
      const v = validateLabText(text);
      if (v.problems.length === 0) {
        const lab = parseLab(text);
        given.set(String(lab.id), { lab, file });
        given.set(lab.slug, { lab, file });
      }
    }
    const reports = texts.map(({ file, text }): Report => {
      if (typeof text !== 'string') return { file, ok: false, problems: [text.problem], warnings: [] };
      if (isSubmission(text)) return submissionReport(file, text, given);
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

/** A file with `answers` and no `steps` is a submission. */
function isSubmission(text: string): boolean {
  let data: unknown;
  try {
    data = parse(text);
  } catch {
    return false;
  }
  return !!data && typeof data === 'object' && !Array.isArray(data) && 'answers' in data && !('steps' in data);
}

/** A submission, checked against its lab as `lab grade` would. */
function submissionReport(file: string, text: string, given: Map<string, { lab: Lab; file: string }>): Report {
  const data = parse(text) as Record<string, unknown>;
  const dir = dirname(resolve(file));
  const beside = dir.endsWith('.mutants') ? `${dir.slice(0, -'.mutants'.length)}.yaml` : undefined;
  const named = (data as { lab?: unknown }).lab;
  let lab: Lab;
  let labName: string;
  try {
    if (beside && existsSync(beside)) {
      lab = loadLabFile(beside).lab;
      labName = beside;
    } else if ((typeof named === 'string' || typeof named === 'number') && given.has(String(named))) {
      ({ lab, file: labName } = given.get(String(named))!);
    } else if (typeof named === 'number' || (typeof named === 'string' && /^[a-z0-9][a-z0-9-]*$/.test(named))) {
      // A number or a slug only: a hand-in must not make the grader's machine read a file it names.
      lab = resolveLab(String(named)).lab;
      labName = `Lab ${lab.id} (${lab.slug})`;
    } else
      return {
        file,
        ok: false,
        problems: [at('lab', 'a submission names its lab by number or slug (`lab list`), not by path')],
        warnings: [],
      };
  } catch (e) {
    if (!(e instanceof LabError)) throw e;
    const hint = 'give its lab file in the same command (lab validate LAB.yaml SUBMISSION.yaml)';
    return { file, ok: false, problems: [at('lab', `a submission, for a lab that cannot be loaded: ${e.message}; ${hint}`)], warnings: [] };
  }
  const v = validateSubmissionText(text, lab);
  return { file, ok: v.ok, problems: v.ok ? [] : v.problems, warnings: [], submissionFor: labName };
}
