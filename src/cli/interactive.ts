// `lab start` at a terminal: the walk (src/walk/session.ts) drawn as a scrolling terminal, its choices asked
// with inquirer. Progress (listr2) while the image builds and the machines come up; then whatever the walk
// publishes is written as it happens: the explanation, the prediction (lettered, in this student's order), the
// commands as a student would type them, both sides' sockets with the ones that matter highlighted, the ladder,
// each expectation met or not, the task and its checks, and the menu. Everything the walk decides (what comes
// next, what is recorded, the score) is the model's; this file only writes and asks. A prompt on the screen
// gives way when the walk moves without being asked (a `lab check` in another terminal, the lab removed).
import inquirer from 'inquirer';
import { currentUser, processOwner } from '../identity.js';
import type { Lab, NodeName } from '../lab/schema.js';
import { ensureImage } from '../engine/image.js';
import type { Instance } from '../engine/instance.js';
import { createInstance, newInstanceId } from '../engine/provision.js';
import { renderChecks } from '../report/text.js';
import type { Style } from '../report/style.js';
import { InterruptedError } from '../errors.js';
import {
  EngineRelay,
  WalkRefused,
  WalkSession,
  type WalkChoice,
  type WalkEnding,
  type WalkEvent,
  type WalkListener,
  type WalkState,
} from '../walk/session.js';
import { scoreWords, stateFiles } from '../walk/state-files.js';
import type { MachineOutput } from '../walk/views.js';
import { ladderWidth } from './render.js';
import type { Context } from './context.js';
import { renderSockets, shellSession, type LiveInstance } from './live.js';
import { labCommand } from './invocation.js';
import { reflow } from './wrap.js';

interface InteractiveOptions {
  keep: boolean;
  base?: string;
  file: string;
  /** Whose variants the lab uses, and who `lab submit` hands the work in for. */
  student?: string;
}

/** Ctrl-C at a prompt: the terminal is in raw mode, so inquirer sees the key and no SIGINT arrives. */
class PromptInterrupted extends Error {}

export async function runInteractive(ctx: Context, lab: Lab, opts: InteractiveOptions): Promise<number> {
  return new TerminalWalk(ctx, lab, opts).run();
}

class TerminalWalk {
  private readonly s: Style;
  private readonly cmd = labCommand();
  private walk!: WalkSession;
  private instance!: Instance;
  /** A prompt is on the screen: what the walk says meanwhile waits here, and the prompt gives way. */
  private prompt: AbortController | undefined;
  private held: string[] = [];

  constructor(
    private readonly ctx: Context,
    private readonly lab: Lab,
    private readonly opts: InteractiveOptions,
  ) {
    this.s = ctx.style;
  }

  /** Everything the walk shows goes through here: wrapped to the terminal's width at spaces. */
  private write(text = ''): void {
    if (this.prompt) {
      this.held.push(text);
      this.prompt.abort('the walk moved on');
    } else this.ctx.say(text);
  }

  /** Prose from the lab file, as paragraphs fitted to the terminal, indented. */
  private prose(text: string, indent = '  '): void {
    for (const line of reflow(text).split('\n')) this.write(line ? `${indent}${line}` : '');
  }

  async run(): Promise<number> {
    const { lab, s, ctx } = this;
    this.write(s.bold(`Lab ${lab.id}: ${lab.title}`));
    for (const line of reflow(lab.intro).split('\n')) this.write(line);
    // The notes (where Linux differs from the article) often name the states the predictions ask about: they
    // come at the end, once the student has predicted and seen.
    this.write();
    const relay = new EngineRelay();
    this.instance = await this.bringUp(relay);
    try {
      this.walk = new WalkSession({
        lab,
        file: this.opts.file,
        instance: this.instance,
        relay,
        store: stateFiles(),
        owner: processOwner(),
        user: currentUser(),
        keep: this.opts.keep,
        command: this.cmd,
        ladderWidth: ladderWidth(process.stdout.columns) - 2,
        signal: ctx.signal,
        ...(this.opts.student ? { student: this.opts.student } : {}),
      });
      const listener: WalkListener = (e, st) => this.render(e, st);
      this.walk.on(listener);
      await this.walk.start();
      for (;;) {
        await this.walk.idle();
        const st = this.walk.state;
        if (st.phase === 'ended') break;
        await this.turn(st);
      }
    } catch (e) {
      if (!(e instanceof InterruptedError || e instanceof PromptInterrupted || ctx.signal.aborted)) {
        // Broken: the top-level handler removes the instance (ctx.live); forget it here.
        stateFiles().forgetRunning(this.instance.id);
        throw e;
      }
      await this.walk?.interrupt();
    }
    return this.finish(this.walk.state.ended!);
  }

