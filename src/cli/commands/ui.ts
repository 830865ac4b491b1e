// `lab ui`: the live page for a running lab. It prints the page's address, opens a browser when there is one,
// and watches the lab until Ctrl-C or until the lab goes away. It never starts, keeps or removes a lab.
import { spawn } from 'node:child_process';
import { isIP } from 'node:net';
import { LabError } from '../../errors.js';
import { catalogue } from '../../lab/catalogue.js';
import { loadLabFile } from '../../lab/load.js';
import type { Lab } from '../../lab/schema.js';
import { ownerAlive } from '../../identity.js';
import { LABEL, type Plan } from '../../plan/plan.js';
import { labStub, rebuildPlan, topologyOf, walkOf } from '../../ui/attach.js';
import { isLoopback, startUiServer, type UiServer } from '../../ui/server.js';
import { runSession } from '../../ui/session.js';
import { LabWatch } from '../../ui/watch.js';
import { defineCommand } from '../command.js';
import type { Context } from '../context.js';
import { pickInstance, type LiveInstance } from '../live.js';
import { stateFiles } from '../../walk/state-files.js';
import { labCommand } from '../invocation.js';
import { terminalWidth, wrapText } from '../wrap.js';

/** Tried first when --port is not given, so that a bookmark keeps working; any free port when it is taken. */
const DEFAULT_PORT = 7357;

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new LabError(`--port takes a port number from 1 to 65535, not '${text}'`);
  return n;
}

function parseHost(text: string | undefined): string {
  if (text === undefined) return '127.0.0.1';
  if (text === 'localhost') return '127.0.0.1';
  if (!isIP(text))
    throw new LabError(
      `--host takes an IP address of this machine, not '${text}'`,
      'for example --host 0.0.0.0 to let a projector on your network reach it',
    );
  return text;
}

async function labAndPlan(ctx: Context, li: LiveInstance): Promise<{ lab?: Lab; plan: Plan }> {
  const state = li.state;
  if (state) {
    let lab: Lab | undefined;
    try {
      lab = loadLabFile(state.lab.file).lab;
    } catch {
      lab = undefined;
    }
    return { ...(lab ? { lab } : {}), plan: state.plan };
  }
  const lab = catalogue().find((l) => l.lab.slug === li.lab)?.lab;
  const plan = await rebuildPlan(ctx.runtime, li.instance, li.nodes, lab ?? labStub(li.lab, topologyOf(li.nodes.keys())));
  return { ...(lab ? { lab } : {}), plan };
}

/** Open the page in the desktop's browser; without a desktop (no DISPLAY on Linux) do not try: xdg-open would
 *  fall back to a text browser in this very terminal. */
