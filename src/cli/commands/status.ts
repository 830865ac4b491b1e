// `lab status`: your running lab instances and both sides' live TCP states (--watch: redrawn in place).
import { loadLabFile } from '../../lab/load.js';
import type { Lab } from '../../lab/schema.js';
import { currentUser, isMine } from '../../identity.js';
import { realClock } from '../../engine/clock.js';
import { defineCommand } from '../command.js';
import type { Context } from '../context.js';
import { ALL_OPTION, liveInstances, liveSockets, renderSockets } from '../live.js';
import { socketsThatMatter } from '../../walk/views.js';
import { stateFiles } from '../../walk/state-files.js';
import { labCommand } from '../invocation.js';
import { wrapText } from '../wrap.js';

export const statusCommand = defineCommand({
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
              const tried = stateFiles().loadAttempts(li.instance)[step.id];
              head += `, step ${st.stepIndex + 1}/${lab.steps.length}: ${step.title}`;
              if (step.task) head += (tried?.passed ? ctx.style.green : ctx.style.yellow)(` [${taskNote(tried)}]`);
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

/** Where a step's task stands, in words: "task done", "task open", "task open, 1 attempt", "task open, 3 attempts". */
export function taskNote(tried: { attempts: number; passed: boolean } | undefined): string {
  if (tried?.passed) return 'task done';
  if (!tried?.attempts) return 'task open';
  return `task open, ${tried.attempts} attempt${tried.attempts === 1 ? '' : 's'}`;
}
