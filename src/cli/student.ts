// Commands a student uses beside a running `lab start`, from another terminal: lab shell, lab check, lab status.
// Without an instance named, each acts on the labs of the user who runs it (the io.tcplab.owner label), so that
// on a shared engine nobody enters, checks or watches somebody else's lab by accident; --all widens that.
import { LabError } from '../errors.js';
import { loadLabFile } from '../lab/load.js';
import type { Lab } from '../lab/schema.js';
import type { Check, LabResult } from '../grade/grade.js';
import { currentUser, isMine } from '../identity.js';
import { realClock } from '../engine/clock.js';
import type { LabEvent } from '../engine/events.js';
import { defineCommand } from './command.js';
import type { Context } from './context.js';
import { fill } from '../lab/templates.js';
import { renderChecks } from '../report/text.js';
import {
  attach,
  checkTask,
  hintFor,
  liveInstances,
  liveSockets,
  parseNode,
  pickInstance,
  renderSockets,
  shellSession,
  socketsThatMatter,
  type LiveInstance,
} from './live.js';
import { forgetRunning, listRunning, loadAttempts, recordAttempt, saveProgress, type Score } from './state.js';
import { labCommand } from './invocation.js';
import { terminalWidth, wrapText } from './wrap.js';

const ALL_OPTION = { all: { type: 'boolean' } } as const;

const shell = defineCommand({
  name: 'shell',
  usage: 'shell <client|server|firewall> [instance] [--all]',
  summary: 'a shell on one machine of your running lab (docker exec -it)',
  help:
    "Opens bash on a machine of your running lab, as root with the lab's capabilities (NET_ADMIN, NET_RAW): run\n" +
    'iptables, ss, netstat, nc, ps there. Only /tmp is writable. Without an instance, only your own labs (started\n' +
    "by your OS user) are candidates; --all considers everybody's. With several running, name the instance\n" +
    '(`lab status` lists them). When the lab ends while the shell is open, the shell ends and says why.',
  options: { ...ALL_OPTION },
  async run(ctx, values, positionals) {
    if (positionals.length < 1 || positionals.length > 2)
      throw new LabError('lab shell takes a machine and, optionally, an instance', `for example \`${labCommand()} shell client\``);
    const node = parseNode(positionals[0]);
    const li = await pickInstance(ctx.runtime, positionals[1], { all: !!values.all });
    return shellSession(ctx.runtime, li, node, (s) => ctx.err.write(wrapText(ctx.errStyle.dim(s), terminalWidth(ctx.err)) + '\n'));
  },
});

/** Everything one check of a task found, as `lab check --json` prints it (see README "Students"). */
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
      `instance ${li.instance} was not started by \`lab start\` at a terminal, so it has no current step`,
      `start a lab with \`${labCommand()} start 2\` and leave it running; check from another terminal`,
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
  const instance = attach(ctx.runtime, state, { signal: ctx.signal, ...(emit ? { emit } : {}) });
  let checks: Check[];
  try {
    checks = await checkTask(instance, step);
  } finally {
    instance.close();
  }
  const passed = checks.every((c) => c.passed);
  const rec = recordAttempt(li.instance, step.id, passed);
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

const check = defineCommand({
  name: 'check',
  usage: 'check [instance] [--all] [--json]',
  summary: "grade your running lab's current task against its live state",
  help:
    'Checks the task of the step a running `lab start` is on, against what the kernel shows now: exit 0 when\n' +
    'every expectation is met, 1 when not (with a hint), 2 when the current step has no task. Some tasks are\n' +
    'tried first, as you would try them (a connection through your rule); the check shows those commands.\n' +
    "Without an instance, only your own labs are candidates (--all: everybody's).\n" +
    '--json prints one document (see README "Students").',
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
      ctx.say(r.passed ? s.green('task done: go back to `lab start`, it moves on by itself') : s.red('not yet'));
      if (r.hint) ctx.say(`${s.yellow('hint:')} ${r.hint}`);
    }
    return r.passed ? 0 : 1;
  },
});

