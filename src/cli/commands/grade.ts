// lab grade: the labs' own solutions, headless (lab grade 1 2, --all), or a class's submissions
// (lab grade 2 --submissions DIR): each replayed in a fresh instance with the student's answers in place of the
// solutions, and written out in the formats graders read (JSON, a CSV gradebook, JUnit, Gradescope,
// PrairieLearn).
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LabError } from '../../errors.js';
import { catalogue, resolveLab } from '../../lab/catalogue.js';
import { formatDuration, parseDuration } from '../../lab/duration.js';
import { DURATION_PATTERN, type Lab } from '../../lab/schema.js';
import { STUDENT_ID, STUDENT_ID_RULE, studentFor } from '../../identity.js';
import { variantValues } from '../../lab/variants.js';
import { eachInPool } from '../../pool.js';
import type { LabResult } from '../../grade/grade.js';
import { taskSteps } from '../../grade/score.js';
import { renderLabResult } from '../../report/text.js';
import { renderJunit, renderSubmissionsJunit } from '../../report/junit.js';
import { renderGradebook } from '../../report/csv.js';
import { gradescopeResults, resultFolder } from '../../report/gradescope.js';
import { prairieLearnResults } from '../../report/prairielearn.js';
import { sectionWhy } from '../../report/feedback.js';
import { printable, printableDeep } from '../../printable.js';
import type { Style } from '../../report/style.js';
import {
  classParallel,
  gradeSubmissions,
  inShard,
  parseShard,
  submissionFiles,
  type NullAnswer,
  type Shard,
  type SubmissionResult,
} from '../../submit/batch.js';
import { defineCommand } from '../command.js';
import type { Context } from '../context.js';
import { IMAGE_OPTION, prepareImage, runTracked, stderrRenderer } from '../run-tracked.js';
import { VERSION } from '../../version.js';
import { StepWindows, writeTrace } from '../trace.js';
import type { Instance } from '../../engine/instance.js';
import { checkOutputFile, checkOutputFolder, makeOutputFolder, writeOutputFile } from '../output-file.js';

const DEFAULT_LAB_TIMEOUT = '10m';
/**
 * A class is many labs at once, and every look of every wait runs ss in a container: at the walk's 20 ms, a
 * dozen labs waiting would spend a 2-core host on looking alone. 100 ms still sees every state a lab holds.
 */
const DEFAULT_CLASS_POLL = '100ms';

function pollOf(text: string): number {
  if (!DURATION_PATTERN.test(text)) throw new LabError(`--poll takes a duration such as 100ms (got '${text}')`);
  const ms = parseDuration(text);
  if (ms < 10 || ms > 1000) throw new LabError('--poll must be between 10ms and 1s');
  return ms;
}

function parallelOf(text: string | undefined, fallback: number): number {
  const parallel = Number(text ?? fallback);
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) throw new LabError('--parallel takes a whole number from 1 to 64');
  return parallel;
}

/** Every file and folder the options name can be written: said before anything is graded. */
function checkOutputs(values: { junit?: string; gradebook?: string; gradescope?: string; prairielearn?: string; trace?: string }): void {
  if (values.junit) checkOutputFile('--junit', values.junit);
  if (values.gradebook) checkOutputFile('--gradebook', values.gradebook);
  if (values.gradescope) checkOutputFolder('--gradescope', values.gradescope);
  if (values.prairielearn) checkOutputFolder('--prairielearn', values.prairielearn);
  if (values.trace) checkOutputFolder('--trace', values.trace);
}

function durationOf(flag: string, text: string): number {
  if (!DURATION_PATTERN.test(text)) throw new LabError(`${flag} takes a duration such as 90s or 5m (got '${text}')`);
  const ms = parseDuration(text);
  if (ms < 1000 || ms > 60 * 60_000) throw new LabError(`${flag} must be between 1s and 60m`);
  return ms;
}

