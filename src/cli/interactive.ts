// `lab start` at a terminal: a guided walk that teaches. Progress (listr2) while the image builds and the
// machines come up; then, step by step, the explanation, a prediction before anything changes, the commands as
// a student would type them, both sides' sockets with the ones that matter highlighted, each expectation met or
// not, and a menu (continue, observe again, a shell on a machine, rules, processes, quit). Steps with a task wait
// for the student, who works in `lab shell` and checks with `lab check` (here or in another terminal).
// The engine knows nothing of this: the walk drives it one action and one wait at a time. Everything the walk
// knows (the lab, its instance, the score, how to ask and how to print) lives in one Walk object.
import inquirer from 'inquirer';
import { currentUser, processOwner } from '../identity.js';
import type { Lab, NodeName, Step } from '../lab/schema.js';
import { fill } from '../lab/templates.js';
import { ensureImage } from '../engine/image.js';
import type { Instance } from '../engine/instance.js';
import { createInstance, newInstanceId } from '../engine/provision.js';
import { describeRemoved } from '../engine/teardown.js';
import type { LabEvent } from '../engine/events.js';
import { describeExpectation, type Check } from '../grade/grade.js';
import { renderChecks } from '../report/text.js';
import type { Style } from '../report/style.js';
import { renderLadder } from '../report/ladder-text.js';
import { eventsIn } from '../trace/timeline.js';
import { ladderWidth } from './render.js';
import { InterruptedError } from '../errors.js';
import type { Context } from './context.js';
import { checkTask, hintFor, renderSockets, shellSession, showProcesses, showRules, socketsThatMatter, type LiveInstance } from './live.js';
import {
  forgetRunning,
  loadAttempts,
  recordAttempt,
  recordEnded,
  saveProgress,
  saveRunning,
  type RunningLab,
  type Score,
} from './state.js';
import { labCommand } from './invocation.js';
import { choiceKeys, shuffled } from './shuffle.js';
import { reflow } from './wrap.js';
import { captureTask } from './capture.js';

interface InteractiveOptions {
  keep: boolean;
  base?: string;
  file: string;
  /** Whose variants the lab uses, and who `lab submit` hands the work in for. */
  student?: string;
}

/** The student chose Quit. */
class Quit extends Error {}

/** Ctrl-C at a prompt: the terminal is in raw mode, so inquirer sees the key and no SIGINT arrives. */
class PromptInterrupted extends Error {}

interface Choice<T extends string> {
  name: string;
  value: T;
}

export async function runInteractive(ctx: Context, lab: Lab, opts: InteractiveOptions): Promise<number> {
  return new Walk(ctx, lab, opts).run();
}

class Walk {
  private readonly s: Style;
  private readonly score: Score;
  private instance!: Instance;
  private li!: LiveInstance;
  private running!: RunningLab;

  constructor(
    private readonly ctx: Context,
    private readonly lab: Lab,
    private readonly opts: InteractiveOptions,
  ) {
    this.s = ctx.style;
    this.score = {
      predictions: { right: 0, asked: 0 },
      checks: { met: 0, total: 0 },
      tasks: { done: 0, total: lab.steps.filter((st) => st.task).length },
      steps: { done: 0, total: lab.steps.length },
    };
  }

  /** Everything the walk shows goes through here: wrapped to the terminal's width at spaces. */
  private write(text = ''): void {
    this.ctx.say(text);
  }

  /** Prose from the lab file (templates filled in), as paragraphs fitted to the terminal, indented. */
  private prose(text: string, indent = '  '): void {
    for (const line of reflow(fill(text, this.vars)).split('\n')) this.write(line ? `${indent}${line}` : '');
  }

  private get vars(): Record<string, string> {
    return this.instance.vars;
  }

  private get nodes(): NodeName[] {
    return this.instance.plan.nodes.map((n) => n.key);
  }

