// Commands a student uses beside a running `lab start`, from another terminal: lab shell, lab check, lab status.
import { LabError } from '../errors.js';
import { loadLabFile } from '../lab/load.js';
import type { Lab } from '../lab/schema.js';
import type { LabResult } from '../grade/grade.js';
import { defineCommand } from './command.js';
import { fill } from '../lab/templates.js';
import { renderChecks } from '../report/text.js';
import {
  attach,
  checkTask,
  hintFor,
  liveInstances,
  liveSockets,
  openShell,
  parseNode,
  pickInstance,
  renderSockets,
  socketsThatMatter,
} from './live.js';
import { forgetRunning, listRunning, loadAttempts, recordAttempt, saveProgress, type Score } from './state.js';

const shell = defineCommand({
  name: 'shell',
  usage: 'shell <client|server|firewall> [instance]',
  summary: 'a shell on one machine of the running lab (docker exec -it)',
  help: "Opens bash on a machine of a running lab, as root with the lab's capabilities (NET_ADMIN, NET_RAW): run\niptables, ss, nc, ps there. Only /tmp is writable. With several labs running, name the instance\n(`lab status` lists them).",
  options: {},
  async run(ctx, _values, positionals) {
    if (positionals.length < 1 || positionals.length > 2)
      throw new LabError('lab shell takes a machine and, optionally, an instance', 'for example `lab shell client`');
    const node = parseNode(positionals[0]);
    const li = await pickInstance(ctx.runtime, positionals[1]);
    return openShell(li, node, (s) => ctx.err.write(ctx.errStyle.dim(s) + '\n'));
  },
});

const check = defineCommand({
  name: 'check',
  usage: 'check [instance] [--json]',
  summary: "grade the running lab's current task against its live state",
  help: 'Checks the task of the step a running `lab start` is on, against what the kernel shows now: exit 0 when\nevery expectation is met, 1 when not (with a hint), 2 when the current step has no task.\n--json prints one document (see README "Students").',
  options: {},
  async run(ctx, _values, positionals) {
    if (positionals.length > 1) throw new LabError('lab check takes at most one instance');
    const li = await pickInstance(ctx.runtime, positionals[0]);
    const state = li.state;
    if (!state)
      throw new LabError(
        `instance ${li.instance} was not started by \`lab start\` at a terminal, so it has no current step`,
        'start a lab with `lab start 2` and leave it running; check from another terminal',
      );
    const lab = loadLabFile(state.lab.file).lab;
    const step = lab.steps[state.stepIndex];
    if (!step) throw new LabError(`lab ${lab.id} has not reached its first step yet`, 'wait until `lab start` shows step 1');
    if (!step.task) {
      const withTask = lab.steps.flatMap((st, i) => (st.task ? [`${i + 1} (${st.id})`] : []));
      throw new LabError(
        `step ${state.stepIndex + 1} (${step.id}) of lab ${lab.id} has no task to check`,
        withTask.length ? `this lab's tasks are at step ${withTask.join(', ')}` : 'this lab has no tasks',
      );
    }
    const instance = attach(ctx.runtime, state, ctx.signal);
    const checks = await checkTask(instance, step);
    const passed = checks.every((c) => c.passed);
    const rec = recordAttempt(li.instance, step.id, passed);
    const hint = passed ? undefined : hintFor(step, rec.attempts);
    const vars = state.plan.vars;
    if (ctx.json) {
      ctx.print(
        JSON.stringify(
          {
            instance: li.instance,
            lab: { id: lab.id, slug: lab.slug },
            step: { index: state.stepIndex + 1, id: step.id, title: step.title },
            passed,
            attempt: rec.attempts,
            checks: checks.map((c) => ({
              node: c.node,
              kind: c.kind,
              expected: c.expected,
              passed: c.passed,
              seen: c.seen,
              ...(c.why ? { why: c.why } : {}),
            })),
            ...(hint ? { hint: fill(hint, vars) } : {}),
            checkedAt: new Date().toISOString(),
          },
          null,
          2,
        ),
      );
    } else {
      ctx.print(ctx.style.bold(`Lab ${lab.id}, step ${state.stepIndex + 1}: ${step.title} (attempt ${rec.attempts})`));
      ctx.print(renderChecks(checks, ctx.style));
      ctx.print(passed ? ctx.style.green('task done: go back to `lab start`, it moves on by itself') : ctx.style.red('not yet'));
      if (hint) ctx.print(`${ctx.style.yellow('hint:')} ${fill(hint, vars)}`);
    }
    return passed ? 0 : 1;
  },
});