export const gradeCommand = defineCommand({
  name: 'grade',
  usage:
    'grade <lab...>|--all [--json] [--junit FILE] [--parallel N] [--trace DIR] [--student ID]\n' +
    '  lab grade <lab> --submissions <dir|file...> [--parallel N] [--json] [--gradebook FILE.csv] [--junit FILE]\n' +
    '                  [--gradescope DIR] [--prairielearn DIR] [--shard K/N] [--timeout 10m] [--task-timeout 30s]\n' +
    '                  [--poll 100ms] [--retries 1]\n' +
    '  lab grade <lab> --submission FILE [--student ID]',
  summary: "run labs headless, or grade students' submissions; exit 0 only if every expected state was observed",
  help:
    'lab grade <lab...> runs each lab with its own solutions and checks every expected state (exit 0 all met, 1\n' +
    'not). --trace DIR keeps each lab\'s capture and ladder (docs/instructors.md "Traces"). --student ID picks\n' +
    'whose variants a lab with variants uses.\n\n' +
    "lab grade <lab> --submissions <dir|file...> replays each student's submission (lab submit) in a fresh\n" +
    "instance, the student's answers in place of the tasks' solutions, and grades the whole lab: points per\n" +
    'task, the later steps included. A submission that cannot be read is listed as not gradable, with the\n' +
    'reason; the exit status is 0 when every submission got a result, 3 when the engine failed.\n' +
    '  --gradebook FILE.csv   a row per student: a column per task, the total\n' +
    '  --junit FILE           a testsuite per student; test names as written in the lab (no addresses)\n' +
    '  --gradescope DIR       DIR/<student>/results.json in Gradescope autograder format\n' +
    "  --prairielearn DIR     DIR/<student>/results.json in PrairieLearn's external grader format\n" +
    '  --shard K/N            only the Kth of N shares of the files (by file name): spread a class over a CI matrix\n' +
    '  --timeout D            per submission, the whole lab (default 10m); --task-timeout D caps each answer\n' +
    '  --poll D               how often checks look (default 100ms; lab start looks every 20ms)\n' +
    '  --retries N            grade a submission that did not pass again, N times (default 1); the best run counts\n' +
    '--submission FILE grades one file: exit 0 when every check is met, 1 when not, 2 when it cannot be graded;\n' +
    '--student ID: who handed it in (a file that names another student is not graded).\n' +
    'See docs/instructors.md.',
  options: {
    all: { type: 'boolean' },
    junit: { type: 'string' },
    trace: { type: 'string' },
    parallel: { type: 'string' },
    student: { type: 'string' },
    submissions: { type: 'string', multiple: true },
    submission: { type: 'string' },
    gradebook: { type: 'string' },
    gradescope: { type: 'string' },
    prairielearn: { type: 'string' },
    shard: { type: 'string' },
    timeout: { type: 'string' },
    'task-timeout': { type: 'string' },
    poll: { type: 'string' },
    retries: { type: 'string' },
    ...IMAGE_OPTION,
  },
  async run(ctx, values, positionals) {
    const classMode = values.submissions !== undefined || values.submission !== undefined;
    if (!classMode) {
      for (const flag of ['gradebook', 'gradescope', 'prairielearn', 'shard', 'timeout', 'task-timeout', 'poll', 'retries'] as const)
        if (values[flag] !== undefined)
          throw new LabError(`--${flag} goes with --submissions`, 'for example `lab grade 2 --submissions subs/`');
      checkOutputs(values);
      return gradeLabs(ctx, values, positionals);
    }
    if (values.all)
      throw new LabError(
        '--all grades the labs themselves; --submissions grades one lab',
        'name the lab: `lab grade 2 --submissions subs/`',
      );
    if (values.student && values.submission === undefined)
      throw new LabError(
        '--student is for a lab run, or with --submission FILE: who handed that file in',
        "a class's files each name their student",
      );
    if (values.student && !STUDENT_ID.test(values.student))
      throw new LabError(`--student '${printable(values.student)}' cannot be a student id`, `a student id has ${STUDENT_ID_RULE}`);
    if (values.submission !== undefined && values.submissions !== undefined)
      throw new LabError('give --submission FILE (one) or --submissions <dir|file...> (a class), not both');
    const [ref, ...more] = positionals;
    if (!ref) throw new LabError('which lab do the submissions answer?', 'for example `lab grade 2 --submissions subs/`');
    if (values.submission !== undefined && more.length)
      throw new LabError('--submission grades one file', `use --submissions for several (got ${more.join(', ')} besides the lab)`);
    checkOutputs(values);
    const single = values.submission !== undefined;
    const paths = single ? [values.submission!] : [...values.submissions!, ...more];
    const { lab, file } = resolveLab(ref);
    if (taskSteps(lab).length === 0)
      throw new LabError(
        `lab ${lab.id} (${lab.slug}) has no tasks, so there is nothing to submit`,
        'labs with tasks: `lab list` shows them',
      );
    const shard = values.shard ? parseShard(values.shard) : undefined;
    // Checked before anything is read; the engine is asked for its CPUs only when there are files to share out.
    const parallelGiven = values.parallel !== undefined ? parallelOf(values.parallel, 4) : undefined;
    const labTimeoutMs = durationOf('--timeout', values.timeout ?? DEFAULT_LAB_TIMEOUT);
    const taskTimeoutMs = values['task-timeout'] ? durationOf('--task-timeout', values['task-timeout']) : undefined;
    const pollIntervalMs = pollOf(values.poll ?? DEFAULT_CLASS_POLL);
    const retries = Number(values.retries ?? 1);
    if (!Number.isInteger(retries) || retries < 0 || retries > 5) throw new LabError('--retries takes a whole number from 0 to 5');
    const skipped: string[] = [];
    let files = submissionFiles(paths, skipped);
    // What a folder holds besides .yaml files is not graded, and is named: a student's alice.yaml.txt gets no row.
    const others = skipped.length
      ? `${skipped.length} file${skipped.length === 1 ? '' : 's'} not ending in .yaml or .yml: ${skipped
          .slice(0, 5)
          .map((f) => printable(basename(f)).replace(/\n/g, '\\n'))
          .join(', ')}${skipped.length > 5 ? ', ...' : ''}`
      : '';
    if (files.length === 0)
      throw new LabError(
        `no submissions in ${paths.join(', ')}${others ? ` (${others})` : ''}`,
        'a submission is a .yaml file that `lab submit` writes',
      );
    if (others) ctx.info(`${ctx.errStyle.yellow('note:')} not graded: ${others}`);
    if (shard) files = files.filter((f) => inShard(f, shard));
    const parallel = parallelGiven ?? (files.length > 1 ? await classParallel(ctx.runtime) : 4);
    return gradeClass(ctx, lab, readFileSync(file, 'utf8'), files, {
      single,
      parallel,
      labTimeoutMs,
      ...(taskTimeoutMs !== undefined ? { taskTimeoutMs } : {}),
      pollIntervalMs,
      retries,
      ...(values.student ? { handedInBy: values.student } : {}),
      ...(values.gradebook ? { gradebook: values.gradebook } : {}),
      ...(values.junit ? { junit: values.junit } : {}),
      ...(values.gradescope ? { gradescope: values.gradescope } : {}),
      ...(values.prairielearn ? { prairielearn: values.prairielearn } : {}),
      ...(values['base-image'] ? { base: values['base-image'] } : {}),
      ...(shard ? { shard } : {}),
    });
  },
});

