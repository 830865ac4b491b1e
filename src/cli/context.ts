// What every command gets: output streams, style, the runtime, and the interrupt plumbing that makes sure
// whatever a command created is removed on Ctrl-C, SIGTERM or a crash.
import createDebug from 'debug';
import { DockerRuntime } from '../runtime/docker.js';
import type { Runtime } from '../runtime/runtime.js';
import { removeInstance } from '../engine/teardown.js';
import { colorWanted, makeStyle, type Style } from '../report/style.js';
import { terminalWidth, wrapText } from './wrap.js';
import { labCommand } from './invocation.js';

const log = createDebug('lab');

export interface Context {
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
  style: Style;
  errStyle: Style;
  json: boolean;
  runtime: Runtime;
  signal: AbortSignal;
  /** Instances this process created and has not removed yet. */
  live: Set<string>;
  print(text?: string): void;
  info(text: string): void;
  /** The terminal's width when stdout is a terminal (and not --json): what text for people is wrapped to. */
  readonly width: number | undefined;
  /** print() for text meant for people: wrapped at spaces to the terminal's width, never mid-word. */
  say(text?: string): void;
}

export function makeContext(opts: { json: boolean; noColor: boolean; runtime?: Runtime }): Context {
  const controller = new AbortController();
  const live = new Set<string>();
  const runtime = opts.runtime ?? new DockerRuntime();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1) {
      // Only a command that created a lab removes one; a watcher (lab ui, lab status --watch) just stops.
      process.stderr.write(
        wrapText(
          live.size
            ? `\n${sig}: stopping and removing the lab (press Ctrl-C again to leave the rest to \`${labCommand()} stop ${[...live].join(' ')}\`)`
            : `\n${sig}: stopping`,
          terminalWidth(process.stderr),
        ) + '\n',
      );
      controller.abort(sig);
      // Whatever the command is doing, remove what it created even if it does not get there itself; and if
      // the command never returns (a call that ignores the abort), still exit with the signal's code.
      process.exitCode = sig === 'SIGINT' ? 130 : 143;
      cleanupLive(runtime, live).finally(() => {
        setTimeout(() => process.exit(sig === 'SIGINT' ? 130 : 143), 15_000).unref();
      });
    } else if (sig === 'SIGINT') {
      // Only a person pressing Ctrl-C again means "leave now"; a closing terminal sends SIGHUP more than once
      // (the kernel, then the shell), and that must not cut the cleanup short.
      // Only this process's labs: `lab clean` would remove every lab on the engine, other students' too.
      process.stderr.write(
        wrapText(
          live.size
            ? `${sig} again: leaving now; \`${labCommand()} stop ${[...live].join(' ')}\` removes what is left`
            : `${sig} again: leaving now`,
          terminalWidth(process.stderr),
        ) + '\n',
      );
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
  };
  // A reader that goes away (lab start | head) must not crash us before cleanup: stop writing, abort, clean up.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'EIO') throw e;
      stream.write = (() => true) as typeof stream.write;
      if (!controller.signal.aborted) controller.abort('SIGPIPE');
    });
  }
  // A crash (a bug) still removes what this process created before it exits.
  process.on('uncaughtException', (e) => {
    process.stderr.write(`internal error (a bug in tcplab; please report it):\n${e.stack ?? String(e)}\n`);
    cleanupLive(runtime, live).finally(() => process.exit(70));
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  const style = makeStyle(colorWanted(process.stdout, opts.noColor));
  const errStyle = makeStyle(colorWanted(process.stderr, opts.noColor));
  return {
    out: process.stdout,
    err: process.stderr,
    style,
    errStyle,
    json: opts.json,
    runtime,
    signal: controller.signal,
    live,
    print(text = '') {
      process.stdout.write(text + '\n');
    },
    // With --json, stdout is for the machine; everything for people goes to stderr.
    info(text: string) {
      (opts.json ? process.stderr : process.stdout).write(text + '\n');
    },
    get width() {
      return opts.json ? undefined : terminalWidth(process.stdout);
    },
    say(text = '') {
      process.stdout.write(wrapText(text, this.width) + '\n');
    },
  };
}

export async function cleanupLive(runtime: Runtime, live: Set<string>): Promise<void> {
  await Promise.all(
    [...live].map(async (id) => {
      try {
        await removeInstance(runtime, id);
        live.delete(id);
      } catch (e) {
        log('cleanup of %s failed: %s', id, (e as Error).message);
      }
    }),
  );
}