  /** One prompt and what the student chose. */
  private async turn(st: WalkState): Promise<void> {
    const message =
      st.phase === 'predict' ? `Predict: ${st.step!.prediction!.question}` : st.phase === 'task' ? 'Your task: what next?' : 'What next?';
    if (st.phase !== 'predict') this.write();
    let choice: WalkChoice | undefined;
    try {
      choice = await this.choose(message, st.choices, st.phase === 'predict');
    } catch (e) {
      if (e instanceof PromptInterrupted) return this.walk.interrupt();
      throw e;
    }
    if (!choice) return;
    const intent = choice.intent;
    if (intent.type === 'shell') {
      await shellSession(this.instance.runtime, this.liveInstance(), intent.node, (t) => this.write(this.s.dim(t)));
      return;
    }
    try {
      await this.walk.send(intent);
    } catch (e) {
      // The walk moved on by itself between the prompt and the choice (a `lab check` elsewhere): ask again.
      if (!(e instanceof WalkRefused)) throw e;
    }
  }

  private liveInstance(): LiveInstance {
    return {
      instance: this.instance.id,
      lab: this.lab.slug,
      user: currentUser(),
      nodes: new Map(this.instance.plan.nodes.map((n) => [n.key, n.name])),
    };
  }

  /**
   * One prompt: a menu (select, the first choice under the cursor) or a prediction (rawlist: lettered choices,
   * nothing chosen until the student types a letter). It gives way (undefined) when the walk writes something
   * meanwhile; a Ctrl-C there is an interrupt. The prompt is cleared when done and the answer written after it.
   */
  private async choose(message: string, choices: WalkChoice[], lettered: boolean): Promise<WalkChoice | undefined> {
    const { ctx, s } = this;
    const abort = new AbortController();
    this.prompt = abort;
    // A signal (SIGTERM, a closed terminal) ends the prompt too, so cleanup does not wait for a key.
    const prompt = inquirer.createPromptModule({ signal: AbortSignal.any([abort.signal, ctx.signal]), clearPromptOnDone: true });
    const items = choices.map((c, i) => ({ name: c.label, value: String(i) }));
    const question = lettered
      ? {
          type: 'rawlist',
          name: 'a',
          message,
          choices: items.map((c, i) => ({
            ...c,
            key: choices[i]!.intent.type === 'answer' ? (choices[i]!.intent as { key: string }).key : undefined,
            short: c.name,
          })),
          loop: false,
        }
      : { type: 'select', name: 'a', message, choices: items, loop: false, pageSize: 12 };
    let picked: WalkChoice | undefined;
    try {
      const answer = (await prompt([question] as never)) as { a: string };
      picked = choices[Number(answer.a)];
      ctx.say(`${s.green('✔')} ${s.bold(message)} ${s.cyan(picked!.label)}`);
    } catch (e) {
      if (e instanceof Error && e.name === 'ExitPromptError') throw new PromptInterrupted();
      if (ctx.signal.aborted) throw new InterruptedError(String(ctx.signal.reason ?? 'SIGINT'));
      if (!(e instanceof Error && e.name === 'AbortPromptError' && abort.signal.aborted)) throw e;
    } finally {
      // What the walk wrote while the prompt was up, now that it is gone.
      this.prompt = undefined;
      const held = this.held;
      this.held = [];
      for (const line of held) ctx.say(line);
    }
    return picked;
  }

