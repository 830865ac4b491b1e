// Text for people, fitted to their terminal: lab files hold prose hard-wrapped at about 110 columns, and a
// student's terminal may have 80. The terminal would break such lines anywhere, mid-word included; these
// functions break them at spaces instead, and keep a line's indentation on its continuation lines.
import stripAnsi from 'strip-ansi';

/** Visible width of a string: ANSI colour codes take no room; every other code point one column. */
function visibleWidth(text: string): number {
  return [...stripAnsi(text)].length;
}

/**
 * Prose from a lab file as paragraphs: lines of one paragraph joined with spaces, blank lines kept as paragraph
 * breaks, and lines that start with whitespace, "-" or "$" (lists, commands) kept as lines of their own.
 */
export function reflow(text: string): string {
  const out: string[] = [];
  for (const line of text.trimEnd().split('\n')) {
    const own = line.trim() === '' || /^(\s|-\s|\$\s)/.test(line);
    const prev = out.length ? out[out.length - 1]! : undefined;
    if (!own && prev !== undefined && prev.trim() !== '' && !/^(\s|-\s|\$\s)/.test(prev)) out[out.length - 1] = `${prev} ${line.trim()}`;
    else out.push(own ? line.trimEnd() : line.trim());
  }
  return out.join('\n');
}

/**
 * Where continuation lines start, by default: under the text that follows a leading label ("seen: ",
 * "hint: ", "✗ not met ", "client$ "), so that a wrapped check or command reads as one item; under the first
 * word for prose.
 */
function labelWidth(plain: string): number {
  const m = /^\s*(?:[✓✗] (?:met|not met)(?: now)?\s+|[A-Za-z][A-Za-z ]{0,14}: |[a-z]+\$ |- )/.exec(plain);
  return m ? m[0].length - /^\s*/.exec(plain)![0].length : 0;
}

/** Read as one, never broken across lines: a lab named by its number and what follows it ("Lab 7: A FIN...",
 *  "Lab 7 fin-wait-1", "Lab 7 (fin-wait-1)"), and a short command to type (`npx lab check`). */
const GLUED = /\bLab \d+:? (?=\S)|`[^`\n]{1,40}`/;
/** Stands for a space that must not break a line while a line is wrapped (a private-use character). */
const NO_BREAK = '\uE000';

function glue(line: string): string {
  return line.replace(new RegExp(GLUED.source, 'g'), (m) => m.replace(/ /g, NO_BREAK));
}

function unglue(line: string): string {
  return line.replaceAll(NO_BREAK, ' ');
}

/**
 * Break every line longer than `width` at spaces. A continuation line gets the original line's indentation plus
 * `hang` more spaces (by default, the width of a leading label). A single word wider than the line is left whole
 * on a line of its own (never cut).
 */
export function wrapLine(line: string, width: number, hang?: number): string[] {
  if (visibleWidth(line) <= width) return [line];
  return GLUED.test(line) ? breakLine(glue(line), width, hang).map(unglue) : breakLine(line, width, hang);
}

function breakLine(line: string, width: number, hang?: number): string[] {
  const plain = stripAnsi(line);
  const indent = /^\s*/.exec(plain)![0].length;
  const lead = ' '.repeat(indent);
  const cont = ' '.repeat(Math.min(indent + (hang ?? labelWidth(plain)), Math.floor(width / 2)));
  // Split after the (possibly coloured) leading spaces; words keep their colour codes.
  const body = line.replace(/^(\u001b\[[0-9;]*m)*\s*/, (m) => m.replace(/\s+/g, ''));
  // Words with the spaces before them (a run of spaces that aligns columns is kept within a line).
  const words = [...body.matchAll(/( *)([^ ]+)/g)].map((m) => ({ gap: m[1]!, word: m[2]! }));
  const lines: string[] = [];
  let current = lead;
  let currentWidth = indent;
  let empty = true;
  for (const { gap, word } of words) {
    const w = visibleWidth(word);
    const sep = empty ? '' : gap;
    if (!empty && currentWidth + sep.length + w > width) {
      lines.push(current);
      current = cont;
      currentWidth = cont.length;
      empty = true;
    }
    current += (empty ? '' : gap) + word;
    currentWidth += (empty ? 0 : gap.length) + w;
    empty = false;
  }
  if (!empty) lines.push(current);
  return lines;
}

/** Every line of a text wrapped to `width`; undefined width (not a terminal) leaves the text as it is. */
export function wrapText(text: string, width: number | undefined, hang?: number): string {
  if (!width) return text;
  return text
    .split('\n')
    .flatMap((l) => wrapLine(l, width, hang))
    .join('\n');
}

/** The width to wrap to: the terminal's, when the stream is one. */
export function terminalWidth(stream: NodeJS.WriteStream): number | undefined {
  return stream.isTTY ? stream.columns || 80 : undefined;
}
