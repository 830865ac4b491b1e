// Shell-style quoting of an argv. Commands always run as argv arrays; this is for showing a command to a person
// (the walk, `lab plan`) and for the fixed, planner-made setup lines that a node runs with `sh -c`.
export function shellQuote(argv: string[]): string {
  return argv
    .map((a) =>
      /^[A-Za-z0-9_./:=,@%+-]+$/.test(a)
        ? a
        : // An apostrophe in words ("the server's ping") reads better in double quotes, where nothing else is special.
          a.includes("'") && !/[$`\\"!]/.test(a)
          ? `"${a}"`
          : `'${a.replace(/'/g, `'\\''`)}'`,
    )
    .join(' ');
}

/**
 * A command that reads `stdin`, as a person would type it at bash: `nc HOST 5555 <<< hello` when the input is
 * one line (a here-string adds the line's newline), else `printf 'a\nb' | nc HOST 5555`. Not JSON's
 * `<<< "hello\n"`: typed into bash, that sends a backslash and an n.
 */
export function withStdin(command: string, stdin: string): string {
  const line = stdin.endsWith('\n') ? stdin.slice(0, -1) : undefined;
  if (line !== undefined && !line.includes('\n')) return `${command} <<< ${shellQuote([line])}`;
  const format = stdin.replace(/\\/g, '\\\\').replace(/%/g, '%%').replace(/\n/g, '\\n');
  return `printf ${shellQuote([format])} | ${command}`;
}
