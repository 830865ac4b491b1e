// `lab start` at a terminal: a guided walk that teaches. Progress (listr2) while the image builds and the
// machines come up; then, step by step, the explanation, a prediction before anything changes, the commands as
// a student would type them, both sides' sockets with the ones that matter highlighted, each expectation met or
// not, and a menu (continue, observe again, a shell on a machine, rules, processes, quit). Steps with a task wait
// for the student, who works in `lab shell` and checks with `lab check` (here or in another terminal).
// The engine knows nothing of this: the CLI drives it one action and one wait at a time.
import { hostname } from 'node:os';
import inquirer from 'inquirer';
import type { Lab, NodeName, Step } from '../lab/schema.js';
import { ensureImage } from '../engine/image.js';
import { createInstance, newInstanceId, type Instance } from '../engine/instance.js';
import type { LabEvent } from '../engine/events.js';
import { expand } from '../plan/plan.js';
import type { Check } from '../grade/grade.js';
import { InterruptedError, LabError } from '../errors.js';
import type { Context } from './context.js';
import {
  checkTask,
  evaluateNow,
  fill,
  hintFor,
  liveSockets,
  openShell,
  renderChecks,
  renderSockets,
  showProcesses,
  showRules,
  socketsThatMatter,
  type LiveInstance,
} from './live.js';
import { forgetRunning, loadAttempts, recordAttempt, saveProgress, saveRunning, type RunningLab, type Score } from './state.js';

export interface InteractiveOptions {
  keep: boolean;
  base?: string;
  file: string;
}

class Quit extends Error {}

function isPromptExit(e: unknown): boolean {
  return e instanceof Error && (e.name === 'ExitPromptError' || e.name === 'AbortPromptError');
}

/** One select prompt; an abort signal lets another terminal's `lab check` end it. */
let interrupt: AbortSignal | undefined;

async function choose<T extends string>(
  message: string,
  choices: { name: string; value: T }[],
  signal?: AbortSignal,
  echo?: (line: string) => void,
): Promise<T> {
  // A signal (SIGTERM, a closed terminal) ends the prompt too, so cleanup does not wait for a key.
  const signals = [signal, interrupt].filter((x): x is AbortSignal => !!x);
  // A prompt that another terminal may end is cleared from the screen; its answer, if any, is echoed.
  const prompt = inquirer.createPromptModule({
    ...(signals.length ? { signal: signals.length === 1 ? signals[0]! : AbortSignal.any(signals) } : {}),
    ...(echo ? { clearPromptOnDone: true } : {}),
  });
  try {
    const answer = (await prompt([{ type: 'select', name: 'a', message, choices, loop: false, pageSize: 12 }] as never)) as { a: T };
    echo?.(`✔ ${message} ${choices.find((c) => c.value === answer.a)?.name ?? answer.a}`);
    return answer.a;
  } catch (e) {
    // Ctrl-C inside a prompt: the terminal is in raw mode, so no SIGINT arrives; treat it as quit.
    if (e instanceof Error && e.name === 'ExitPromptError') throw new Quit();
    throw e;
  }
}

