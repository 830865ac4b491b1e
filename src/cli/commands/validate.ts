// `lab validate`: check lab files, every problem with file:line (exit 2), warnings for steps that check nothing.
// A submission file (student, lab, answers: a mutant beside a lab, a student's hand-in) is checked as one,
// against its lab: the one beside its `.mutants` folder, else a lab file given in the same command whose id or
// slug its `lab:` names, else the shipped lab it names.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
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
    // Each file is parsed once: a hostile file (60,000 levels of nesting) must be refused, not parsed twice.
    const files = positionals.map((file) => {
      const text = readLabText(file);
      if (typeof text !== 'string') return { file, problem: text.problem };
      if (isSubmission(text)) return { file, submission: text };
      return { file, text, checked: validateLabText(text) };
    });
    // The labs given beside the submissions, by id, by slug and by path (each lab file is read once).
    const given: Given = { named: new Map(), byPath: new Map() };
    for (const f of files)
      if (f.text !== undefined) {
        if (f.checked.problems.length > 0) {
          given.byPath.set(resolve(f.file), { problems: true, file: f.file });
          continue;
        }
        const entry = { lab: parseLab(f.text), file: f.file };
        given.byPath.set(resolve(f.file), entry);
        given.named.set(String(entry.lab.id), entry);
        given.named.set(entry.lab.slug, entry);
      }
    const reports = files.map((f): Report => {
      if (f.problem) return { file: f.file, ok: false, problems: [f.problem], warnings: [] };
      if (f.submission !== undefined) return submissionReport(f.file, f.submission, given);
      const v = f.checked!;
      return { file: f.file, ok: v.problems.length === 0, problems: v.problems, warnings: v.warnings };
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

/** A file with a top-level `answers` and no `steps` is a submission (told from the text, so that it is parsed
 *  once, by the check it gets). */
const isSubmission = (text: string): boolean => /^answers[ \t]*:/m.test(text) && !/^steps[ \t]*:/m.test(text);

/** A submission, checked against its lab as `lab grade` would. */
type GivenLab = { lab: Lab; file: string } | { problems: true; file: string };
interface Given {
  named: Map<string, { lab: Lab; file: string }>;
  /** Every lab file read in this run, by its full path: those given, and those beside a .mutants folder. */
  byPath: Map<string, GivenLab>;
}

/** The lab file beside a mutants folder, read once however many mutants it has. */
function besideLab(path: string, given: Given): GivenLab {
  let entry = given.byPath.get(path);
  if (!entry) {
    try {
      entry = { lab: loadLabFile(path).lab, file: path };
    } catch (e) {
      if (!(e instanceof LabError)) throw e;
      entry = { problems: true, file: path };
    }
    given.byPath.set(path, entry);
  }
  return entry;
}

function submissionReport(file: string, text: string, given: Given): Report {
  const dir = dirname(resolve(file));
  const beside = dir.endsWith('.mutants') ? `${dir.slice(0, -'.mutants'.length)}.yaml` : undefined;
  // The lab it names, read without parsing the file: validateSubmissionText below parses it, once.
  const named = /^lab[ \t]*:[ \t]*["']?([^"'#\s]+)["']?[ \t]*(#.*)?$/m.exec(text)?.[1];
  let lab: Lab;
  let labName: string;
  try {
    if (beside && existsSync(beside)) {
      const entry = besideLab(beside, given);
      if (!('lab' in entry))
        return {
          file,
          ok: false,
          problems: [at('lab', `a submission for ${beside}, which has problems: lab validate ${beside}`)],
          warnings: [],
        };
      ({ lab, file: labName } = entry);
    } else if (named !== undefined && given.named.has(named)) {
      ({ lab, file: labName } = given.named.get(named)!);
    } else if (named !== undefined && /^[a-z0-9][a-z0-9-]*$/.test(named)) {
      // A number or a slug only: a hand-in must not make the grader's machine read a file it names.
      lab = resolveLab(named).lab;
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
