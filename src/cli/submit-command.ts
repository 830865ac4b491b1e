// lab submit: the student's hand-in, written from what they typed in each task of their last walk of a lab.
// Offline: it reads only the record the walk left in the state directory (src/cli/capture.ts).
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LabError, formatProblem } from '../errors.js';
import { resolveLab } from '../lab/catalogue.js';
import type { Lab } from '../lab/schema.js';
import { STUDENT_ID, STUDENT_ID_RULE, resolveStudent } from '../identity.js';
import { variantValues } from '../lab/variants.js';
import { renderSubmission, type TaskNote } from '../submit/render.js';
import { validateSubmissionText, type Submission } from '../submit/submission.js';
import { defineCommand } from './command.js';
import { latestWork, loadWork, type LabWork } from './state.js';
import { VERSION } from './version.js';

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
    const work = known ? loadWork(known.lab.slug) : latestWork();
    if (!work)
      throw new LabError(
        known ? `nothing was recorded for lab ${known.lab.id} (${known.lab.slug}) yet` : 'nothing was recorded yet',
        'walk a lab with tasks at a terminal (`lab start 1`), do its tasks in `lab shell`, then run `lab submit`',
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
      ctx.print(ctx.style.dim(`check it as your instructor will: lab grade ${lab.id} --submission ${out}`));
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
        `walk it again as ${given}: \`lab start ${lab.id} --student ${given}\`, then \`lab submit\``,
      );
  }
  return given ?? walked ?? resolveStudent(undefined).id;
}

/** The JSON Schema that ships with tcplab, for editors (the labs in labs/ name it relatively). */
const SCHEMA_FILE = fileURLToPath(new URL('../../schema/lab.schema.json', import.meta.url));

const NEW_LAB = (slug: string, id: number) => `# yaml-language-server: $schema=${SCHEMA_FILE}
# A tcplab lab, started by \`lab new ${slug}\`. Check it with \`lab validate FILE\`, run it with \`lab start FILE\`,
# grade its reference solution with \`lab grade FILE\`. docs/authoring.md explains every field.
id: ${id}
slug: ${slug}
title: A new lab
summary: One line for \`lab list\`.
topology: direct            # direct: client and server on one bridge; routed: a firewall between them
intro: |
  What the student will see and why it matters. Shown once, before the first step.
# Kernel settings per machine, set when its container is created (only net.ipv4.*, net.ipv6.*, net.core.*).
nodes:
  client:
    sysctls:
      net.ipv4.tcp_syn_retries: 3
# Per-student values: {{variant.port}} is a port of each student's own, derived from the student id.
variants:
  port: { range: [6000, 6099] }
steps:
  - id: listen
    title: The server listens
    explain: |
      Each step runs its commands (argv arrays, inside the machine named by \`on\`), then polls its
      expectations from the moment the commands are done.
    run:
      # A command that keeps running needs a name (to stop or check it later) and background: true.
      - { on: server, run: [nc, -l, "{{variant.port}}"], name: server, background: true }
    expect:
      - on: server
        socket: { state: LISTEN, local: "*:{{variant.port}}" }
        why: a passive open waits in LISTEN
  - id: connect
    title: "Your task: connect the client"
    explain: A task is done by the student, in \`lab shell\`, and checked with \`lab check\`.
    task:
      prompt: |
        In \`lab shell client\`, connect to {{server.ip}} port {{variant.port}} and leave the connection open.
      hints:
        - nc {{server.ip}} {{variant.port}}
      # What \`lab grade\` and \`lab start --yes\` run instead of a student.
      solution:
        - { on: client, run: [nc, "{{server.ip}}", "{{variant.port}}"], name: client, background: true }
      points: 2             # the task's own checks together, all or nothing; without it one point per check
      expect:
        - on: client
          socket: { state: ESTABLISHED, peer: "{{server.ip}}:{{variant.port}}" }
          within: 2s
          why: the handshake completed
  - id: close
    title: The client closes first
    explain: A step after a task also grades the task's effect.
    run:
      - { on: client, stop: client }
    expect:
      - on: client
        socket: { state: TIME_WAIT, peer: "{{server.ip}}:{{variant.port}}" }
        why: whoever closes first waits in TIME_WAIT
`;

export const newCommand = defineCommand({
  name: 'new',
  usage: 'new <slug> [-o FILE] [--id N]',
  summary: 'write a commented starting lab file that validates',
  help: 'Writes <slug>.yaml (or -o FILE): a small lab with a step, a task with points and a variant, and a step\nafter it, every field commented. It never overwrites a file. See docs/authoring.md.',
  options: { output: { type: 'string', short: 'o' }, id: { type: 'string' } },
  async run(ctx, values, positionals) {
    const slug = positionals[0];
    if (positionals.length !== 1 || !slug || !/^[a-z][a-z0-9-]{0,31}$/.test(slug))
      throw new LabError(
        'lab new takes a slug: lower-case letters, digits and dashes, starting with a letter',
        'for example `lab new my-first-lab`',
      );
    const id = Number(values.id ?? 100);
    if (!Number.isInteger(id) || id < 1 || id > 999) throw new LabError('--id takes a lab number from 1 to 999');
    const out = values.output ?? `${slug}.yaml`;
    if (out !== '-' && existsSync(out)) throw new LabError(`${out} already exists`, 'choose another name with -o FILE');
    const text = newLabText(slug, id);
    if (out === '-') ctx.out.write(text);
    else {
      writeFileSync(out, text, { flag: 'wx' });
      ctx.print(`wrote ${out}; \`lab validate ${out}\` checks it, \`lab start ${out}\` runs it`);
    }
    return 0;
  },
});

/** The file `lab new` writes (a unit test validates it). */
export function newLabText(slug: string, id: number): string {
  return NEW_LAB(slug, id);
}