/** Build (or find) the image and bring the machines up, with listr2 showing the progress. */
async function bringUp(ctx: Context, lab: Lab, opts: InteractiveOptions, sink: { fn: (e: LabEvent) => void }): Promise<Instance> {
  const plain = !ctx.style.enabled;
  // --no-color reaches listr2 and inquirer the way they read it.
  if (plain) process.env.NO_COLOR = '1';
  const { Listr } = await import('listr2');
  let image = '';
  let instance: Instance | undefined;
  const id = newInstanceId();
  const tasks = new Listr(
    [
      {
        title: 'Lab image',
        task: async (_c, task) => {
          image = await ensureImage(
            ctx.runtime,
            (e) => {
              if (e.type === 'image' && e.phase === 'found') task.title = `Lab image ${e.tag} (already built)`;
              if (e.type === 'image' && e.phase === 'building')
                task.title = `Building the lab image ${e.tag} (first use; later runs reuse it)`;
              if (e.type === 'image' && e.phase === 'built') task.title = `Built the lab image ${e.tag}`;
              // The build's own steps; off a terminal only the "Step n/m" lines, not every apt line.
              if (e.type === 'image-line' && (!plain || /^Step \d+\/\d+/.test(e.line))) task.output = e.line;
            },
            { ...(opts.base ? { base: opts.base } : {}), signal: ctx.signal },
          );
        },
        rendererOptions: { outputBar: 6, persistentOutput: false },
      },
      {
        title: `Machines and network for lab ${lab.id}`,
        task: async (_c, task) => {
          ctx.live.add(id);
          instance = await createInstance(ctx.runtime, lab, {
            image,
            instance: id,
            signal: ctx.signal,
            emit: (e) => {
              if (e.type === 'network') task.output = `bridge ${e.name} ${e.subnet}`;
              if (e.type === 'node') task.output = `${e.node} ${e.ips.join(', ')}`;
              if (e.type === 'ready') task.title = `Lab instance ${e.instance} ready in ${(e.ms / 1000).toFixed(1)} s`;
              sink.fn(e);
            },
          });
        },
        rendererOptions: { outputBar: 3, persistentOutput: false },
      },
    ],
    {
      renderer: 'default',
      fallbackRenderer: 'simple',
      fallbackRendererCondition: plain,
      exitOnError: true,
      rendererOptions: { collapseSubtasks: false },
    },
  );
  await tasks.run();
  return instance!;
}

export async function runInteractive(ctx: Context, lab: Lab, opts: InteractiveOptions): Promise<number> {
  const s = ctx.style;
  const write = (text = '') => ctx.print(text);
  const sink = { fn: (_e: LabEvent) => {} };
  interrupt = ctx.signal;
  write(s.bold(`Lab ${lab.id}: ${lab.title}`));
  write(lab.intro.trimEnd());
  for (const note of lab.notes ?? []) write(s.dim(`note: ${note.trim()}`));
  write();
  const instance = await bringUp(ctx, lab, opts, sink);
  const vars = instance.plan.vars;
  const li: LiveInstance = { instance: instance.id, lab: lab.slug, nodes: new Map(instance.plan.nodes.map((n) => [n.key, n.name])) };
  const nodes = instance.plan.nodes.map((n) => n.key);
  write(s.dim(`Machines: ${instance.plan.nodes.map((n) => `${n.key} ${n.interfaces.map((i) => i.ip).join(', ')}`).join('; ')}`));
  write(s.dim(`In another terminal: \`lab shell client\` opens a shell on the client, \`lab status --watch\` shows the states live.`));

  // Actions are shown as the commands the student would type, with their output.
  sink.fn = (e) => {
    if (e.type !== 'action') return;
    write(`  ${s.cyan(`${e.node}$`)} ${e.display}`);
    if (e.output) for (const line of e.output.split('\n').slice(-6)) write(s.dim(`    ${line}`));
    if (e.exitCode !== undefined && e.exitCode !== 0) write(s.dim(`    (exit ${e.exitCode})`));
  };

  const running: RunningLab = {
    instance: instance.id,
    lab: { id: lab.id, slug: lab.slug, title: lab.title, file: opts.file },
    owner: `${hostname()}:${process.pid}`,
    startedAt: new Date().toISOString(),
    stepIndex: -1,
    plan: instance.plan,
    keep: opts.keep,
  };
  saveRunning(running);

  const score: Score = {
    predictions: { right: 0, asked: 0 },
    checks: { met: 0, total: 0 },
    tasks: { done: 0, total: lab.steps.filter((st) => st.task).length },
    steps: { done: 0, total: lab.steps.length },
  };
  let quit = false;
  try {
    for (const [i, step] of lab.steps.entries()) {
      running.stepIndex = i;
      running.stepId = step.id;
      saveRunning(running);
      await walkStep(ctx, instance, li, nodes, step, i, lab.steps.length, score, vars);
      score.steps.done++;
      const last = i === lab.steps.length - 1;
      await stepMenu(ctx, instance, li, nodes, step, last, vars);
    }
  } catch (e) {
    if (ctx.signal.aborted) {
      // SIGINT/SIGTERM/SIGHUP: the context's handler is removing the instance already.
      forgetRunning(instance.id);
      throw new InterruptedError(String(ctx.signal.reason ?? 'SIGINT'));
    }
    if (e instanceof Quit || isPromptExit(e)) quit = true;
    else {
      // Interrupted or broken: the top-level handler removes the instance (ctx.live); forget it here.
      forgetRunning(instance.id);
      throw e;
    }
  }

  const completed = !quit && score.checks.met === score.checks.total && score.tasks.done === score.tasks.total;
  saveProgress(lab.slug, score, completed);
  write();
  write(s.bold(quit ? `You quit Lab ${lab.id} after ${score.steps.done} of ${score.steps.total} steps.` : `Lab ${lab.id} finished.`));
  write(
    `Score: predictions ${score.predictions.right}/${score.predictions.asked} right, checks ${score.checks.met}/${score.checks.total} met, ` +
      `tasks ${score.tasks.done}/${score.tasks.total} done${completed ? s.green('  (completed)') : ''}`,
  );
  if (ctx.signal.aborted) throw new InterruptedError(String(ctx.signal.reason ?? 'SIGINT'));
  if (opts.keep) {
    ctx.live.delete(instance.id);
    write(
      `The lab is still running (instance ${instance.id}): \`lab shell client\`, \`lab status\`; \`lab stop ${instance.id}\` removes it.`,
    );
  } else {
    const removed = await instance.down();
    ctx.live.delete(instance.id);
    forgetRunning(instance.id);
    write(s.dim(`Removed the lab (${removed} containers and networks).`));
  }
  return quit || completed ? 0 : 1;
}