const status = defineCommand({
  name: 'status',
  usage: 'status [--watch] [--json]',
  summary: "running lab instances and both sides' live TCP states",
  options: { watch: { type: 'boolean', short: 'w' } },
  async run(ctx, values) {
    const once = async (): Promise<string> => {
      const all = await liveInstances(ctx.runtime);
      if (ctx.json) {
        const docs = await Promise.all(
          all.map(async (li) => ({
            instance: li.instance,
            lab: li.state?.lab ?? { slug: li.lab },
            step: li.state ? { index: li.state.stepIndex + 1, id: li.state.stepId ?? null } : null,
            owner: li.state?.owner ?? null,
            sockets: Object.fromEntries(
              [...(await liveSockets(ctx.runtime, li))].map(([n, socks]) => [
                n,
                socks.map((s) => ({ state: s.state, local: s.local, peer: s.peer, line: s.line })),
              ]),
            ),
          })),
        );
        return JSON.stringify(docs, null, 2);
      }
      if (all.length === 0) return 'no lab is running (`lab start 2` starts one)';
      const blocks = await Promise.all(
        all.map(async (li) => {
          const st = li.state;
          let head = `${ctx.style.bold(`instance ${li.instance}`)}  ${st ? `Lab ${st.lab.id} ${st.lab.slug}` : li.lab}`;
          let matter;
          if (st) {
            let lab: Lab | undefined;
            try {
              lab = loadLabFile(st.lab.file).lab;
            } catch {
              lab = undefined;
            }
            const step = lab?.steps[st.stepIndex];
            if (step && lab) {
              const tried = loadAttempts(li.instance)[step.id];
              head += `, step ${st.stepIndex + 1}/${lab.steps.length}: ${step.title}`;
              if (step.task)
                head += tried?.passed
                  ? ctx.style.green(' [task done]')
                  : ctx.style.yellow(` [task open${tried ? `, ${tried.attempts} attempts` : ''}]`);
              matter = socketsThatMatter([...(step.expect ?? []), ...(step.task?.expect ?? [])], st.plan.vars);
            }
          }
          return `${head}\n${renderSockets(await liveSockets(ctx.runtime, li), ctx.style, matter)}`;
        }),
      );
      return blocks.join('\n\n');
    };
    if (!values.watch) {
      ctx.print(await once());
      return 0;
    }
    while (!ctx.signal.aborted) {
      const text = await once();
      if (ctx.out.isTTY) ctx.out.write('\u001b[H\u001b[2J');
      ctx.print(`${ctx.style.dim(`lab status --watch, ${new Date().toLocaleTimeString()} (Ctrl-C stops)`)}\n${text}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    return 0;
  },
});

/** `lab start --yes` / off a terminal: progress is kept too, with the checks it could make. */
export function saveHeadlessProgress(lab: Lab, result: LabResult): void {
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
    saveProgress(lab.slug, score, false);
  } catch {
    // A read-only home must not fail a lab run.
  }
}

/** After `lab stop`: the state files of the instances it removed (all of them when none was named). */
export function forgetStopped(ids: string[]): void {
  for (const r of listRunning()) if (ids.length === 0 || ids.includes(r.instance)) forgetRunning(r.instance);
}

export const STUDENT_COMMANDS = [shell, check, status];
