// lab submit: the student's hand-in, written from what they typed in each task of their last walk of a lab.
// Offline: it reads only the record the walk left in the state directory (src/walk/capture.ts).
import { writeFileSync } from 'node:fs';
import { LabError, formatProblem } from '../../errors.js';
import { resolveLab } from '../../lab/catalogue.js';
import type { Lab } from '../../lab/schema.js';
import { STUDENT_ID, STUDENT_ID_RULE, resolveStudent } from '../../identity.js';
import { variantValues } from '../../lab/variants.js';
import { renderSubmission, type TaskNote } from '../../submit/render.js';
import { validateSubmissionText, type Submission } from '../../submit/submission.js';
import { defineCommand } from '../command.js';
import { stateFiles, type LabWork } from '../../walk/state-files.js';
import { VERSION } from '../../version.js';
import { labCommand } from '../invocation.js';

export const submitCommand = defineCommand({
  name: 'submit',
  usage: 'submit [lab] [--student ID] [-o FILE]',
  summary: 'write your submission: the commands you typed in each task of your last walk of a lab',
  help:
    'Writes a submission file (YAML) for your instructor: for each task of the lab you walked last (or the lab\n' +
    'named), the commands you typed in `lab shell` on each machine during that task, up to the `lab check` that\n' +
    'passed. Addresses become templates ({{server.ip}}), so the file replays in any instance. It records the\n' +
    "tcplab version and the lab file's hash, and works offline. -o FILE (default submission-<lab>-<student>.yaml;\n" +
    '-o - prints it). --student ID: who you are, if not the id the walk used (lab start --student).',
  options: { student: { type: 'string' }, output: { type: 'string', short: 'o' } },
  async run(ctx, values, positionals) {
    if (positionals.length > 1) throw new LabError('lab submit takes at most one lab', 'for example `lab submit 2`');
    const known = positionals[0] ? resolveLab(positionals[0]) : undefined;
    const work = known ? stateFiles().loadWork(known.lab.slug) : stateFiles().latestWork();
    if (!work)
      throw new LabError(
        known ? `nothing was recorded for lab ${known.lab.id} (${known.lab.slug}) yet` : 'nothing was recorded yet',
        `walk a lab with tasks at a terminal (\`${labCommand()} start 1\`), do its tasks in \`${labCommand()} shell\`, then run \`${labCommand()} submit\``,
      );
    const lab = known?.lab ?? resolveLab(work.lab.file).lab;
    const student = studentOf(lab, work, values.student);
    const submission: Submission = {
      student,
      lab: lab.id,
      answers: Object.fromEntries(
        lab.steps
          .filter((st) => st.task && work.tasks[st.id]?.answer.length)
          .map((st) => [st.id, Object.fromEntries(work.tasks[st.id]!.answer.map((a) => [a.node, a.lines.join('\n') + '\n']))]),
      ),
      tcplab: VERSION,
      ...(work.lab.hash ? { labHash: work.lab.hash } : {}),
      submittedAt: new Date().toISOString(),
    };
    const notes: TaskNote[] = lab.steps
      .filter((st) => st.task && work.tasks[st.id])
      .map((st) => {
        const t = work.tasks[st.id]!;
        const status = t.passed
          ? `lab check passed at attempt ${t.attempts}`
          : t.solvedByTcplab
            ? 'not done: tcplab showed the solution'
            : `not done: ${t.attempts} lab check attempt${t.attempts === 1 ? '' : 's'}`;
        return { step: st.id, title: st.title, status };
      });
    const text = renderSubmission(submission, notes);
    // What we write must load as the grader will load it.
    const check = validateSubmissionText(text, lab);
    if (!check.ok)
      throw new Error(`lab submit wrote a submission that does not load: ${check.problems.map((p) => formatProblem('-', p)).join('; ')}`);
    const missing = lab.steps.filter((st) => st.task && !submission.answers?.[st.id]).map((st) => st.id);
    const out = values.output ?? `submission-${lab.slug}-${student}.yaml`;
    if (out === '-') ctx.out.write(text);
    else writeFileSync(out, text);
    const summary = {
      file: out === '-' ? null : out,
      student,
      lab: { id: lab.id, slug: lab.slug },
      tasks: Object.keys(submission.answers ?? {}),
      missing,
    };
    if (ctx.json && out !== '-') ctx.print(JSON.stringify(summary, null, 2));
    else if (out !== '-') {
      ctx.print(
        `wrote ${out}: lab ${lab.id} (${lab.slug}) for ${student}, ${summary.tasks.length} of ${summary.tasks.length + missing.length} tasks`,
      );
      ctx.print(ctx.style.dim(`check it as your instructor will: ${labCommand()} grade ${lab.id} --submission ${out}`));
    }
    for (const id of missing) ctx.err.write(`${ctx.errStyle.yellow('note:')} no commands were recorded for task ${id}\n`);
    return 0;
  },
});

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