async function walkStep(
  ctx: Context,
  instance: Instance,
  li: LiveInstance,
  nodes: NodeName[],
  step: Step,
  index: number,
  total: number,
  score: Score,
  vars: Record<string, string>,
): Promise<void> {
  const s = ctx.style;
  const write = (text = '') => ctx.print(text);
  write();
  write(s.bold(`── Step ${index + 1}/${total}: ${step.title} ──`));
  for (const line of fill(step.explain, vars).trimEnd().split('\n')) write(`  ${line}`);

  // The prediction comes before anything changes, and is answered once the student has seen the result.
  let predicted: string | undefined;
  if (step.predict) {
    write();
    predicted = await choose(
      `Predict: ${step.predict.question}`,
      step.predict.choices.map((c) => ({ name: c, value: c })),
    );
    score.predictions.asked++;
  }

  const checks: Check[] = [];
  const failed = (e: unknown) => {
    if (!(e instanceof LabError) || e instanceof InterruptedError) throw e;
    checks.push({
      step: step.id,
      node: 'client',
      kind: 'command',
      expected: "the step's commands succeed",
      seen: [e.message],
      passed: false,
      message: e.message,
      elapsedMs: 0,
    });
  };
  if (step.run?.length) write();
  try {
    for (const a of step.run ?? []) await instance.runAction(a);
  } catch (e) {
    failed(e);
  }

  if (step.task) {
    const done = await taskLoop(ctx, instance, li, nodes, step, vars);
    if (done) score.tasks.done++;
  }

  if (step.expect?.length && checks.length === 0) {
    write(s.dim(`  watching ss on ${[...new Set(step.expect.map((e) => e.on))].join(' and ')} for the expected states...`));
    try {
      checks.push(...(await instance.waitFor(step.id, step.expect)));
    } catch (e) {
      failed(e);
    }
  }
  const observed = await instance.observeAll().catch(() => undefined);
  write();
  if (observed) {
    const socks = new Map([...observed].map(([n, snap]) => [n, snap.sockets]));
    write(renderSockets(socks, s, socketsThatMatter([...(step.expect ?? []), ...(step.task?.expect ?? [])], vars)));
  }
  if (checks.length) {
    write();
    write(renderChecks(checks, s));
  }
  score.checks.total += checks.length;
  score.checks.met += checks.filter((c) => c.passed).length;

  if (step.predict && predicted !== undefined) {
    const right = predicted === step.predict.answer;
    if (right) score.predictions.right++;
    write();
    write(`  You predicted: ${predicted}  ${right ? s.green('✓ right') : s.red('✗ not quite')}`);
    write(`  ${s.bold('Answer:')} ${step.predict.answer}: ${step.predict.why.trim()}`);
  }
}

