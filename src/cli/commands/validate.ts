// `lab validate`: check lab files, every problem with file:line (exit 2), warnings for steps that check nothing.
import { LabError, formatProblem } from '../../errors.js';
import { validateLabText, readLabText } from '../../lab/load.js';
import { defineCommand } from '../command.js';

export const validateCommand = defineCommand({
  name: 'validate',
  usage: 'validate <file...> [--json]',
  summary: 'check lab files and report every problem with file:line (exit 2 when a file has problems)',
  options: {},
  async run(ctx, _values, positionals) {
    if (positionals.length === 0) throw new LabError('lab validate needs lab files', 'for example `lab validate labs/*.yaml`');
    const reports = positionals.map((file) => {
      const text = readLabText(file);
      if (typeof text !== 'string') return { file, ok: false, problems: [text.problem], warnings: [] };
      const v = validateLabText(text);
      return { file, ok: v.problems.length === 0, problems: v.problems, warnings: v.warnings };
    });
    if (ctx.json) ctx.print(JSON.stringify(reports, null, 2));
    else {
      for (const r of reports) {
        if (r.ok) ctx.print(`${ctx.style.green('ok')} ${r.file}`);
        for (const p of r.problems) ctx.print(formatProblem(r.file, p));
        for (const w of r.warnings) ctx.print(`${ctx.style.yellow('warning:')} ${formatProblem(r.file, w)}`);
      }
    }
    // A bad lab file is exit 2, as for every other command (README "Exit codes").
    return reports.every((r) => r.ok) ? 0 : 2;
  },
});