/** The labs' own solutions: every expectation met, or exit 1. */
async function gradeLabs(
  ctx: Context,
  values: { all?: boolean; junit?: string; parallel?: string; student?: string; trace?: string; 'base-image'?: string },
  positionals: string[],
): Promise<number> {
  if (!values.all && positionals.length === 0)
    throw new LabError('lab grade needs labs to grade', 'for example `lab grade 1 2`, or `lab grade --all`');
  const labs = values.all ? catalogue().map((l) => l.lab) : positionals.map((p) => resolveLab(p).lab);
  const parallel = parallelOf(values.parallel, 1);
  const started = performance.now();
  const students = labs.map((l) => studentFor(l, values.student));
  const image = await prepareImage(ctx, values['base-image'], stderrRenderer(ctx));
  const results: LabResult[] = new Array(labs.length);
  await eachInPool(
    labs,
    parallel,
    async (lab, i) => {
      const student = students[i];
      // --trace: keep the instance (its recorder outlives the containers) and each step's window.
      let ran: Instance | undefined;
      const windows = new StepWindows();
      results[i] = await runTracked(ctx, lab, image, values.trace ? windows.onEvent : () => {}, {
        ...(student ? { student } : {}),
        ...(values.trace ? { onInstance: (x: Instance) => (ran = x) } : {}),
      });
      ctx.info(renderLabResult(results[i]!, ctx.json ? ctx.errStyle : ctx.style));
      if (values.trace && ran) {
        const files = writeTrace(values.trace, ran, results[i]!, windows.sections);
        ctx.info(ctx.errStyle.dim(`  trace: ${files.join(', ')}`));
      }
    },
    ctx.signal,
  );
  const passed = results.every((r) => r?.passed);
  // A lab with variants ran with one student's values: say whose, and which (the checks show them filled in).
  const labsOut = results.map((r, i) => {
    const variants = students[i] ? variantValues(labs[i]!, students[i]) : {};
    return Object.keys(variants).length ? { ...r, student: students[i], variants } : r;
  });
  const summary = { passed, labs: labsOut, durationMs: performance.now() - started };
  if (values.junit) writeOutputFile('--junit', values.junit, renderJunit(results));
  if (ctx.json) ctx.print(JSON.stringify(summary, null, 2));
  else {
    const line = `${results.filter((r) => r.passed).length}/${results.length} labs in ${formatDuration(summary.durationMs)}`;
    ctx.print(`${passed ? ctx.style.green('all passed') : ctx.style.red('FAILED')}: ${line}`);
  }
  return passed ? 0 : 1;
}