const TOOL_CHOICES = (nodes: NodeName[]) => [
  ...nodes.map((n) => ({ name: `Open a shell on the ${n}`, value: `shell:${n}` })),
  { name: 'Show the rules in effect (iptables -S, -L -vn)', value: 'rules' },
  { name: 'Show the processes (ps)', value: 'ps' },
];

async function tool(ctx: Context, instance: Instance, li: LiveInstance, choice: string): Promise<boolean> {
  const write = (text = '') => ctx.print(text);
  if (choice.startsWith('shell:')) {
    openShell(li, choice.slice(6) as NodeName, write);
    return true;
  }
  if (choice === 'rules') {
    write(await showRules(instance.runtime, li, ctx.style));
    return true;
  }
  if (choice === 'ps') {
    write(await showProcesses(instance.runtime, li, ctx.style));
    return true;
  }
  return false;
}

/** The menu after a step: go on, or look around first. */
async function stepMenu(
  ctx: Context,
  instance: Instance,
  li: LiveInstance,
  nodes: NodeName[],
  step: Step,
  last: boolean,
  vars: Record<string, string>,
): Promise<void> {
  const write = (text = '') => ctx.print(text);
  for (;;) {
    write();
    const choice = await choose('What next?', [
      { name: last ? 'Finish the lab' : 'Continue to the next step', value: 'continue' },
      { name: 'Observe again (ss on every machine, expectations now)', value: 'observe' },
      ...TOOL_CHOICES(nodes),
      { name: 'Quit (removes the lab unless --keep)', value: 'quit' },
    ]);
    if (choice === 'continue') return;
    if (choice === 'quit') throw new Quit();
    if (choice === 'observe') {
      const expectations = [...(step.expect ?? []), ...(step.task?.expect ?? [])];
      write(renderSockets(await liveSockets(instance.runtime, li), ctx.style, socketsThatMatter(expectations, vars)));
      if (expectations.length) {
        for (const r of await evaluateNow(instance, expectations)) {
          write(`  ${r.holds ? ctx.style.green('✓ met now    ') : ctx.style.red('✗ not met now')} ${expand(describeShort(r.e), vars)}`);
        }
      }
      continue;
    }
    await tool(ctx, instance, li, choice);
  }
}

function describeShort(e: Step['expect'] extends (infer E)[] | undefined ? E : never): string {
  if (e.socket)
    return `${e.on}: socket ${[e.socket.state ?? 'any'].flat().join('|')}${e.socket.local ? ` local ${e.socket.local}` : ''}${e.socket.peer ? ` peer ${e.socket.peer}` : ''}`;
  if (e.absent)
    return `${e.on}: no socket ${[e.absent.state ?? 'any'].flat().join('|')}${e.absent.local ? ` local ${e.absent.local}` : ''}${e.absent.peer ? ` peer ${e.absent.peer}` : ''}`;
  if (e.iptables) return `${e.on}: iptables ${e.iptables.chain} rule [${e.iptables.rule.join(' ')}]`;
  return `${e.on}: command ${e.command!.name}`;
}

/**
 * A step the student does by hand. Returns true when a check passed (here or via `lab check` in another
 * terminal), false when the student asked tcplab to do it.
 */
