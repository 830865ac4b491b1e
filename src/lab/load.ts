// Staged loading: bytes -> YAML document (with positions) -> schema -> rules. Every problem is reported with
// file:line, and all of them at once, so an instructor fixes a file in one pass.
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isNode, isScalar, type Document } from 'yaml';
import type { z } from 'zod';
import { LabFileError, LabError, type Problem } from '../errors.js';
import { LabSchema, type Lab } from './schema.js';
import { checkRules, checkTemplates, checkWarnings, type RuleProblem } from './rules.js';

const MAX_LAB_BYTES = 256 * 1024;
/** Keys whose value is a duration (500ms, 5s, 2m). */
const DURATION_KEYS = new Set(['for', 'within', 'timeout', 'last']);

export interface LoadedLab {
  file: string;
  lab: Lab;
}

export function loadLabFile(file: string): LoadedLab {
  const text = readLabText(file);
  if (typeof text !== 'string')
    throw text.missing
      ? new LabError(`no lab file at ${file}`, 'give a lab number, a slug from `lab list`, or a path to a .yaml file')
      : new LabFileError(file, [text.problem]);
  return { file, lab: parseLab(text, file) };
}

/** A lab file's text, or why it cannot be read. Only regular files: /dev/zero, a FIFO or a symlink to one
 *  would otherwise be read forever. */
export function readLabText(file: string): string | { missing: boolean; problem: Problem } {
  return readLimitedText(file, MAX_LAB_BYTES, 'a lab file');
}

/** A YAML file's text (a lab, a submission), at most maxBytes, from a regular file only, in UTF-8; or why not.
 *  noSymlink: the path itself must not be a symbolic link (a student's file: a link could show the grader a
 *  secret of its host, or a classmate's file, as theirs). */
export function readLimitedText(
  file: string,
  maxBytes: number,
  what: string,
  o: { noSymlink?: boolean } = {},
): string | { missing: boolean; problem: Problem } {
  const problem = (message: string, line = 1, column = 1) => ({ line, column, path: '', message });
  const why = (e: unknown) => {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'a folder, not a file'
          : (code ?? (e as Error).message);
  };
  let st: ReturnType<typeof statSync>;
  try {
    if (o.noSymlink && lstatSync(file).isSymbolicLink())
      return { missing: false, problem: problem(`a symbolic link, not a file: ${what} is handed in as the file itself`) };
    st = statSync(file);
  } catch (e) {
    return { missing: true, problem: problem(`cannot read: ${why(e)}`) };
  }
  if (!st.isFile()) return { missing: false, problem: problem('not a regular file') };
  if (st.size > maxBytes)
    return { missing: false, problem: problem(`the file has ${st.size} bytes; ${what} may have at most ${maxBytes}`) };
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    return { missing: false, problem: problem(`cannot read: ${why(e)}`) };
  }
  const text = bytes.toString('utf8');
  // Bytes that are not UTF-8 would become U+FFFD, and a command would run with other characters than written.
  if (text.includes('\ufffd') && !Buffer.from(text, 'utf8').equals(bytes)) {
    const again = Buffer.from(text, 'utf8');
    let at = 0;
    while (at < bytes.length && bytes[at] === again[at]) at++;
    const before = bytes.subarray(0, at);
    const line = before.filter((b) => b === 0x0a).length + 1;
    const column = before.subarray(before.lastIndexOf(0x0a) + 1).toString('utf8').length + 1;
    return {
      missing: false,
      problem: problem(`not UTF-8 text (byte 0x${bytes[at]!.toString(16)} here): ${what} is saved as UTF-8`, line, column),
    };
  }
  return text;
}

export function parseLab(text: string, file = '<lab>'): Lab {
  const problems = validateLabText(text);
  if (problems.problems.length > 0 || !problems.lab) throw new LabFileError(file, problems.problems);
  return problems.lab;
}

interface Validation {
  lab?: Lab;
  problems: Problem[];
  /** Worth saying, not fatal: a step that checks nothing. */
  warnings: Problem[];
}

export function validateLabText(text: string): Validation {
  const read = readYaml(text, 'a lab file is a mapping with id, slug, title, intro and steps');
  if (!read.doc) return { problems: read.problems, warnings: [] };
  const { data, locate } = read.doc;
  // Templates are checked on the raw document, so their problems come out with the schema's in one run.
  const templates = checkTemplates(data).map(locate);
  const parsed = LabSchema.safeParse(data);
  if (!parsed.success) {
    const schema = schemaProblems(parsed.error.issues, read.doc);
    const same = new Set(schema.map((p) => p.path));
    return { problems: sortProblems([...schema, ...templates.filter((t) => !same.has(t.path))]), warnings: [] };
  }
  const problems = sortProblems([...templates, ...checkRules(parsed.data).map(locate)]);
  const warnings = checkWarnings(parsed.data).map(locate);
  return problems.length ? { problems, warnings } : { lab: parsed.data, problems, warnings };
}

/** A parsed YAML document that can say where each path of it is. */
interface YamlDoc {
  data: Record<string, unknown>;
  positionOf(path: readonly PropertyKey[]): { line: number; column: number };
  /** A problem found at a path of the data, with its line and column. */
  locate(r: RuleProblem): Problem;
}

/**
 * Text -> a YAML mapping whose paths map back to lines, or the problems that stop it: not YAML, anchors or
 * aliases, too deep, or not a mapping. Shared by lab files and submissions.
 */