const status = defineCommand({
  name: 'status',
  usage: 'status [--watch] [--all] [--json]',
  summary: "your running lab instances and both sides' live TCP states",
  help:
    "Shows your running labs (--all: everybody's on this engine, with their owners), the step each is on, and\n" +
    "every machine's TCP sockets. --watch redraws the screen in place every second, like watch or top;\n" +
    'Ctrl-C stops it.',
  options: { watch: { type: 'boolean', short: 'w' }, ...ALL_OPTION },
  async run(ctx, values) {
    const me = currentUser();
    const once = async (width: number | undefined): Promise<string> => {
      const everyone = await liveInstances(ctx.runtime);
      const all = values.all ? everyone : everyone.filter((i) => isMine(i, me));
      if (ctx.json) {
        const docs = await Promise.all(
          all.map(async (li) => ({
            instance: li.instance,
            lab: li.state?.lab ?? { slug: li.lab },
            step: li.state ? { index: li.state.stepIndex + 1, id: li.state.stepId ?? null } : null,
            owner: li.state?.owner ?? null,
            user: li.user ?? null,
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
      if (all.length === 0) {
        const others = everyone.length - all.length;
        return `no lab of yours is running (\`${labCommand()} start 2\` starts one)${others ? `; ${others} of other users: --all shows them` : ''}`;
      }
      const blocks = await Promise.all(
        all.map(async (li) => {
          const st = li.state;
          const whose = isMine(li, me) ? '' : ctx.style.dim(` (${li.user ? `user ${li.user}` : 'no owner'})`);
          let head = `${ctx.style.bold(`instance ${li.instance}`)}${whose}  ${st ? `Lab ${st.lab.id} ${st.lab.slug}` : li.lab}`;
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
          return `${wrapText(head, width)}\n${renderSockets(await liveSockets(ctx.runtime, li), ctx.style, matter, width)}`;
        }),
      );
      return blocks.join('\n\n');
    };
    if (!values.watch) {
      ctx.say(await once(ctx.width));
      return 0;
    }
    await watch(ctx, once);
    return 0;
  },
});

/**
 * Redraw in place, like watch(1) or top: at a terminal, the alternate screen (the student's scrollback is left
 * as it was), each frame drawn over the last from the top left, cut to the screen's height; elsewhere (a
 * pipe, a file), one frame after another.
 */
async function watch(ctx: Context, frame: (width: number | undefined) => Promise<string>): Promise<void> {
  const tty = !!ctx.out.isTTY && !ctx.json;
  const ESC = '\u001b[';
  if (tty) ctx.out.write(`${ESC}?1049h${ESC}?25l`);
  try {
    while (!ctx.signal.aborted) {
      const width = tty ? ctx.out.columns || 80 : undefined;
      const text = await frame(width);
      if (ctx.signal.aborted) break;
      const head = ctx.style.dim(`${labCommand()} status --watch, ${new Date().toLocaleTimeString()} (Ctrl-C stops)`);
      if (tty) {
        const lines = wrapText(`${head}\n${text}`, width)
          .split('\n')
          .slice(0, Math.max(1, (ctx.out.rows || 24) - 1));
        ctx.out.write(`${ESC}H${lines.map((l) => `${l}${ESC}K`).join('\n')}\n${ESC}J`);
      } else ctx.print(`${head}\n${text}\n`);
      await realClock.sleep(1000, ctx.signal);
    }
  } finally {
    if (tty) ctx.out.write(`${ESC}?25h${ESC}?1049l`);
  }
}

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

/** After `lab stop`: the state files of the instances it removed. */
export function forgetStopped(ids: string[]): void {
  for (const r of listRunning()) if (ids.includes(r.instance)) forgetRunning(r.instance);
}

export const STUDENT_COMMANDS = [shell, check, status];
