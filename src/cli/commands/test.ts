// `lab test`: a lab tested as an author tests it before a class, in real containers (src/submit/lab-test.ts):
// its solutions pass, the null answer scores 0 and fails, the checks the null answer meets carry no points of
// their own, and every mutant answer beside it fails. Exit 0 when all of that holds, 1 when not.
import { readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { LabError, formatProblem } from '../../errors.js';
import { catalogue, resolveLab } from '../../lab/catalogue.js';
import { formatDuration } from '../../lab/duration.js';
import { printable } from '../../printable.js';
import type { Style } from '../../report/style.js';
import { mutantFiles, testLabs, type LabTestReport } from '../../submit/lab-test.js';
import { loadSubmission } from '../../submit/submission.js';
import { defineCommand } from '../command.js';
import { IMAGE_OPTION, prepareImage, stderrRenderer } from '../run-tracked.js';
import { VERSION } from '../../version.js';

const DEFAULT_POLL_MS = 100;

export const testCommand = defineCommand({
  name: 'test',
  usage: 'test <lab|file...>|--all [--runs N] [--parallel N] [--json]',
  summary: 'test a lab before a class: its solutions pass, the null answer scores 0, its mutant answers fail',
  help:
    'lab test <lab|file...> runs, for each lab, in real containers:\n' +
    '  - the lab with its own solutions: every check must be met, in every run;\n' +
    '  - the null answer (every task left undone): it must score 0 and fail; the checks it meets are listed\n' +
    '    with the points they would carry, and a check with points of its own among them fails the test;\n' +
    '  - the mutant answers beside the lab file (<lab>.mutants/*.yaml, submission files): each must fail.\n' +
    '  --runs N       do each N times (default 1): a check that depends on luck in timing shows\n' +
    '  --parallel N   labs at a time, over all the runs (default 4)\n' +
    'Exit 0 when every lab passes its test, 1 when one does not, 2 for a bad lab or mutant file, 3 when\n' +
    'the engine failed. See docs/authoring.md "Testing a lab".',
  options: {
    all: { type: 'boolean' },
    runs: { type: 'string' },
    parallel: { type: 'string' },
    ...IMAGE_OPTION,
  },
  async run(ctx, values, positionals) {
    if (!values.all && positionals.length === 0)
      throw new LabError('lab test needs labs to test', 'for example `lab test 2`, `lab test my-lab.yaml`, or `lab test --all`');
    if (values.all && positionals.length) throw new LabError('give labs or --all, not both');
    const runs = Number(values.runs ?? 1);
    if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new LabError('--runs takes a whole number from 1 to 20');
    const parallel = Number(values.parallel ?? 4);
    if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) throw new LabError('--parallel takes a whole number from 1 to 64');
    const loaded = values.all ? catalogue() : positionals.map((p) => resolveLab(p));
    const labs = loaded.map((l) => ({ lab: l.lab, file: l.file, text: readFileSync(l.file, 'utf8') }));
    // A mutant file that cannot be graded is the author's to fix before anything runs (exit 2, file:line).
    const broken = labs.flatMap((l) =>
      mutantFiles(l.file).flatMap((f) => {
        const loaded = loadSubmission(f, l.lab);
        return loaded.ok ? [] : loaded.problems.map((p) => formatProblem(f, p));
      }),
    );
    if (broken.length)
      throw new LabError(
        `mutant answers that cannot be graded:\n  ${broken.map(printable).join('\n  ')}`,
        'a mutant is a submission file: `lab grade LAB --submission FILE` says what it needs',
      );
    const style = ctx.json ? ctx.errStyle : ctx.style;
    const started = performance.now();
    const image = await prepareImage(ctx, values['base-image'], stderrRenderer(ctx));
    ctx.info(
      style.dim(
        `testing ${labs.length} lab${labs.length === 1 ? '' : 's'}, ${runs} run${runs === 1 ? '' : 's'} each, ${parallel} at a time`,
      ),
    );
    const reports = await testLabs(labs, {
      runtime: ctx.runtime,
      image,
      parallel,
      runs,
      // A lab's own time limit, as lab grade --submissions gives each submission.
      labTimeoutMs: 10 * 60_000,
      pollIntervalMs: DEFAULT_POLL_MS,
      signal: ctx.signal,
      version: VERSION,
      track: (id) => ctx.live.add(id),
      untrack: (id) => ctx.live.delete(id),
      onLab: (r) => ctx.info(renderReport(r, style)),
    });
    const durationMs = performance.now() - started;
    const passed = reports.filter((r) => r.ok).length;
    const engine = reports.some((r) => r.engineFailed);
    if (ctx.json) ctx.print(JSON.stringify({ passed: passed === reports.length, labs: reports, durationMs }, null, 2));
    else
      ctx.print(
        `${passed === reports.length ? ctx.style.green('all passed') : ctx.style.red('FAILED')}: ${passed}/${reports.length} labs passed their test in ${formatDuration(durationMs)}`,
      );
    return engine ? 3 : passed === reports.length ? 0 : 1;
  },
});

function renderReport(r: LabTestReport, s: Style): string {
  const mark = (ok: boolean) => (ok ? s.green('✓') : s.red('✗'));
  const file = relative(process.cwd(), r.file) || r.file;
  const lines = [
    `${r.ok ? s.green('PASS') : s.red('FAIL')} Lab ${r.lab.id} ${r.lab.slug} (${file}), done after ${formatDuration(r.durationMs)}`,
  ];
  const sol = r.solutions;
  lines.push(
    `  ${mark(sol.passed === r.runs)} solutions: ${sol.passed}/${r.runs} passed${sol.scores.length ? `, ${sol.scores.join(', ')} of ${sol.maxScore} points` : ''}`,
  );
  for (const f of sol.failed) lines.push(`      ${printable(f)}`);
  const n = r.nullAnswer;
  if (!n) lines.push(`  - null answer: the lab has no task`);
  else {
    const ok = n.scores.every((x) => x === 0) && n.failedRuns === n.scores.length;
    lines.push(
      `  ${mark(ok)} null answer: scored ${n.scores.join(', ')} of ${sol.maxScore}, failed ${n.failedRuns}/${n.scores.length} runs; meets ${n.met.length} check${n.met.length === 1 ? '' : 's'} from the first task on`,
    );
    for (const c of n.met)
      lines.push(
        `      ${c.step}: ${c.name} ${c.points > 0 ? s.red(`[${c.points} points of its own: refused]`) : s.dim(`[no points of its own: counts only with task ${c.task}]`)}`,
      );
  }
  if (r.mutants.length === 0) lines.push(`  - mutants: none (${basename(r.file).replace(/\.ya?ml$/, '')}.mutants/*.yaml)`);
  for (const m of r.mutants) {
    const ok = !m.reason && m.failedRuns === m.scores.length;
    const what = m.reason
      ? `cannot be graded: ${m.reason}`
      : `failed ${m.failedRuns}/${m.scores.length} runs, ${m.scores.join(', ')} points`;
    lines.push(`  ${mark(ok)} mutant ${basename(m.file)}: ${printable(what)}`);
  }
  for (const p of r.problems) lines.push(`  ${s.red('problem:')} ${printable(p)}`);
  return lines.join('\n');
}