export function readYaml(text: string, notAMapping: string): { doc?: YamlDoc; problems: Problem[] } {
  const lineCounter = new LineCounter();
  let doc: Document;
  try {
    // Aliases are refused outright: a lab has no use for them, and they are how "billion laughs" files grow.
    // logLevel error: the library's warnings (a key that is a list, stringified) would reach stderr as Node
    // warnings; such a key is refused by the schema anyway, with its line.
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  } catch (e) {
    return { problems: [{ line: 1, column: 1, path: '', message: `not readable as YAML: ${(e as Error).message}` }] };
  }
  const at = (offset: number | undefined) => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { line: pos.line, column: pos.col };
  };
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((e) => ({ ...at(e.pos[0]), path: '', message: readable(e.message.split('\n')[0] ?? e.message, e.code) })),
    };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 0 });
  } catch (e) {
    return { problems: [{ line: 1, column: 1, path: '', message: readable((e as Error).message) }] };
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return { problems: [{ line: 1, column: 1, path: '', message: notAMapping }] };
  }
  const positionOf = (path: readonly PropertyKey[]) => {
    // Walk up until a node with a range exists (a missing key is reported at its parent). A key of a mapping
    // is reported where the key is written, not where its value starts (a nested mapping's is the next line).
    for (let n = path.length; n >= 0; n--) {
      const last = path[n - 1];
      if (n > 0 && typeof last === 'string') {
        const parent = doc.getIn(path.slice(0, n - 1) as (string | number)[], true);
        const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === last) : undefined;
        if (pair && isScalar(pair.key) && pair.key.range) return at(pair.key.range[0]);
      }
      const node = doc.getIn(path.slice(0, n) as (string | number)[], true);
      if (isNode(node) && node.range) return at(node.range[0]);
    }
    return { line: 1, column: 1 };
  };
  const locate = (r: RuleProblem): Problem => ({ ...positionOf(r.path), path: pathText(r.path), message: r.message });
  return { doc: { data: data as Record<string, unknown>, positionOf, locate }, problems: [] };
}

/** A schema's issues as problems with file positions. */
export function schemaProblems(issues: z.core.$ZodIssue[], doc: Pick<YamlDoc, 'positionOf'>): Problem[] {
  return issues.map((i) => issueToProblem(i, doc.positionOf));
}

export function sortProblems(ps: Problem[]): Problem[] {
  return ps.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** The YAML parser's words for hostile input, in a lab author's words. */
function readable(message: string, code?: string): string {
  // `summary: Watch it: the state`, `cmd: echo a: b`: a second ': ' on the line starts a mapping in the value.
  if (code === 'BLOCK_AS_IMPLICIT_KEY')
    return `a value with ': ' (a colon and a space) in it must be quoted, e.g. summary: "Watch it: the state" (YAML: ${message})`;
  if (/call stack/i.test(message)) return 'nested too deeply (a lab file needs only a few levels)';
  if (/multiple documents/i.test(message)) return 'one YAML document only: nothing after a second ---';
  if (/alias/i.test(message)) return `YAML anchors and aliases (&name, *name) are not allowed in lab files (${message})`;
  return message;
}

function issueToProblem(issue: z.core.$ZodIssue, positionOf: (p: readonly PropertyKey[]) => { line: number; column: number }): Problem {
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    // "Invalid input" says nothing: report the branch that came closest (the one that got past the type check).
    const branches = issue.errors.filter((b) => b.length > 0);
    const best = branches.find((b) => b[0]!.code !== 'invalid_type') ?? branches[0];
    if (best) return issueToProblem({ ...best[0]!, path: [...issue.path, ...best[0]!.path] } as z.core.$ZodIssue, positionOf);
  }
  let path = issue.path;
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    // Point at the unknown key itself.
    const key = issue.keys[0];
    if (key !== undefined) path = [...path, key];
    message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  } else if (issue.code === 'invalid_value' && 'values' in issue) {
    message = `must be one of ${issue.values.map((v) => String(v)).join(', ')}`;
  } else if (issue.code === 'invalid_key' && issue.issues[0]) {
    // A record key (a sysctl name) that its pattern refuses: say why, not just "Invalid key in record".
    message = issue.issues[0].message;
  } else if (issue.code === 'invalid_type' && /received undefined/.test(message)) {
    message = `missing (${issue.expected})`;
  } else if (issue.code === 'invalid_type' && issue.expected === 'string' && /received object/.test(message)) {
    // Plain YAML text with ": " in it is read as a mapping: `- A listener: tcplab-sock ...` is {A listener: ...}.
    message = `${message}: text with ": " in it is read as a key and a value; quote it ("...") or write it after >-`;
  } else if (issue.code === 'invalid_type' && issue.expected === 'string' && /received (number|boolean)/.test(message)) {
    // `for: 2` or `run: [nc, -l, 5555]`: YAML reads a bare number as a number, where text is wanted.
    const key = issue.path[issue.path.length - 1];
    const parent = issue.path[issue.path.length - 2];
    if (typeof key === 'string' && DURATION_KEYS.has(key))
      message = `a duration needs its unit: 2s, 500ms or 2m (a bare number is not a duration)`;
    else if (typeof key === 'number' && parent === 'run')
      message = `${message}: every argument of a command is text; quote numbers ("5555")`;
    else message = `${message}: quote it ("...") to make it text`;
  } else if (issue.code === 'invalid_type' && issue.expected === 'array' && issue.path[issue.path.length - 1] === 'run') {
    // `run: nc -l 5555`: a command is an argv list, never a line for a shell.
    message = `${message}: a command is an argv list, [nc, -l, "5555"]; for a shell line, [sh, -c, "..."]`;
  } else if (issue.code === 'too_big' && issue.origin === 'array' && /^Too big/.test(message)) {
    // zod's own words ("Too big: expected array to have <=5 items"); a limit with a message of its own keeps it.
    message = `at most ${String(issue.maximum)} items in this list`;
  }
  return { ...positionOf(path), path: pathText(issue.path), message };
}

function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
}
