// A command line, read against the command table: which command, its option values and positionals, or why it
// cannot be read. Pure (nothing is printed or run), so main.ts and the docs test (every `lab ...` line in
// README.md and docs/ must parse) read command lines the same way.
import { parseArgs } from 'node:util';
import { COMMANDS } from './commands/index.js';
import { GLOBAL_OPTIONS, type Command } from './command.js';

type ParsedLine =
  /** `lab`, `lab help`, `lab --help`: the list of commands (exit 2 for a bare `lab`, which asked for nothing). */
  | { kind: 'usage'; exitCode: 0 | 2 }
  | { kind: 'version' }
  /** `lab help start`, `lab start --help`. */
  | { kind: 'help'; command: Command }
  | { kind: 'run'; command: Command; values: Record<string, unknown>; positionals: string[] }
  /** Not a command line tcplab reads: `message` says why; `command` when the command itself is known (its usage
   *  follows the message; otherwise the list of commands does). */
  | { kind: 'error'; message: string; command?: Command };

/** The options a command accepts: its own and the global ones. */
export function optionsOf(command: Command): Command['options'] {
  return { ...GLOBAL_OPTIONS, ...command.options };
}

export function parseCommandLine(argv: string[]): ParsedLine {
  const [name, ...rest] = argv;
  // `lab help start` means `lab start --help`.
  if (name === 'help' && rest.length) {
    const about = COMMANDS.find((c) => c.name === rest[0]);
    return about ? { kind: 'help', command: about } : { kind: 'error', message: `lab help: no command '${rest[0]}'` };
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') return { kind: 'usage', exitCode: name ? 0 : 2 };
  if (name === '--version' || name === '-v') return { kind: 'version' };
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) return { kind: 'error', message: `lab: unknown command '${name}'` };
  const mistake = optionMistake(command, rest);
  if (mistake) return { kind: 'error', message: `lab ${name}: ${mistake}`, command };
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: optionsOf(command), allowPositionals: true, strict: true }) as typeof parsed;
  } catch (e) {
    // optionMistake finds what strict parsing refuses; this is only in case Node refuses more one day.
    return { kind: 'error', message: `lab ${name}: ${(e as Error).message.split('. ')[0]}`, command };
  }
  if (parsed.values.help) return { kind: 'help', command };
  return { kind: 'run', command, ...parsed };
}

/**
 * What is wrong with the options of a command line, in tcplab's words (Node's parser speaks of positionals and
 * `--`): an option the command does not have (and which commands have it), a value missing, a value given to a
 * switch. Undefined when the options are right.
 */
function optionMistake(command: Command, args: string[]): string | undefined {
  const options = optionsOf(command);
  const { tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const spec = options[t.name];
    if (!spec) {
      const others = COMMANDS.filter((c) => c !== command && Object.hasOwn(c.options, t.name)).map((c) => c.name);
      const elsewhere = t.rawName.startsWith('--') && others.length ? ` (${t.rawName} goes with lab ${others.join(', ')})` : '';
      return `unknown option '${t.rawName}'${elsewhere}`;
    }
    const shown = t.rawName;
    if (spec.type === 'boolean' && t.inlineValue) return `${shown} takes no value (got '${shown}=${t.value ?? ''}')`;
    if (spec.type === 'string') {
      if (t.value === undefined) return `${shown} needs a value`;
      if (!t.inlineValue && t.value.startsWith('-') && t.value !== '-')
        return `${shown} needs a value, and got the option '${t.value}' (if that is the value, write ${shown}=${t.value})`;
    }
  }
  return undefined;
}