async function taskLoop(
  ctx: Context,
  instance: Instance,
  li: LiveInstance,
  nodes: NodeName[],
  step: Step,
  vars: Record<string, string>,
): Promise<boolean> {
  const s = ctx.style;
  const write = (text = '') => ctx.print(text);
  const task = step.task!;
  write();
  write(s.bold(s.cyan('  Your task:')));
  for (const line of fill(task.prompt, vars).trimEnd().split('\n')) write(`  ${line}`);
  write(s.dim('  Work in `lab shell <machine>` (here from the menu, or in another terminal), then `lab check`.'));
  let seenAttempts = loadAttempts(instance.id)[step.id]?.attempts ?? 0;
  let hintsShown = 0;
  for (;;) {
    write();
    // While the menu waits, a `lab check` in another terminal may settle the task: watch for it.
    const abort = new AbortController();
    let external: { attempts: number; passed: boolean } | undefined;
    const timer = setInterval(() => {
      const a = loadAttempts(instance.id)[step.id];
      if (a && a.attempts > seenAttempts) {
        external = a;
        abort.abort('lab check');
      }
    }, 300);
    let choice: string;
    try {
      choice = await choose(
        'Your task: what next?',
        [
          { name: 'Check my work (same as `lab check`)', value: 'check' },
          ...(task.hints?.length ? [{ name: 'Show a hint', value: 'hint' }] : []),
          ...TOOL_CHOICES(nodes),
          { name: 'Observe (ss on every machine)', value: 'observe' },
          { name: 'Show me the solution and do it for me (the task counts as not done)', value: 'solve' },
          { name: 'Quit (removes the lab unless --keep)', value: 'quit' },
        ],
        abort.signal,
        (line) => write(line),
      );
    } catch (e) {
      if (!(e instanceof Error && e.name === 'AbortPromptError' && external)) throw e;
      choice = 'external';
    } finally {
      clearInterval(timer);
    }
    if (choice === 'external') {
      const ext = external!;
      seenAttempts = ext.attempts;
      if (ext.passed) {
        write(`  ${s.green('✓ task done')} (checked by \`lab check\`, attempt ${ext.attempts})`);
        return true;
      }
      write(`  ${s.red('✗ not yet')} (\`lab check\`, attempt ${ext.attempts})`);
      const hint = hintFor(step, ext.attempts);
      if (hint) write(`  ${s.yellow('hint:')} ${fill(hint, vars)}`);
      continue;
    }
    if (choice === 'quit') throw new Quit();
    if (choice === 'check') {
      const checks = await checkTask(instance, step);
      const passed = checks.every((c) => c.passed);
      const rec = recordAttempt(instance.id, step.id, passed);
      seenAttempts = rec.attempts;
      write(renderChecks(checks, s));
      if (passed) {
        write(`  ${s.green('✓ task done')} (attempt ${rec.attempts})`);
        return true;
      }
      const hint = hintFor(step, rec.attempts);
      if (hint) write(`  ${s.yellow('hint:')} ${fill(hint, vars)}`);
      continue;
    }
    if (choice === 'hint') {
      const hints = task.hints ?? [];
      write(
        `  ${s.yellow(`hint ${Math.min(hintsShown + 1, hints.length)}/${hints.length}:`)} ${fill(hints[Math.min(hintsShown, hints.length - 1)]!, vars)}`,
      );
      hintsShown++;
      continue;
    }
    if (choice === 'observe') {
      write(renderSockets(await liveSockets(instance.runtime, li), s, socketsThatMatter(task.expect, vars)));
      continue;
    }
    if (choice === 'solve') {
      write(s.dim('  The solution:'));
      for (const a of task.solution ?? []) await instance.runAction(a);
      const checks = await checkTask(instance, step);
      write(renderChecks(checks, s));
      return false;
    }
    await tool(ctx, instance, li, choice);
  }
}
