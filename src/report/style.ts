// Colour only for a terminal that wants it: never with NO_COLOR, --no-color, or when the stream is not a TTY.
export interface Style {
  enabled: boolean;
  green(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

export function makeStyle(enabled: boolean): Style {
  const wrap = (open: number, close: number) => (s: string) => (enabled ? `\u001b[${open}m${s}\u001b[${close}m` : s);
  return {
    enabled,
    green: wrap(32, 39),
    red: wrap(31, 39),
    yellow: wrap(33, 39),
    cyan: wrap(36, 39),
    dim: wrap(2, 22),
    bold: wrap(1, 22),
  };
}

export function colorWanted(stream: NodeJS.WriteStream, noColorFlag: boolean): boolean {
  return !noColorFlag && !('NO_COLOR' in process.env && process.env.NO_COLOR !== '') && !!stream.isTTY && process.env.TERM !== 'dumb';
}