  async run(): Promise<number> {
    const { lab, s } = this;
    this.write(s.bold(`Lab ${lab.id}: ${lab.title}`));
    for (const line of reflow(lab.intro).split('\n')) this.write(line);
    // The notes (where Linux differs from the article) often name the states the predictions ask about: they
    // come at the end, once the student has predicted and seen.
    this.write();
    this.instance = await this.bringUp();
    this.li = {
      instance: this.instance.id,
      lab: lab.slug,
      user: currentUser(),
      nodes: new Map(this.instance.plan.nodes.map((n) => [n.key, n.name])),
    };
    this.write(
      s.dim(`Machines: ${this.instance.plan.nodes.map((n) => `${n.key} ${n.interfaces.map((i) => i.ip).join(', ')}`).join('; ')}`),
    );
    const cmd = labCommand();
    this.write(
      s.dim(`In another terminal: \`${cmd} shell client\` opens a shell on the client, \`${cmd} status --watch\` shows the states live.`),
    );
    this.running = {
      instance: this.instance.id,
      lab: { id: lab.id, slug: lab.slug, title: lab.title, file: this.opts.file },
      owner: processOwner(),
      startedAt: new Date().toISOString(),
      stepIndex: -1,
      plan: this.instance.plan,
      keep: this.opts.keep,
      ...(this.opts.student ? { student: this.opts.student } : {}),
    };
    saveRunning(this.running);

    let ending: 'finished' | 'quit' | 'interrupted' = 'finished';
    try {
      for (const [i, step] of lab.steps.entries()) {
        this.running.stepIndex = i;
        this.running.stepId = step.id;
        this.running.stepStartedAt = new Date().toISOString();
        saveRunning(this.running);
        await this.walkStep(step, i);
        this.score.steps.done++;
        await this.stepMenu(step, i === lab.steps.length - 1);
      }
    } catch (e) {
      if (e instanceof Quit) ending = 'quit';
      else if (e instanceof PromptInterrupted || e instanceof InterruptedError || this.ctx.signal.aborted) ending = 'interrupted';
      else {
        // Broken: the top-level handler removes the instance (ctx.live); forget it here.
        forgetRunning(this.instance.id);
        throw e;
      }
    }
    return this.finish(ending);
  }

  /** The score, the lab removed (or kept), and the exit code: 0 done or quit, 1 checks missed, 130 interrupted. */
  private async finish(ending: 'finished' | 'quit' | 'interrupted'): Promise<number> {
    const { lab, s, score } = this;
    const completed = ending === 'finished' && score.checks.met === score.checks.total && score.tasks.done === score.tasks.total;
    saveProgress(lab.slug, score, completed);
    if (ending === 'finished' && lab.notes?.length) {
      this.write();
      this.write(s.bold('Where Linux differs from the article and RFC 793:'));
      for (const note of lab.notes) this.write(`  - ${reflow(note).replace(/\n/g, ' ')}`);
    }
    this.write();
    const done = `after ${score.steps.done} of ${score.steps.total} steps`;
    this.write(
      s.bold(
        ending === 'finished'
          ? `Lab ${lab.id} finished.`
          : ending === 'quit'
            ? `You quit Lab ${lab.id} ${done}.`
            : `Interrupted ${done} of Lab ${lab.id}.`,
      ),
    );
    this.write(
      `Score: predictions ${score.predictions.right}/${score.predictions.asked} right, checks ${score.checks.met}/${score.checks.total} met, ` +
        `tasks ${score.tasks.done}/${score.tasks.total} done${completed ? s.green('  (completed)') : ''}`,
    );
    forgetRunningUnlessKept(this.instance.id, ending !== 'interrupted' && this.opts.keep);
    // Shells open in this lab's machines (other terminals) end with it: tell them why.
    if (ending === 'interrupted' || !this.opts.keep)
      recordEnded({ instance: this.instance.id, lab: { id: lab.id, slug: lab.slug }, how: ending });
    // Ctrl-C (at a prompt or during a step) and a closed terminal remove the lab even with --keep: the top-level
    // handler does it (the instance is still in ctx.live) and says so; the exit code is 130/143.
    if (ending === 'interrupted') throw new InterruptedError(String(this.ctx.signal.reason ?? 'SIGINT'));
    if (this.opts.keep) {
      this.ctx.live.delete(this.instance.id);
      this.instance.close();
      const id = this.instance.id;
      const cmd = labCommand();
      this.write(
        `The lab is still running (instance ${id}): \`${cmd} shell client\`, \`${cmd} status\`; \`${cmd} stop ${id}\` removes it.`,
      );
    } else {
      const removed = await this.instance.down();
      this.ctx.live.delete(this.instance.id);
      this.write(s.dim(`Removed the lab (${describeRemoved(removed)}).`));
    }
    return ending === 'quit' || completed ? 0 : 1;
  }

