// `lab check`: grade a running lab's current task against its live state, from another terminal than the walk.
import { LabError } from '../../errors.js';
import { loadLabFile } from '../../lab/load.js';
import type { Check } from '../../grade/grade.js';
import type { LabEvent } from '../../engine/events.js';
import { defineCommand } from '../command.js';
import type { Context } from '../context.js';
import { fill } from '../../lab/templates.js';
import { renderChecks } from '../../report/text.js';
import { ALL_OPTION, attach, checkTask, pickInstance, type LiveInstance } from '../live.js';
import { hintFor } from '../../walk/views.js';
import { stateFiles } from '../../walk/state-files.js';
import { labCommand } from '../invocation.js';

/** Everything one check of a task found, as `lab check --json` prints it (see docs/students.md "lab check --json"). */
interface CheckReport {
  instance: string;
  lab: { id: number; slug: string };
  step: { index: number; id: string; title: string };
  passed: boolean;
  attempt: number;
  checks: Check[];
  hint?: string;
}

/**
 * Check the current task of a running lab, from any process: find the step its `lab start` is on, run the
 * task's check (probe and expectations) against the live machines, and record the attempt so that the walk (in
 * its own terminal) learns of it. One function, so that other ways of submitting work can call it too.
 */
async function checkCurrentTask(ctx: Context, li: LiveInstance, emit?: (e: LabEvent) => void): Promise<CheckReport> {
  const state = li.state;
  if (!state)
    throw new LabError(
      `instance ${li.instance} was not started by \`${labCommand()} start\` at a terminal, so it has no current step`,
      `start a lab with \`${labCommand()} start 2\` and leave it running; check from another terminal`,
    );
  const lab = loadLabFile(state.lab.file).lab;
  const step = lab.steps[state.stepIndex];
  if (!step) throw new LabError(`lab ${lab.id} has not reached its first step yet`, `wait until \`${labCommand()} start\` shows step 1`);
  if (!step.task) {
    const withTask = lab.steps.flatMap((st, i) => (st.task ? [`${i + 1} (${st.id})`] : []));
    throw new LabError(
      `step ${state.stepIndex + 1} (${step.id}) of lab ${lab.id} has no task to check`,
      withTask.length ? `this lab's tasks are at step ${withTask.join(', ')}` : 'this lab has no tasks',
    );
  }
  const instance = attach(ctx.runtime, state, { signal: ctx.signal, ...(emit ? { emit } : {}) });
  let checks: Check[];
  try {
    checks = await checkTask(instance, step);
  } finally {
    instance.close();
  }
  const passed = checks.every((c) => c.passed);
  const rec = stateFiles().recordAttempt(li.instance, step.id, passed);
  const hint = passed ? undefined : hintFor(step, rec.attempts);
  return {
    instance: li.instance,
    lab: { id: lab.id, slug: lab.slug },
    step: { index: state.stepIndex + 1, id: step.id, title: step.title },
    passed,
    attempt: rec.attempts,
    checks,
    ...(hint ? { hint: fill(hint, state.plan.vars) } : {}),
  };
}

export const checkCommand = defineCommand({
  name: 'check',
  usage: 'check [instance] [--all] [--json]',
  summary: "grade your running lab's current task against its live state",
  help:
    'Checks the task of the step a running `lab start` is on, against what the kernel shows now: exit 0 when\n' +
    'every expectation is met, 1 when not (with a hint), 2 when the current step has no task. Some tasks are\n' +
    'tried first, as you would try them (a connection through your rule); the check shows those commands.\n' +
    "Without an instance, only your own labs are candidates (--all: everybody's).\n" +
    '--json prints one document (see docs/students.md "lab check --json").',
  options: { ...ALL_OPTION },
  async run(ctx, values, positionals) {
    if (positionals.length > 1) throw new LabError('lab check takes at most one instance');
    const li = await pickInstance(ctx.runtime, positionals[0], { all: !!values.all });
    const s = ctx.style;
    // The commands the check tries (its probe), shown as the student would type them.
    const emit = (e: LabEvent) => {
      if (e.type === 'action' && !ctx.json) ctx.say(`  ${s.dim('trying:')} ${s.cyan(`${e.node}$`)} ${e.display}`);
    };
    const r = await checkCurrentTask(ctx, li, emit);
    if (ctx.json) {
      ctx.print(
        JSON.stringify(
          {
            ...r,
            checks: r.checks.map((c) => ({
              node: c.node,
              kind: c.kind,
              expected: c.expected,
              passed: c.passed,
              seen: c.seen,
              ...(c.why ? { why: c.why } : {}),
            })),
            checkedAt: new Date().toISOString(),
          },
          null,
          2,
        ),
      );
    } else {
      ctx.say(s.bold(`Lab ${r.lab.id}, step ${r.step.index}: ${r.step.title} (attempt ${r.attempt})`));
      ctx.say(renderChecks(r.checks, s));
      ctx.say(r.passed ? s.green(`task done: go back to \`${labCommand()} start\`, it moves on by itself`) : s.red('not yet'));
      if (r.hint) ctx.say(`${s.yellow('hint:')} ${r.hint}`);
    }
    return r.passed ? 0 : 1;
  },
});
