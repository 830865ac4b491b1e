// Entry point: parse the command line, run one command, and turn every failure into a clear message and an
// exit code. User errors (LabError) print what to do next; anything else is a bug and prints its stack.
import { parseArgs } from 'node:util';
import { isLabError } from '../errors.js';
import { makeContext, cleanupLive, type Context } from './context.js';
import { COMMANDS } from './commands/index.js';
import { GLOBAL_OPTIONS, type Command } from './command.js';
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
    'Environment: DOCKER_HOST, TCPLAB_BASE_IMAGE, NO_COLOR, DEBUG=lab* (developer logs).',
  ].join('\n');
}

/** A command's help, its paragraphs fitted to the terminal. */
function commandHelp(command: Command): string {
  return wrapText(`usage: lab ${command.usage}\n\n${reflow(command.help ?? command.summary)}\n`, terminalWidth(process.stdout));
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  // `lab help start` means `lab start --help`.
  if (name === 'help' && rest.length) {
    const about = COMMANDS.find((c) => c.name === rest[0]);
    if (!about) {
      process.stderr.write(`lab help: no command '${rest[0]}'\n\n${usage()}\n`);
      return 2;
    }
    process.stdout.write(commandHelp(about));
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(wrapText(usage(), terminalWidth(process.stdout)) + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`lab: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...GLOBAL_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    }) as typeof parsed;
  } catch (e) {
    process.stderr.write(`lab ${name}: ${(e as Error).message}\nusage: lab ${command.usage}\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  // --no-color means what NO_COLOR means, for tcplab and for the libraries it draws with (listr2, inquirer).
  if (parsed.values['no-color']) process.env.NO_COLOR = '1';
  const ctx = makeContext({ json: !!parsed.values.json, noColor: !!parsed.values['no-color'] });
  return runCommand(ctx, command, parsed.values, parsed.positionals);
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