  /**
   * One prompt: a menu (select, the first choice under the cursor) or a prediction (rawlist: lettered choices,
   * nothing chosen until the student types a letter). Another terminal's `lab check` may end it (signal); a
   * Ctrl-C there is an interrupt.
   */
  private async choose<T extends string>(
    message: string,
    choices: Choice<T>[],
    opts: { signal?: AbortSignal; echo?: (line: string) => void; lettered?: boolean } = {},
  ): Promise<T> {
    const { signal, echo } = opts;
    // A signal (SIGTERM, a closed terminal) ends the prompt too, so cleanup does not wait for a key.
    const signals = [signal, this.ctx.signal].filter((x): x is AbortSignal => !!x);
    // A prompt that another terminal may end is cleared from the screen; its answer, if any, is echoed.
    const prompt = inquirer.createPromptModule({
      signal: signals.length === 1 ? signals[0]! : AbortSignal.any(signals),
      ...(echo ? { clearPromptOnDone: true } : {}),
    });
    const keys = choiceKeys(choices.length);
    const question = opts.lettered
      ? { type: 'rawlist', name: 'a', message, choices: choices.map((c, i) => ({ ...c, key: keys[i], short: c.name })), loop: false }
      : { type: 'select', name: 'a', message, choices, loop: false, pageSize: 12 };
    try {
      const answer = (await prompt([question] as never)) as { a: T };
      echo?.(`✔ ${message} ${choices.find((c) => c.value === answer.a)?.name ?? answer.a}`);
      return answer.a;
    } catch (e) {
      if (e instanceof Error && e.name === 'ExitPromptError') throw new PromptInterrupted();
      if (this.ctx.signal.aborted) throw new InterruptedError(String(this.ctx.signal.reason ?? 'SIGINT'));
      throw e;
    }
  }

