// Shell-style quoting of an argv. Commands always run as argv arrays; this is for showing a command to a person
// (the walk, `lab plan`) and for the fixed, planner-made setup lines that a node runs with `sh -c`.
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_./:=,@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