interface ClassOptions {
  single: boolean;
  parallel: number;
  labTimeoutMs: number;
  taskTimeoutMs?: number;
  pollIntervalMs: number;
  retries: number;
  handedInBy?: string;
  gradebook?: string;
  junit?: string;
  gradescope?: string;
  prairielearn?: string;
  base?: string;
  shard?: Shard;
}

async function gradeClass(ctx: Context, lab: Lab, labText: string, files: string[], opts: ClassOptions): Promise<number> {
  const started = performance.now();
  const style = ctx.json ? ctx.errStyle : ctx.style;
  const image = files.length ? await prepareImage(ctx, opts.base, stderrRenderer(ctx)) : '';
  ctx.info(
    style.dim(
      `grading ${files.length} submission${files.length === 1 ? '' : 's'} of lab ${lab.id} (${lab.slug})${opts.shard ? `, shard ${opts.shard.k}/${opts.shard.n}` : ''}, ${Math.min(opts.parallel, Math.max(files.length, 1))} at a time`,
    ),
  );
  const { results, engineFailed, nullAnswer } = await gradeSubmissions(files, {
    runtime: ctx.runtime,
    lab,
    labText,
    image,
    parallel: opts.parallel,
    labTimeoutMs: opts.labTimeoutMs,
    ...(opts.taskTimeoutMs !== undefined ? { taskTimeoutMs: opts.taskTimeoutMs } : {}),
    pollIntervalMs: opts.pollIntervalMs,
    retries: opts.retries,
    ...(opts.handedInBy ? { handedInBy: opts.handedInBy } : {}),
    signal: ctx.signal,
    version: VERSION,
    track: (id) => ctx.live.add(id),
    untrack: (id) => ctx.live.delete(id),
    onResult: (r, done, total) => ctx.info(renderSubmissionLine(r, style, `${done}/${total}`)),
  });
  const durationMs = performance.now() - started;
  if (nullAnswer) ctx.info(renderNullAnswer(nullAnswer, style));
  if (opts.gradebook) writeOutputFile('--gradebook', opts.gradebook, renderGradebook(lab, results));
  if (opts.junit) writeOutputFile('--junit', opts.junit, renderSubmissionsJunit(lab, results));
  if (opts.gradescope) writePerStudent('--gradescope', opts.gradescope, results, (r) => gradescopeResults(lab, r));
  if (opts.prairielearn) writePerStudent('--prairielearn', opts.prairielearn, results, (r) => prairieLearnResults(lab, r));
  const counts = {
    passed: results.filter((r) => r.passed).length,
    failed: results.filter((r) => r.gradable && !r.passed).length,
    ungradable: results.filter((r) => !r.gradable).length,
  };
  if (ctx.json) {
    ctx.print(
      JSON.stringify(
        {
          lab: { id: lab.id, slug: lab.slug, title: lab.title },
          ...(opts.shard ? { shard: `${opts.shard.k}/${opts.shard.n}` } : {}),
          counts,
          durationMs,
          ...(nullAnswer ? { nullAnswer } : {}),
          submissions: results,
        },
        null,
        2,
      ),
    );
  } else {
    const perSecond = durationMs > 0 ? (results.length / (durationMs / 1000)).toFixed(2) : '0';
    ctx.print(
      `graded ${results.length} submission${results.length === 1 ? '' : 's'} in ${formatDuration(durationMs)} (${perSecond}/s): ` +
        `${counts.passed} passed, ${counts.failed} not, ${counts.ungradable} not gradable`,
    );
  }
  if (engineFailed) {
    ctx.err.write(`${ctx.errStyle.red('error:')} the Docker engine failed for some submissions (see "engine:" above); grade them again\n`);
    return 3;
  }
  if (opts.single) {
    const r = results[0];
    return !r || !r.gradable ? 2 : r.passed ? 0 : 1;
  }
  return 0;
}