  /** Build (or find) the image and bring the machines up, with listr2 showing the progress. */
  private async bringUp(relay: EngineRelay): Promise<Instance> {
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
                // After bring-up, the walk shows the commands as the student would type them.
                relay.emit(e);
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
        // Ctrl-C is ours (cli/context.ts: abort, remove what was made, exit 130). listr2's own handler would end
        // the process at once with 127, leaving the machines already made behind.
        registerSignalListeners: false,
        rendererOptions: { collapseSubtasks: false },
      },
    );
    await tasks.run();
    return instance!;
  }

  /** What the walk publishes, as lines on the terminal. */
  private render(e: WalkEvent, st: WalkState): void {
    const { s, cmd } = this;
    switch (e.type) {
      case 'started':
        this.write(s.dim(`Machines: ${st.machines.map((m) => `${m.node} ${m.ips.join(', ')}`).join('; ')}`));
        this.write(
          s.dim(
            `In another terminal: \`${cmd} shell client\` opens a shell on the client, \`${cmd} status --watch\` shows the states live.`,
          ),
        );
        return;
      case 'step':
        this.write();
        this.write(s.bold(`── Step ${e.step.index + 1}/${st.lab.steps}: ${e.step.title} ──`));
        this.prose(e.step.explain);
        if (e.step.prediction && !e.step.prediction.chosen) {
          this.write();
          this.write(s.dim('  Type the letter of your prediction, then Enter.'));
        }
        return;
      case 'run':
        this.write();
        return;
      case 'action': {
        const a = e.action;
        this.write(`  ${s.cyan(a.typed ? `${a.node}$` : `${a.node}:`)} ${a.display}`);
        if (a.output) for (const line of a.output.split('\n').slice(-6)) this.write(s.dim(`    ${line}`));
        if (a.exitCode !== undefined && a.exitCode !== 0 && a.typed) this.write(s.dim(`    (exit ${a.exitCode})`));
        return;
      }
      case 'task':
        this.write();
        this.write(s.bold(s.cyan('  Your task:')));
        this.prose(e.task.prompt);
        this.write(s.dim(`  Work in \`${cmd} shell <machine>\` (here from the menu, or in another terminal), then \`${cmd} check\`.`));
        return;
      case 'task-checked': {
        const c = e.check;
        if (c.by === 'walk') this.write(renderChecks(c.checks, s));
        const by = c.by === 'walk' ? '' : c.passed ? `checked by \`${cmd} check\`, ` : `\`${cmd} check\`, `;
        if (c.passed) this.write(`  ${s.green('✓ task done')} (${by}attempt ${c.attempt})`);
        else if (c.by !== 'walk') this.write(`  ${s.red('✗ not yet')} (${by}attempt ${c.attempt})`);
        if (c.hint) this.write(`  ${s.yellow('hint:')} ${c.hint}`);
        return;
      }
      case 'hint':
        this.write(`  ${s.yellow(`hint ${e.n}/${e.of}:`)} ${e.text}`);
        return;
      case 'solution':
        this.write(s.dim('  The solution:'));
        return;
      case 'recorded':
        this.write(
          s.dim(`  Recorded ${e.commands} command${e.commands === 1 ? '' : 's'} you typed for this task; \`${cmd} submit\` hands them in.`),
        );
        return;
      case 'watching':
        this.write(s.dim(`  watching ss on ${e.nodes.join(' and ')} for the expected states...`));
        return;
      case 'sockets': {
        if (e.of === 'step') this.write();
        const socks = new Map(e.sockets.map((n) => [n.node, n.sockets]));
        this.write(renderSockets(socks, s, (_n, sock) => (sock as { matters?: boolean }).matters === true, this.ctx.width));
        return;
      }
      case 'ladder':
        this.write();
        this.write(s.bold('  On the wire (time in s, from the start of this step):'));
        for (const line of e.ladder.text.trimEnd().split('\n')) this.write(`  ${line}`);
        return;
      case 'checks':
        if (e.of === 'step') this.write();
        this.write(renderChecks(e.checks, s));
        return;
      case 'now':
        for (const r of e.results) {
          const mark = r.holds ? s.green('✓ met now    ') : s.red('✗ not met now');
          this.write(`  ${mark} ${r.expected}`);
          if (!r.holds) for (const line of r.seen) this.write(`                ${s.dim('seen:')} ${line}`);
        }
        return;
      case 'revealed': {
        const p = e.prediction;
        const chosen = p.choices.find((c) => c.key === p.chosen)?.text ?? '';
        this.write();
        this.write(`  You predicted: ${chosen}  ${p.right ? s.green('✓ right') : s.red('✗ not quite')}`);
        this.write(`  ${s.bold('Answer:')} ${p.answer}: ${reflow(p.why ?? '').replace(/\n+/g, ' ')}`);
        return;
      }
      case 'view':
        this.write(machinesText(e.machines, s));
        return;
      case 'ended':
        this.ending(e.ending, st);
        return;
      case 'answered':
      case 'phase':
        return;
    }
  }

  private ending(ending: WalkEnding, st: WalkState): void {
    const { s, cmd } = this;
    const { score } = ending;
    const lab = st.lab;
    if (ending.notes.length) {
      this.write();
      this.write(s.bold('Where Linux differs from the article and RFC 793:'));
      for (const note of ending.notes) this.write(`  - ${reflow(note).replace(/\n/g, ' ')}`);
    }
    this.write();
    const done = `after ${score.steps.done} of ${score.steps.total} steps`;
    this.write(
      s.bold(
        ending.how === 'finished'
          ? `Lab ${lab.id} finished.`
          : ending.how === 'quit'
            ? `You quit Lab ${lab.id} ${done}.`
            : ending.how === 'interrupted'
              ? `Interrupted ${done} of Lab ${lab.id}.`
              : `Lab ${lab.id} stopped ${done}.`,
      ),
    );
    if (ending.message) this.write(ending.message);
    this.write(
      // Only what the lab counted: a lab quit before any check reads "checks 0/0 met" otherwise.
      `Score: ${scoreWords(score)}${ending.completed ? s.green('  (completed)') : ''}`,
    );
    if (ending.kept)
      this.write(
        `The lab is still running (instance ${st.instance}): \`${cmd} shell client\`, \`${cmd} status\`; \`${cmd} stop ${st.instance}\` removes it.`,
      );
    if (ending.removed) this.write(s.dim(`Removed the lab (${ending.removed}).`));
  }

  /** The exit code: 0 done or quit, 1 checks missed or the lab gone; Ctrl-C and a closed terminal throw (130/143),
   *  and the top-level handler removes the lab (it is still in ctx.live), even with --keep, and says so. */
  private finish(ending: WalkEnding): number {
    if (ending.how === 'interrupted') throw new InterruptedError(String(this.ctx.signal.reason ?? 'SIGINT'));
    this.ctx.live.delete(this.instance.id);
    return ending.exitCode;
  }
}

/** Each machine's commands and their output, as if typed at its prompt. */
function machinesText(machines: MachineOutput[], style: Style): string {
  const indent = (text: string) =>
    text
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n');
  return machines
    .flatMap((m) => m.commands.map((c) => `${style.cyan(`${m.node as NodeName}$`)} ${c.command}\n${indent(c.output)}`))
    .join('\n');
}
