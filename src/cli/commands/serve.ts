// `lab serve`: a whole class in the browser on one Docker host (src/serve). It prints the instructor's link (a
// secret) and how students join, then serves until Ctrl-C. Labs outlive the server on purpose: the next
// `lab serve` with the same state directory reattaches them.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { LabError } from '../../errors.js';
import { catalogue } from '../../lab/catalogue.js';
import type { LoadedLab } from '../../lab/load.js';
import { newJoinCode } from '../../serve/auth.js';
import { defaultClass, loadClassFile, type ClassConfig } from '../../serve/class-file.js';
import { Store } from '../../serve/store.js';
import { isLoopback } from '../../ui/server.js';
import { defineCommand } from '../command.js';
import { IMAGE_OPTION, prepareImage, stderrRenderer } from '../run-tracked.js';
import { stateDir } from '../../walk/state-files.js';
import { VERSION } from '../../version.js';

const DEFAULT_PORT = 7358;

function parsePort(text: string | undefined): number {
  if (text === undefined) return DEFAULT_PORT;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 0 || n > 65535) throw new LabError(`--port takes a port number from 0 to 65535, not '${text}'`);
  return n;
}

function parseHost(text: string | undefined): string {
  if (text === undefined || text === 'localhost') return '127.0.0.1';
  if (!isIP(text))
    throw new LabError(`--host takes an IP address of this machine, not '${text}'`, 'for example --host 0.0.0.0 for every interface');
  return text;
}

/** The class's labs, in its order; every lab when it names none. */
function offeredLabs(cls: ClassConfig): LoadedLab[] {
  const all = catalogue();
  if (!cls.labs) return all;
  return cls.labs.map((ref) => {
    const found = all.find((l) => (typeof ref === 'number' ? l.lab.id === ref : l.lab.slug === ref));
    if (!found)
      throw new LabError(
        `${cls.file ?? 'the class'}: no lab ${ref}`,
        `the labs are: ${all.map((l) => `${l.lab.id} (${l.lab.slug})`).join(', ')}`,
      );
    return found;
  });
}

export const serveCommand = defineCommand({
  name: 'serve',
  usage: 'serve [--class class.yaml] [--port N] [--host ADDR] [--tls-cert FILE --tls-key FILE] [--trust-proxy]',
  summary: 'a class in the browser: each student their own labs, terminals and walk; a live dashboard for the instructor',
  help:
    'Serves a class from this Docker host: students open a page (their personal link, or the join code and a\n' +
    'name), start their own instance of a lab, walk it with a terminal per machine beside the live view, and press\n' +
    "Check. The instructor's link (printed, a secret) opens the dashboard: who is where, who is stuck, their\n" +
    'terminals and pages read-only, stopping a lab, the gradebook (CSV, JUnit, Gradescope, PrairieLearn).\n' +
    '--class FILE: labs offered, roster and/or join code, limits, state directory (docs/classroom.md); without it\n' +
    'every lab, a join code, state under the tcplab state folder. Binds 127.0.0.1:7358 unless --host/--port say\n' +
    'otherwise; on a network give --tls-cert/--tls-key (or a reverse proxy with TLS, and --trust-proxy for its\n' +
    'X-Forwarded-For). Ctrl-C stops the server; running labs stay, and the next `lab serve` reattaches them.',
  options: {
    class: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'trust-proxy': { type: 'boolean' },
    ...IMAGE_OPTION,
  },
  async run(ctx, values, positionals) {
    if (positionals.length) throw new LabError('lab serve takes no arguments', 'for example `lab serve --class class.yaml`');
    const port = parsePort(values.port);
    const host = parseHost(values.host);
    if (!!values['tls-cert'] !== !!values['tls-key']) throw new LabError('--tls-cert and --tls-key go together');
    const tls = values['tls-cert']
      ? (() => {
          try {
            return { cert: readFileSync(values['tls-cert']!), key: readFileSync(values['tls-key']!) };
          } catch (e) {
            throw new LabError(`cannot read the TLS certificate or key: ${(e as Error).message}`);
          }
        })()
      : undefined;
    const cls = values.class ? loadClassFile(values.class) : defaultClass(join(stateDir(), 'serve'));
    const labs = offeredLabs(cls);
    const store = new Store(cls.stateDir);
    const joinCode = store.joinCode(cls.joinCode, newJoinCode);
    const say = (t: string) => ctx.info(t);
    const s = ctx.style;
    const image = await prepareImage(ctx, values['base-image'], stderrRenderer(ctx));
    // Loaded only here: the class server (ws and the classroom) is not every command's start-up cost.
    const [{ Classroom }, { startClassServer }] = await Promise.all([import('../../serve/classroom.js'), import('../../serve/server.js')]);
    const classroom = new Classroom({ runtime: ctx.runtime, config: cls, labs, image, store, version: VERSION });
    const recovered = await classroom.recover();
    const server = await startClassServer({
      host,
      port,
      ...(tls ? { tls } : {}),
      classroom,
      store,
      ...(joinCode ? { joinCode } : {}),
      ...(cls.publicUrl ? { publicUrl: cls.publicUrl } : {}),
      trustProxy: !!values['trust-proxy'],
    });
    try {
      say(s.bold(`${cls.title}: ${labs.length} lab${labs.length === 1 ? '' : 's'} on ${server.url}`));
      say(`Instructor (keep it secret): ${s.cyan(`${server.url}t/${store.teacherSecret}`)}`);
      if (joinCode) say(`Students: open ${s.cyan(server.url)} and type the code ${s.bold(joinCode)} and their name`);
      if (cls.roster.length) {
        const rows = cls.roster.map((r) => ({ ...r, link: `${server.url}j/${store.linkSecret(r.id)}` }));
        say(`Personal links for the ${rows.length} students of the roster: ${store.writeLinks(rows)}`);
      }
      say(
        s.dim(
          `State: ${cls.stateDir}; at most ${cls.limits.runningLabs} labs at once, idle labs stop after ${Math.round(cls.limits.idleMs / 60_000)} min`,
        ),
      );
      if (recovered.reattached || recovered.removed)
        say(
          `After the restart: ${recovered.reattached} running lab${recovered.reattached === 1 ? '' : 's'} reattached, ${recovered.removed} removed`,
        );
      if (!isLoopback(host) && !tls && !cls.publicUrl?.startsWith('https:'))
        say(
          s.yellow(
            'warning: no TLS: on a network, links and cookies travel in clear; give --tls-cert/--tls-key or put a reverse proxy with TLS in front (docs/classroom.md)',
          ),
        );
      if (isLoopback(host)) say(s.dim('Only this machine can reach it: --host 0.0.0.0 lets a class in (with TLS, see docs/classroom.md).'));
      say(s.dim('Ctrl-C stops the server; running labs keep running and the next `lab serve` reattaches them.'));
      await new Promise<void>((resolve) => {
        if (ctx.signal.aborted) resolve();
        ctx.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    } finally {
      const running = await classroom.close();
      await server.close();
      if (running)
        say(
          `${running} lab${running === 1 ? ' keeps' : 's keep'} running for the next \`lab serve\` (the dashboard's "Stop every lab" removes ${running === 1 ? 'it' : 'them'})`,
        );
    }
    return 0;
  },
});
