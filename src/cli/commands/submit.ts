// lab submit: the student's hand-in, written from what they typed in each task of their last walk of a lab, as
// one timeline per task (src/submit/hand-in.ts). Writing reads only the record the walk left in the state
// directory (src/walk/capture.ts), offline. Then, when a container engine answers, the file is tried once in a
// fresh instance as the instructor's `lab grade --submission` will (src/submit/verify.ts), and the student is
// told plainly if it would not pass, before handing it in.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError, LabError } from '../../errors.js';
import { resolveLab } from '../../lab/catalogue.js';
import type { Lab } from '../../lab/schema.js';
import { STUDENT_ID, STUDENT_ID_RULE, resolveStudent } from '../../identity.js';
import { variantValues } from '../../lab/variants.js';
import { handIn } from '../../submit/hand-in.js';
import { answersOf } from '../../submit/submission.js';
import { verificationReport, verifySubmission } from '../../submit/verify.js';
import type { SubmissionResult } from '../../submit/batch.js';
import { defineCommand } from '../command.js';
import type { Context } from '../context.js';
import { prepareImage, stderrRenderer } from '../run-tracked.js';
import { stateFiles, type LabWork } from '../../walk/state-files.js';
import { VERSION } from '../../version.js';
import { labCommand } from '../invocation.js';
import { checkOutputFile, writeOutputFile } from '../output-file.js';
import { terminalWidth, wrapText } from '../wrap.js';

/** How long `lab submit` waits for an engine to answer before it says the file was not verified. */
const ENGINE_PROBE_MS = 5_000;
/** The whole lab, once, as `lab grade`'s default --timeout. */
const VERIFY_LAB_TIMEOUT_MS = 10 * 60_000;
/** How often the verification's checks look: as `lab grade --submission` does. */
const VERIFY_POLL_MS = 100;

export const submitCommand = defineCommand({
  name: 'submit',
  usage: 'submit [lab] [--student ID] [-o FILE] [--no-verify]',
  summary: 'write your submission: the commands you typed in each task of your last walk of a lab',
  help:
    'Writes a submission file (YAML) for your instructor: for each task of the lab you walked last (or the lab\n' +
    'named), the commands you typed in `lab shell` during that task, up to the `lab check` that passed, on every\n' +
    'machine in the order they happened, each with how it ended (its exit status, or the Ctrl-C that ended it).\n' +
    'Addresses become templates ({{server.ip}}), so the file replays in any instance. It records the tcplab\n' +
    "version and the lab file's hash. -o FILE (default submission-<lab>-<student>.yaml; -o - prints it).\n" +
    '--student ID: who you are, if not the id the walk used (lab start --student).\n\n' +
    'Then, when a container engine answers, it tries the file once in a fresh instance of the lab, as your\n' +
    "instructor's `lab grade <lab> --submission FILE` will, and says whether it passes (about a minute).\n" +
    '--no-verify skips that; --verify insists on it (an engine that does not answer is then exit 3).\n' +
    'Exit status: 0 written (and it passes, or was not tried), 1 written but it would not pass, 2 nothing to\n' +
    'write (bad usage, nothing recorded), 3 written but the engine failed while trying it. See docs/students.md.',
  options: {
    student: { type: 'string' },
    output: { type: 'string', short: 'o' },
    verify: { type: 'boolean' },
    'no-verify': { type: 'boolean' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length > 1) throw new LabError('lab submit takes at most one lab', 'for example `lab submit 2`');
    if (values.verify && values['no-verify']) throw new LabError('give --verify or --no-verify, not both');
    if (values.output !== undefined && values.output !== '-') checkOutputFile('-o', values.output);
    const known = positionals[0] ? resolveLab(positionals[0]) : undefined;
    const work = known ? stateFiles().loadWork(known.lab.slug) : stateFiles().latestWork();
    if (!work)
      throw new LabError(
        known ? `nothing was recorded for lab ${known.lab.id} (${known.lab.slug}) yet` : 'nothing was recorded yet',
        `walk a lab with tasks at a terminal (\`${labCommand()} start 1\`), do its tasks in \`${labCommand()} shell\`, then run \`${labCommand()} submit\``,
      );
    const { lab, file: labFile } = known ?? resolveLab(work.lab.file);
    const student = studentOf(lab, work, values.student);
    const written = handIn(lab, student, work.tasks, {
      tcplab: VERSION,
      ...(work.lab.hash ? { labHash: work.lab.hash } : {}),
      submittedAt: new Date().toISOString(),
    });
    const out = values.output ?? `submission-${lab.slug}-${student}.yaml`;
    if (out === '-') ctx.out.write(written.text);
    else writeOutputFile('-o', out, written.text);
    // With -o - the file is stdout; with --json, stdout is one document: words for people go to stderr then.
    // Wrapped at spaces to the terminal it goes to, as the walk's text is (never mid-word).
    const toErr = (text: string) => ctx.err.write(wrapText(text, terminalWidth(ctx.err)) + '\n');
    const say = (text: string) => (out === '-' || ctx.json ? toErr(text) : ctx.say(text));
    const style = out === '-' || ctx.json ? ctx.errStyle : ctx.style;
    if (out !== '-' && !ctx.json)
      say(
        `wrote ${out}: lab ${lab.id} (${lab.slug}) for ${student}, ${written.tasks.length} of ${written.tasks.length + written.missing.length} tasks`,
      );
    for (const id of written.missing) toErr(`${ctx.errStyle.yellow('note:')} no commands were recorded for task ${id}`);

    const verified = await verify(ctx, lab, labFile, out, written.text, values.verify ? 'insist' : values['no-verify'] ? 'skip' : 'auto');
    let code = 0;
    let verification: Record<string, unknown> = { verified: false, why: verified.why };
    if (verified.result) {
      const report = verificationReport(verified.result, lab, answersOf(written.submission));
      verification = {
        verified: true,
        passes: report.passed,
        score: verified.result.score,
        maxScore: verified.result.maxScore,
        ...(report.passed ? {} : { why: [report.head, ...report.lines] }),
      };
      say(report.passed ? `${style.green('✓')} ${report.head}` : `${style.red('✗')} ${report.head}`);
      for (const line of report.lines) say(`    ${line}`);
      if (!report.passed) {
        code = 1;
        say(
          `the file is written, and it is yours to hand in or not: fix it (docs/students.md, "Handing in") and try it with ` +
            `\`${labCommand()} grade ${lab.id} --submission ${out === '-' ? 'FILE' : out}\`, or do the task again in a new walk and submit again`,
        );
      }
    } else if (verified.engineFailed) {
      code = 3;
      toErr(`${ctx.errStyle.red('error:')} ${verified.why}`);
    } else say(style.dim(`not tried: ${verified.why}`));
    if (code === 0 && out !== '-' && !ctx.json)
      say(style.dim(`check it again as your instructor will: ${labCommand()} grade ${lab.id} --submission ${out}`));

    if (ctx.json && out !== '-')
      ctx.print(
        JSON.stringify(
          { file: out, student, lab: { id: lab.id, slug: lab.slug }, tasks: written.tasks, missing: written.missing, ...verification },
          null,
          2,
        ),
      );
    return code;
  },
});