function renderSubmissionLine(given: SubmissionResult, s: Style, progress: string): string {
  // Results are made printable where they are made (src/submit/batch.ts); once more here, where they reach a
  // terminal, before our own colours are added.
  const r = printableDeep(given);
  const who = r.student ?? basename(r.file);
  if (!r.gradable)
    return `${s.yellow('? not gradable')} ${who} (${r.file}) [${progress}]\n    ${(r.reason ?? '').split('\n').join('\n    ')}`;
  const head = `${r.passed ? s.green('✓ PASS') : s.red('✗ FAIL')} ${who}: ${r.score}/${r.maxScore} points in ${formatDuration(r.durationMs)} [${progress}]`;
  const lines = [head];
  for (const t of r.tasks) lines.push(`    ${sectionWhy(t) || `${t.step}: ${t.score}/${t.maxScore}`}`);
  if (r.error) lines.push(`    ${s.red('stopped:')} ${r.error}`);
  else if (r.settled) lines.push(`    ${s.dim('the rest of the lab was not run: nothing in it could change this score')}`);
  for (const w of r.warnings ?? []) lines.push(`    ${s.yellow('note:')} ${w}`);
  return lines.join('\n');
}

/** What the null answer (every task left undone) met: those checks paid nothing of their own in this batch. */
function renderNullAnswer(n: NullAnswer, s: Style): string {
  if (n.error) return `${s.yellow('note:')} the null answer could not be graded (${n.error})`;
  const own = n.met.filter((c) => c.points > 0);
  const lines = [
    s.dim(
      `the null answer (no answer at all) scored ${n.score ?? 0} and met ${n.met.length} check${n.met.length === 1 ? '' : 's'} from the first task on` +
        (n.met.length
          ? `; ${own.length ? `${own.length} of them had points of their own, which paid nothing` : 'none had points of its own'}`
          : ''),
    ),
  ];
  for (const w of n.warnings) lines.push(`    ${s.yellow('note:')} ${w}`);
  return lines.join('\n');
}

/** DIR/<student>/results.json; a file that does not say who it is from is named after the file. */
function writePerStudent(option: string, dir: string, results: SubmissionResult[], doc: (r: SubmissionResult) => unknown): void {
  for (const r of results) {
    const name = resultFolder(r);
    makeOutputFolder(option, join(dir, name));
    writeOutputFile(option, join(dir, name, 'results.json'), JSON.stringify(doc(r), null, 2) + '\n');
  }
}
