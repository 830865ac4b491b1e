// Text from a submission or a command (a student's file names and keys, what their lines printed, what a check
// saw) is shown to instructors in terminals, spreadsheets, CI pages and graders' web pages. None of them may
// receive a control character: ESC starts terminal sequences (colours, cursor moves, an OSC title change or a
// clipboard write), CR overwrites a line, NUL cuts a C string, bidirectional overrides reorder what is read.
// Each is shown escaped instead, as \x1b or \u202e, so the text stays readable and nothing is lost silently.

/**
 * C0 controls but tab and newline, DEL, C1 controls, bidirectional and line/paragraph separators, the BOM,
 * the two non-characters XML refuses, and lone surrogates (not valid in XML or UTF-8).
 */
const UNSAFE =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The text with every unsafe character shown escaped: "\x1b]0;title\x07" for ESC ] 0 ; title BEL. */
export function printable(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Every string inside a value (a result, a results.json document), made printable; the rest as it was. */
export function printableDeep<T>(value: T): T {
  if (typeof value === 'string') return printable(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => printableDeep(v)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[printable(k)] = printableDeep(v);
    return out as T;
  }
  return value;
}

/** Does the text hold a character printable() would escape? For tests and assertions. */
export function hasUnsafe(text: string): boolean {
  return new RegExp(UNSAFE.source).test(text);
}