interface Verified {
  result?: SubmissionResult;
  /** Why it was not tried, or what went wrong. */
  why?: string;
  engineFailed?: boolean;
}

/** Try the file once in a fresh instance, when asked to or when an engine answers. */
async function verify(
  ctx: Context,
  lab: Lab,
  labFile: string,
  out: string,
  text: string,
  mode: 'auto' | 'insist' | 'skip',
): Promise<Verified> {
  if (mode === 'skip') return { why: '--no-verify' };
  let timer: NodeJS.Timeout | undefined;
  const reachable = await Promise.race([
    ctx.runtime.info().then(
      () => undefined,
      (e: unknown) => (e as Error).message,
    ),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`no answer within ${ENGINE_PROBE_MS / 1000} s`), ENGINE_PROBE_MS))),
  ]).finally(() => clearTimeout(timer));
  if (reachable !== undefined) {
    const why = `no container engine answered (${reachable.split('\n')[0]})`;
    if (mode === 'insist') return { why: `--verify: ${why}`, engineFailed: true };
    return { why: `${why}; \`${labCommand()} grade ${lab.id} --submission FILE\` tries it where one runs` };
  }
  // -o - printed the file: it is tried from a copy.
  let dir: string | undefined;
  let file = out;
  if (out === '-') {
    dir = mkdtempSync(join(tmpdir(), 'tcplab-submit-'));
    file = join(dir, 'submission.yaml');
    writeFileSync(file, text);
  }
  try {
    // Progress, not the result: stderr, as every command's progress.
    ctx.err.write(
      ctx.errStyle.dim(
        `trying it once in a fresh instance of lab ${lab.id}, as \`lab grade\` will (about a minute; --no-verify skips this)...`,
      ) + '\n',
    );
    const image = await prepareImage(ctx, undefined, stderrRenderer(ctx));
    const result = await verifySubmission(file, {
      runtime: ctx.runtime,
      lab,
      labText: readFileSync(labFile, 'utf8'),
      image,
      labTimeoutMs: VERIFY_LAB_TIMEOUT_MS,
      pollIntervalMs: VERIFY_POLL_MS,
      signal: ctx.signal,
      version: VERSION,
      track: (id) => ctx.live.add(id),
      untrack: (id) => ctx.live.delete(id),
    });
    return { result };
  } catch (e) {
    if (e instanceof EngineError) return { why: `the file is written, but trying it failed: ${e.message}`, engineFailed: true };
    throw e;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** The walk's student, unless told otherwise; another student's variants would make the answers fail. */
function studentOf(lab: Lab, work: LabWork, given: string | undefined): string {
  if (given !== undefined && !STUDENT_ID.test(given))
    throw new LabError(`'${given}' cannot be a student id`, `a student id has ${STUDENT_ID_RULE}`);
  const walked = work.student;
  if (given !== undefined && walked !== undefined && given !== walked && Object.keys(lab.variants ?? {}).length) {
    const theirs = JSON.stringify(variantValues(lab, walked));
    if (theirs !== JSON.stringify(variantValues(lab, given)))
      throw new LabError(
        `you walked lab ${lab.id} as ${walked}, whose values (${theirs}) differ from ${given}'s: the answers would fail`,
        `walk it again as ${given}: \`${labCommand()} start ${lab.id} --student ${given}\`, then \`${labCommand()} submit\``,
      );
  }
  return given ?? walked ?? resolveStudent(undefined).id;
}