function openBrowser(url: string): Promise<string | undefined> {
  const [cmd, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['cmd', ['/c', 'start', '""', url]]
        : ['xdg-open', [url]];
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return Promise.resolve('no desktop here');
  return new Promise((resolve) => {
    try {
      const child = spawn(cmd as string, args as string[], { stdio: 'ignore', detached: true });
      child.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ENOENT' ? `${cmd} is not installed` : e.message));
      child.once('spawn', () => {
        child.unref();
        resolve(undefined);
      });
    } catch (e) {
      resolve((e as Error).message);
    }
  });
}

export const uiCommand = defineCommand({
  name: 'ui',
  usage: 'ui [instance] [--all] [--port N] [--host ADDR] [--no-open]',
  summary: 'a live page for a running lab: state diagrams, the packet ladder, the current step (for a projector too)',
  help:
    'Serves a page for a running lab (the one named, or the one your `lab start` runs) and prints its address:\n' +
    "each machine's TCP state diagram (RFC 9293) with its sockets' states lit, the packet ladder as segments\n" +
    'arrive, and the current step with its checks, updated live. It binds to 127.0.0.1 unless --host says\n' +
    'otherwise (--host 0.0.0.0: every interface, for a projector on another machine). --port N, or 7357 (any\n' +
    'free port when that one is taken). --no-open: do not open a browser. It only watches: Ctrl-C stops the page,\n' +
    "never the lab. Without an instance it looks among your own labs; --all: among everybody's (a teacher's projector).",
  options: { port: { type: 'string' }, host: { type: 'string' }, 'no-open': { type: 'boolean' }, all: { type: 'boolean' } },
  async run(ctx, values, positionals) {
    if (positionals.length > 1) throw new LabError('lab ui takes at most one instance', 'for example `lab ui`, or `lab ui 1a2b3c4d`');
    const port = parsePort(values.port);
    const host = parseHost(values.host);
    const li = await pickInstance(ctx.runtime, positionals[0], { all: !!values.all });
    const { lab, plan } = await labAndPlan(ctx, li);
    const labels = (await ctx.runtime.listContainers({ [LABEL.managed]: 'true', [LABEL.instance]: li.instance }))[0]?.labels ?? {};

    let server: UiServer;
    try {
      server = await startUiServer({ host, port: port ?? DEFAULT_PORT });
    } catch (e) {
      if (port !== undefined || !(e instanceof LabError) || !/in use/.test(e.message)) throw e;
      server = await startUiServer({ host, port: 0 });
    }
    const watch = new LabWatch(ctx.runtime, plan, ctx.signal);
    // Lines for people, fitted to the terminal they go to (stderr with --json).
    const tell = (text: string) => ctx.info(wrapText(text, ctx.json ? terminalWidth(ctx.err) : ctx.width));
    try {
      const title = lab ? `Lab ${lab.id}: ${lab.title}` : li.lab;
      // Wrapped at spaces: the address, one word, is never broken.
      ctx.print(
        wrapText(`${ctx.style.bold('Live page')} for ${title} (instance ${li.instance}): ${ctx.style.cyan(server.url)}`, ctx.width),
      );
      if (!isLoopback(host))
        tell(
          ctx.style.yellow(`listening on ${host}: anyone who can reach this machine on port ${server.port} can see the page (read-only)`),
        );
      if (!values['no-open']) {
        const why = await openBrowser(server.url);
        if (why) tell(ctx.style.dim(`(not opening a browser: ${why}; open the address above)`));
      }
      tell(ctx.style.dim('Ctrl-C stops the page; the lab keeps running.'));
      const end = await runSession({
        watch,
        ...(lab ? { lab } : {}),
        slug: li.lab,
        // The walk publishes its step and its own process (host:pid) in its state file; without one, the
        // containers' owner label says whether the process that made the lab still runs.
        walk: () => {
          const state = stateFiles()
            .listRunning()
            .find((r) => r.instance === li.instance);
          const alive = state ? ownerAlive(state.owner, state.startedAt) : ownerAlive(labels[LABEL.pid], labels[LABEL.created]);
          return walkOf(state, alive, lab?.steps.length);
        },
        // The walk moving on (another process writes its state file) ends the looks that wait, at once.
        walkChanges: (poke) => stateFiles().watchRunning(li.instance, poke),
        // The ladder apart from the rest: a lab's sockets (their timers) change every second, its ladder only
        // when segments arrive, and the ladder is most of the bytes.
        publish: ({ ladder, ...rest }) => {
          server.publish('ladder', ladder);
          server.publish('view', rest);
        },
        signal: ctx.signal,
      });
      // The page has the last view (with why it ended); give an open page a moment to receive it.
      server.publish('end', { reason: end.reason });
      await new Promise((r) => setTimeout(r, 300));
      if (end.reason === 'stopped')
        tell(`lab ui stopped; instance ${li.instance} is still running (\`${labCommand()} stop ${li.instance}\` removes it)`);
      else tell(`${ctx.style.yellow('lab ui stops:')} ${end.message}`);
      return end.reason === 'unreachable' ? 3 : 0;
    } finally {
      watch.close();
      await server.close();
    }
  },
});
