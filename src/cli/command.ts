// What a command is: its name, how it is used, its options, and one typed async function. The option values a
// command's run() receives are typed from its own option table, so no command casts what parseArgs returns.
import type { ParseArgsConfig } from 'node:util';
import type { Context } from './context.js';

type OptionTable = NonNullable<ParseArgsConfig['options']>;

/** Options every command takes. */
export const GLOBAL_OPTIONS = {
  json: { type: 'boolean' },
  'no-color': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionTable;

/** The values parseArgs gives for an option table: booleans and strings, each possibly absent. */
type Values<O extends OptionTable> = {
  [K in keyof O]?: O[K] extends { type: 'boolean'; multiple: true }
    ? boolean[]
    : O[K] extends { type: 'string'; multiple: true }
      ? string[]
      : O[K] extends { type: 'boolean' }
        ? boolean
        : string;
};

interface CommandSpec<O extends OptionTable> {
  name: string;
  usage: string;
  summary: string;
  help?: string;
  options: O;
  run(ctx: Context, values: Values<O>, positionals: string[]): Promise<number>;
}

/** A command as the dispatcher holds it: the option table and a run() over what parseArgs returned. */
export interface Command {
  name: string;
  usage: string;
  summary: string;
  help?: string;
  options: OptionTable;
  run(ctx: Context, values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

export function defineCommand<const O extends OptionTable>(spec: CommandSpec<O>): Command {
  // parseArgs was given exactly spec.options (with the global ones), so its values have the types Values<O> says.
  return { ...spec, run: (ctx, values, positionals) => spec.run(ctx, values as Values<O>, positionals) };
}