  /** Build (or find) the image and bring the machines up, with listr2 showing the progress. */
  private async bringUp(): Promise<Instance> {
    const { ctx, lab, opts } = this;
    const plain = !ctx.style.enabled;
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
                if (e.type === 'image' && e.phase === 'building') task.title = `Building the lab image ${e.tag} (first use)`;
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
              ...(opts.student ? { student: opts.student } : {}),
              emit: (e) => {
                if (e.type === 'network') task.output = `bridge ${e.name} ${e.subnet}`;
                if (e.type === 'node') task.output = `${e.node} ${e.ips.join(', ')}`;
                if (e.type === 'ready') task.title = `Lab instance ${e.instance} ready in ${(e.ms / 1000).toFixed(1)} s`;
                // After bring-up, actions are shown as the commands the student would type, with their output.
                this.showAction(e);
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

  private showAction(e: LabEvent): void {
    if (e.type !== 'action') return;
    const { s } = this;
    this.write(`  ${s.cyan(e.typed ? `${e.node}$` : `${e.node}:`)} ${e.display}`);
    if (e.output) for (const line of e.output.split('\n').slice(-6)) this.write(s.dim(`    ${line}`));
    if (e.exitCode !== undefined && e.exitCode !== 0 && e.typed) this.write(s.dim(`    (exit ${e.exitCode})`));
  }

  private async walkStep(step: Step, index: number): Promise<void> {
    const { s, score, instance, vars } = this;
    this.write();
    this.write(s.bold(`── Step ${index + 1}/${this.lab.steps.length}: ${step.title} ──`));
    this.prose(step.explain);

    // The prediction comes before anything changes, and is answered once the student has seen the result. Its
    // choices come in an order of this student's (the lab file often lists the answer first), none chosen.
    let predicted: string | undefined;
    if (step.predict) {
      this.write();
      this.write(s.dim('  Type the letter of your prediction, then Enter.'));
      const order = shuffled(step.predict.choices, `${currentUser()}:${this.lab.slug}:${step.id}`);
      predicted = await this.choose(
        `Predict: ${step.predict.question}`,
        order.map((c) => ({ name: c, value: c })),
        { lettered: true },
      );
      score.predictions.asked++;
    }

    const checks: Check[] = [];
    if (step.run?.length) this.write();
    instance.beginStep();
    const failed = await instance.runActions(step.id, step.run ?? []);
    if (failed) checks.push(failed);

    if (step.task && (await this.recordedTask(step, Date.parse(this.running.stepStartedAt ?? '') || Date.now()))) score.tasks.done++;

    if (step.expect?.length && !failed) {
      this.write(s.dim(`  watching ss on ${[...new Set(step.expect.map((e) => e.on))].join(' and ')} for the expected states...`));
      checks.push(...(await instance.waitFor(step.id, step.expect)));
    }
    const observed = await instance.observeAll(instance.capture).catch(() => undefined);
    this.write();
    if (observed) {
      const socks = new Map([...observed].map(([n, snap]) => [n, snap.sockets]));
      this.write(renderSockets(socks, s, socketsThatMatter([...(step.expect ?? []), ...(step.task?.expect ?? [])], vars), this.ctx.width));
    }
    this.showLadder();
    if (checks.length) {
      this.write();
      this.write(renderChecks(checks, s));
    }
    score.checks.total += checks.length;
    score.checks.met += checks.filter((c) => c.passed).length;

    if (step.predict && predicted !== undefined) {
      const right = predicted === step.predict.answer;
      if (right) score.predictions.right++;
      this.write();
      this.write(`  You predicted: ${predicted}  ${right ? s.green('✓ right') : s.red('✗ not quite')}`);
      this.write(`  ${s.bold('Answer:')} ${step.predict.answer}: ${reflow(fill(step.predict.why, vars)).replace(/\n+/g, ' ')}`);
    }
  }

  /** The step's segments as a ladder beside each side's states (plain text: it reads the same with or
   *  without colour), fitted to the terminal; nothing when the step put nothing on the wire. */
  private showLadder(): void {
    if (!this.instance.capture) return;
    const t = this.instance.timeline();
    const { from, to } = this.instance.stepWindow;
    if (eventsIn(t, from, to).length === 0) return;
    this.write();
    this.write(this.s.bold('  On the wire (time in s, from the start of this step):'));
    const width = ladderWidth(process.stdout.columns) - 2;
    for (const line of renderLadder(t, { width, from, to, maxRows: 40 }).trimEnd().split('\n')) this.write(`  ${line}`);
  }

  private toolChoices(): Choice<string>[] {
    return [
      ...this.nodes.map((n) => ({ name: `Open a shell on the ${n}`, value: `shell:${n}` })),
      { name: 'Show the rules in effect (iptables -S, -L -vn)', value: 'rules' },
      { name: 'Show the processes (ps)', value: 'ps' },
    ];
  }

  /** The shell, rules and processes choices; false when the choice is none of them. */
  private async tool(choice: string): Promise<boolean> {
    if (choice.startsWith('shell:')) {
      await shellSession(this.instance.runtime, this.li, choice.slice(6) as NodeName, (t) => this.write(this.s.dim(t)));
      return true;
    }
    if (choice === 'rules') {
      this.write(await showRules(this.instance.runtime, this.li, this.s));
      return true;
    }
    if (choice === 'ps') {
      this.write(await showProcesses(this.instance.runtime, this.li, this.s));
      return true;
    }
    return false;
  }

  /** Every machine's sockets now, the ones these expectations are about highlighted, and the step's ladder so far. */
  private async showSockets(expectations: Step['expect'] & object): Promise<void> {
    const observed = await this.instance.observeAll(this.instance.capture);
    const socks = new Map([...observed].map(([n, snap]) => [n, snap.sockets]));
    this.write(renderSockets(socks, this.s, socketsThatMatter(expectations, this.vars), this.ctx.width));
    this.showLadder();
  }

  /** The menu after a step: go on, or look around first. */
  private async stepMenu(step: Step, last: boolean): Promise<void> {
    const { s } = this;
    for (;;) {
      this.write();
      const choice = await this.choose('What next?', [
        { name: last ? 'Finish the lab' : 'Continue to the next step', value: 'continue' },
        { name: 'Observe again (ss on every machine, expectations now)', value: 'observe' },
        ...this.toolChoices(),
        { name: 'Quit (removes the lab unless --keep)', value: 'quit' },
      ]);
      if (choice === 'continue') return;
      if (choice === 'quit') throw new Quit();
      if (choice === 'observe') {
        const expectations = [...(step.expect ?? []), ...(step.task?.expect ?? [])];
        await this.showSockets(expectations);
        for (const r of expectations.length ? await this.instance.evaluateNow(expectations) : []) {
          const mark = r.evaluation.holds ? s.green('✓ met now    ') : s.red('✗ not met now');
          this.write(`  ${mark} ${describeExpectation(r.e, this.vars, { timing: false })}`);
          if (!r.evaluation.holds) for (const line of r.evaluation.seen) this.write(`                ${s.dim('seen:')} ${line}`);
        }
        continue;
      }
      await this.tool(choice);
    }
  }

  /**
   * A task, and afterwards what the student typed for it saved for `lab submit`: the commands from the start of
   * the step up to the check that passed (or until the task ended another way: the solution shown, quit).
   */
  private async recordedTask(step: Step, startedAt: number): Promise<boolean> {
    // Until the loop returns, the student is leaving (quit): what was typed so far is still saved.
    let how: 'done' | 'solution' | 'quit' = 'quit';
    try {
      const solved = await this.taskLoop(step);
      how = solved ? 'done' : 'solution';
      return solved;
    } finally {
      // Not after Ctrl-C: the lab is being removed, and the student wants out now.
      if (!this.ctx.signal.aborted) {
        const tried = loadAttempts(this.instance.id)[step.id];
        const endedAt = tried?.passedAt ? Date.parse(tried.passedAt) : Date.now();
        const work = await captureTask(
          { lab: this.lab, file: this.opts.file, instance: this.instance, ...(this.opts.student ? { student: this.opts.student } : {}) },
          step,
          { startedAt, endedAt },
          { passed: how === 'done', attempts: tried?.attempts ?? 0, ...(how === 'solution' ? { solvedByTcplab: true } : {}) },
        ).catch(() => undefined);
        const n = work?.answer.reduce((k, a) => k + a.lines.length, 0) ?? 0;
        if (work)
          this.write(this.s.dim(`  Recorded ${n} command${n === 1 ? '' : 's'} you typed for this task; \`lab submit\` hands them in.`));
      }
    }
  }

  /**
   * A step the student does by hand. Returns true when a check passed (here or via `lab check` in another
   * terminal), false when the student asked tcplab to do it.
   */
  private async taskLoop(step: Step): Promise<boolean> {
    const { s, instance, vars } = this;
    const task = step.task!;
    this.write();
    this.write(s.bold(s.cyan('  Your task:')));
    this.prose(task.prompt);
    const cmd = labCommand();
    this.write(s.dim(`  Work in \`${cmd} shell <machine>\` (here from the menu, or in another terminal), then \`${cmd} check\`.`));
    let seenAttempts = loadAttempts(instance.id)[step.id]?.attempts ?? 0;
    let hintsShown = 0;
    const showHint = (attempts: number) => {
      const hint = hintFor(step, attempts);
      if (hint) this.write(`  ${s.yellow('hint:')} ${fill(hint, vars)}`);
    };
    for (;;) {
      this.write();
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
        choice = await this.choose(
          'Your task: what next?',
          [
            { name: `Check my work (same as \`${labCommand()} check\`)`, value: 'check' },
            ...(task.hints?.length ? [{ name: 'Show a hint', value: 'hint' }] : []),
            ...this.toolChoices(),
            { name: 'Observe (ss on every machine)', value: 'observe' },
            { name: 'Show me the solution and do it for me (the task counts as not done)', value: 'solve' },
            { name: 'Quit (removes the lab unless --keep)', value: 'quit' },
          ],
          { signal: abort.signal, echo: (line) => this.write(line) },
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
          this.write(`  ${s.green('✓ task done')} (checked by \`${labCommand()} check\`, attempt ${ext.attempts})`);
          return true;
        }
        this.write(`  ${s.red('✗ not yet')} (\`${labCommand()} check\`, attempt ${ext.attempts})`);
        showHint(ext.attempts);
        continue;
      }
      if (choice === 'quit') throw new Quit();
      if (choice === 'check') {
        const checks = await checkTask(instance, step);
        const passed = checks.every((c) => c.passed);
        const rec = recordAttempt(instance.id, step.id, passed);
        seenAttempts = rec.attempts;
        this.write(renderChecks(checks, s));
        if (passed) {
          this.write(`  ${s.green('✓ task done')} (attempt ${rec.attempts})`);
          return true;
        }
        showHint(rec.attempts);
        continue;
      }
      if (choice === 'hint') {
        const hints = task.hints ?? [];
        const k = Math.min(hintsShown, hints.length - 1);
        this.write(`  ${s.yellow(`hint ${k + 1}/${hints.length}:`)} ${fill(hints[k]!, vars)}`);
        hintsShown++;
        continue;
      }
      if (choice === 'observe') {
        await this.showSockets(task.expect);
        continue;
      }
      if (choice === 'solve') {
        this.write(s.dim('  The solution:'));
        const failed = await instance.runActions(step.id, task.solution ?? []);
        this.write(renderChecks(failed ? [failed] : await checkTask(instance, step), s));
        return false;
      }
      await this.tool(choice);
    }
  }
}

/** The state file lets other terminals find the lab; it goes with the lab, and stays only with a kept one. */
function forgetRunningUnlessKept(instance: string, kept: boolean): void {
  if (!kept) forgetRunning(instance);
}
