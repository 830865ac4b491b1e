// Entry point: parse the command line, run one command, and turn every failure into a clear message and an
// exit code. User errors (LabError) print what to do next; anything else is a bug and prints its stack.
import { isLabError } from '../errors.js';
import { makeContext, cleanupLive, type Context } from './context.js';
import { COMMANDS } from './commands/index.js';
import type { Command } from './command.js';
import { parseCommandLine } from './parse.js';
import { reflow, terminalWidth, wrapText } from './wrap.js';
import { VERSION } from '../version.js';

function usage(): string {
  return [
    `tcplab ${VERSION}: watch TCP connection states happen in real containers`,
    '',
    'usage: lab <command> [options]',
    '',
    ...COMMANDS.map((c) => `  lab ${c.usage}\n      ${c.summary}`),
    '',
    'Global options: --json (machine-readable stdout), --no-color, --help. `lab help <command>`: its help.',
    'lab start, grade, test, doctor and image: --base-image IMAGE builds the lab image on another Debian-based image.',
    'Environment: DOCKER_HOST, TCPLAB_BASE_IMAGE, NO_COLOR, DEBUG=lab* (developer logs).',
  ].join('\n');
}

/** A command's help, its paragraphs fitted to the terminal. */
function commandHelp(command: Command): string {
  return wrapText(`usage: lab ${command.usage}\n\n${reflow(command.help ?? command.summary)}\n`, terminalWidth(process.stdout));
}

export async function main(argv: string[]): Promise<number> {
  const line = parseCommandLine(argv);
  switch (line.kind) {
    case 'usage':
      process.stdout.write(wrapText(usage(), terminalWidth(process.stdout)) + '\n');
      return line.exitCode;
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case 'help':
      process.stdout.write(commandHelp(line.command));
      return 0;
    case 'error':
      process.stderr.write(`${line.message}\n${line.command ? `usage: lab ${line.command.usage}\n` : `\n${usage()}\n`}`);
      return 2;
  }
  const { command, values, positionals } = line;
  // --no-color means what NO_COLOR means, for tcplab and for the libraries it draws with (listr2, inquirer).
  if (values['no-color']) process.env.NO_COLOR = '1';
  const ctx = makeContext({ json: !!values.json, noColor: !!values['no-color'] });
  return runCommand(ctx, command, values, positionals);
}

async function runCommand(ctx: Context, command: Command, values: Record<string, unknown>, positionals: string[]): Promise<number> {
  try {
    return await command.run(ctx, values, positionals);
  } catch (e) {
    await cleanupLive(ctx.runtime, ctx.live);
    if (isLabError(e)) {
      const width = terminalWidth(ctx.err);
      ctx.err.write(wrapText(`${ctx.errStyle.red('error:')} ${e.message}`, width) + '\n');
      if (e.hint) ctx.err.write(wrapText(`${ctx.errStyle.dim('hint:')} ${e.hint}`, width) + '\n');
      return e.exitCode;
    }
    ctx.err.write(
      `${ctx.errStyle.red('internal error')} (a bug in tcplab; please report it with this output):\n${(e as Error).stack ?? String(e)}\n`,
    );
    return 70;
  }
}
