// `lab start`: a lab step by step, as a guided walk at a terminal (src/cli/interactive.ts) or headless with the
// lab's own solutions (--yes, --json, no terminal).
import { resolve as resolvePath } from 'node:path';
import { LabError } from '../../errors.js';
import { resolveLab } from '../../lab/catalogue.js';
import type { Lab } from '../../lab/schema.js';
import { studentFor } from '../../identity.js';
import { renderLabResult } from '../../report/text.js';
import { defineCommand } from '../command.js';
import { ladderWidth, makePlainRenderer } from '../render.js';
import { IMAGE_OPTION, prepareImage, runTracked } from '../run-tracked.js';
import { labCommand } from '../invocation.js';
import { reflow, terminalWidth, wrapText } from '../wrap.js';
import type { LabResult } from '../../grade/grade.js';
import { stateFiles, type Score } from '../../walk/state-files.js';

export const startCommand = defineCommand({
  name: 'start',
  usage: 'start <number|slug|file> [--keep] [--yes] [--student ID]',
  summary: 'walk through a lab step by step in real containers',
  help:
    'The lab is a number (`lab start 2`), a slug or the start of one (`lab start basic`), or a lab file.\n' +
    "Builds the lab image if needed, creates the lab's machines, and runs each step: what it does, the\n" +
    "commands, both sides' sockets, and whether each expected state appeared. --keep leaves the machines running\n" +
    'afterwards (remove them with `lab stop`). At a terminal it is a guided walk: a prediction before each change,\n' +
    'a menu after each step (observe again, a shell, rules, processes, quit) and tasks you do yourself, checked\n' +
    'with `lab check` (see docs/students.md). --yes, --json or no terminal: no prompts, tasks solved for you.\n' +
    'Ctrl-C, or closing the terminal, stops it at any moment: the lab is removed, what was done so far is shown,\n' +
    'and the exit code is 130 (143 for SIGTERM and SIGHUP).\n' +
    'A lab with per-student variants (a port of your own) derives them from your student id: --student ID, else\n' +
    'TCPLAB_STUDENT, else your login name. `lab submit` hands in what you typed in its tasks.',
  options: { keep: { type: 'boolean' }, yes: { type: 'boolean', short: 'y' }, student: { type: 'string' }, ...IMAGE_OPTION },
  async run(ctx, values, positionals) {
    if (positionals.length !== 1) throw new LabError('lab start takes one lab', 'for example `lab start 2`; `lab list` shows them');
    const { lab, file } = resolveLab(positionals[0]!);
    const base = values['base-image'];
    const student = studentFor(lab, values.student);
    // At a terminal, without --yes or --json, the guided walk; anywhere else no prompt at all.
    if (!values.yes && !ctx.json && process.stdin.isTTY && process.stdout.isTTY) {
      // Loaded only here: the walk's prompts (inquirer) cost every other command a fifth of a CPU-second.
      const { runInteractive } = await import('../interactive.js');
      return runInteractive(ctx, lab, {
        keep: !!values.keep,
        file: resolvePath(file),
        ...(student ? { student } : {}),
        ...(base ? { base } : {}),
      });
    }
    // Text for people, fitted to the terminal when there is one (stdout; with --json it goes to stderr).
    const columns = ctx.json ? terminalWidth(ctx.err) : ctx.width;
    const write = (s: string) => ctx.info(wrapText(s, columns));
    const emit = makePlainRenderer(write, ctx.style, {
      verbose: true,
      totalSteps: lab.steps.length,
      width: ladderWidth(process.stdout.columns),
      ...(columns ? { columns } : {}),
    });
    write(ctx.style.bold(`Lab ${lab.id}: ${lab.title}`));
    write(reflow(lab.intro));
    for (const note of lab.notes ?? []) write(ctx.style.dim(`note: ${reflow(note).replace(/\n/g, ' ')}`));
    const image = await prepareImage(ctx, base, emit);
    const result = await runTracked(ctx, lab, image, emit, { keep: !!values.keep, ...(student ? { student } : {}) });
    write('');
    write(renderLabResult(result, ctx.style));
    saveHeadlessProgress(lab, result);
    if (values.keep && !ctx.signal.aborted)
      write(`The lab is still running (instance ${result.instance}); \`${labCommand()} stop ${result.instance}\` removes it.`);
    if (ctx.json) ctx.print(JSON.stringify(result, null, 2));
    return result.passed ? 0 : 1;
  },
});

/** `lab start --yes` / off a terminal: progress is kept too, with the checks it could make. */
function saveHeadlessProgress(lab: Lab, result: LabResult): void {
  const checks = result.steps.flatMap((st) => st.checks);
  const taskSteps = lab.steps.filter((st) => st.task).map((st) => st.id);
  const score: Score = {
    predictions: { right: 0, asked: 0 },
    checks: { met: checks.filter((c) => c.passed && !c.task).length, total: checks.filter((c) => !c.task).length },
    // The solution did the tasks, not the student.
    tasks: { done: 0, total: taskSteps.length },
    steps: { done: result.steps.length, total: lab.steps.length },
  };
  try {
    stateFiles().saveProgress(lab.slug, score, false);
  } catch {
    // A read-only home must not fail a lab run.
  }
}
