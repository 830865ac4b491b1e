// A class: which labs are offered, how students join, the limits of the host, and where state is kept. A YAML
// file validated like a lab file (one zod schema, every problem with file:line, unknown keys are errors, a
// generated JSON Schema for editors), or the defaults `lab serve` alone uses: every lab, a join code.
//   # yaml-language-server: $schema=../schema/class.schema.json
//   title: Networks 101, week 3
//   labs: [1, 2]                      # numbers or slugs; default: every lab
//   join:
//     roster: roster.txt              # one student id per line (`id, name` too), or a list here
//     code: true                      # a join code (true: one is made up; or give it); students type it and a name
//   limits:
//     runningLabs: 30                 # labs running at once on this host; more wait in a queue
//     idle: 30m                       # a lab nobody typed in or clicked for this long is stopped ...
//     idleWarning: 5m                 # ... after a warning this long before
//   state: ./class-state              # relative to this file
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { LabError, LabFileError, type Problem } from '../errors.js';
import { STUDENT_ID, STUDENT_ID_RULE } from '../identity.js';
import { readLimitedText, readYaml, schemaProblems, sortProblems } from '../lab/load.js';
import { parseDuration } from '../lab/duration.js';
import { DURATION_PATTERN } from '../lab/schema.js';

const MAX_CLASS_BYTES = 256 * 1024;
const MAX_ROSTER_BYTES = 1024 * 1024;
/** Join codes students type: no 0/O, 1/I/L. */
const JOIN_CODE = /^[A-HJKMNP-Z2-9]{6,12}$/;

const Duration = z.string().regex(DURATION_PATTERN, 'a duration such as 30m or 90s');

const RosterEntry = z.union([
  z.string().regex(STUDENT_ID, `a student id: ${STUDENT_ID_RULE}`),
  z.strictObject({
    id: z.string().regex(STUDENT_ID, `a student id: ${STUDENT_ID_RULE}`),
    name: z.string().min(1).max(80).optional(),
  }),
]);

const ClassSchema = z
  .strictObject({
    $schema: z.string().optional(),
    title: z.string().min(1).max(120).optional().describe('Shown on every page.'),
    labs: z
      .array(z.union([z.number().int().min(1).max(999), z.string().regex(/^[a-z][a-z0-9-]{0,63}$/)]))
      .min(1)
      .optional()
      .describe('The labs offered, by number or slug, in this order. Default: every lab of this tcplab.'),
    join: z
      .strictObject({
        roster: z
          .union([z.string().min(1).max(4096), z.array(RosterEntry).max(2000)])
          .optional()
          .describe('Students who get a personal link: a file (one id per line, or "id, name"), or a list here.'),
        code: z
          .union([z.boolean(), z.string().regex(JOIN_CODE, '6 to 12 of A-Z and 2-9, without 0, O, 1, I and L')])
          .optional()
          .describe('A join code students type with their name: true makes one up, or give it. Off: roster only.'),
      })
      .optional(),
    limits: z
      .strictObject({
        runningLabs: z.number().int().min(1).max(500).optional().describe('Labs running at once; more wait in a queue. Default 30.'),
        idle: Duration.optional().describe('Stop a lab nobody used for this long (no key typed, nothing clicked). Default 30m.'),
        idleWarning: Duration.optional().describe('Warn the student this long before. Default 5m.'),
        startsAtOnce: z
          .number()
          .int()
          .min(1)
          .max(64)
          .optional()
          .describe('Labs being built at the same moment (a whole class pressing Start). Default 6.'),
      })
      .optional(),
    state: z
      .string()
      .min(1)
      .max(4096)
      .optional()
      .describe('Where progress, grades and sessions are kept. Default: class-state beside this file.'),
    publicUrl: z
      .string()
      .regex(/^https?:\/\/[^/\s]+\/?$/, 'an origin such as https://lab.example.edu')
      .optional()
      .describe(
        'The address students use, when a reverse proxy stands in front: links are printed with it, and browsers must come from it.',
      ),
  })
  .describe('A tcplab class: lab serve --class FILE.');

export interface RosterStudent {
  id: string;
  name: string;
}

/** A class, resolved: what the server runs with. */
export interface ClassConfig {
  title: string;
  /** Lab numbers or slugs as given; undefined: every lab. */
  labs?: (number | string)[];
  roster: RosterStudent[];
  /** undefined: no join code (roster only); 'generate': make one up and keep it in the state. */
  joinCode?: string | 'generate';
  limits: { runningLabs: number; idleMs: number; idleWarningMs: number; startsAtOnce: number };
  stateDir: string;
  publicUrl?: string;
  /** The file it came from, for messages. */
  file?: string;
}

const DEFAULT_LIMITS = { runningLabs: 30, idleMs: 30 * 60_000, idleWarningMs: 5 * 60_000, startsAtOnce: 6 } as const;

/** `lab serve` without --class: every lab, a join code, state in the given folder. */
export function defaultClass(stateDir: string): ClassConfig {
  return { title: 'tcplab class', roster: [], joinCode: 'generate', limits: { ...DEFAULT_LIMITS }, stateDir };
}

export function loadClassFile(file: string): ClassConfig {
  const text = readLimitedText(file, MAX_CLASS_BYTES, 'a class file');
  if (typeof text !== 'string')
    throw text.missing
      ? new LabError(`no class file at ${file}`, 'give the path to a class.yaml (see docs/classroom.md)')
      : new LabFileError(file, [text.problem]);
  return parseClass(text, file);
}

export function parseClass(text: string, file = '<class>'): ClassConfig {
  const read = readYaml(text, 'a class file is a mapping with labs, join, limits and state');
  if (!read.doc) throw new LabFileError(file, read.problems);
  const parsed = ClassSchema.safeParse(read.doc.data);
  if (!parsed.success) throw new LabFileError(file, sortProblems(schemaProblems(parsed.error.issues, read.doc)));
  const d = parsed.data;
  const problems: Problem[] = [];
  const at = (path: (string | number)[], message: string) => problems.push(read.doc!.locate({ path, message }));
  const base = dirname(resolve(file));
  const limits = {
    runningLabs: d.limits?.runningLabs ?? DEFAULT_LIMITS.runningLabs,
    idleMs: d.limits?.idle ? parseDuration(d.limits.idle) : DEFAULT_LIMITS.idleMs,
    idleWarningMs: d.limits?.idleWarning ? parseDuration(d.limits.idleWarning) : DEFAULT_LIMITS.idleWarningMs,
    startsAtOnce: d.limits?.startsAtOnce ?? DEFAULT_LIMITS.startsAtOnce,
  };
  if (limits.idleMs < 60_000) at(['limits', 'idle'], 'at least 1m: a student reading a step must not lose the lab');
  if (limits.idleWarningMs >= limits.idleMs) at(['limits', 'idleWarning'], 'must be shorter than limits.idle');
  let roster: RosterStudent[] = [];
  const given = d.join?.roster;
  if (typeof given === 'string') {
    const path = isAbsolute(given) ? given : join(base, given);
    const r = readRoster(path);
    if ('problem' in r) at(['join', 'roster'], r.problem);
    else roster = r.students;
  } else if (given) roster = given.map((e) => (typeof e === 'string' ? { id: e, name: e } : { id: e.id, name: e.name ?? e.id }));
  const seen = new Set<string>();
  for (const s of roster) {
    if (seen.has(s.id)) at(['join', 'roster'], `student ${s.id} is on the roster twice`);
    seen.add(s.id);
  }
  const code = d.join?.code;
  const joinCode =
    code === undefined ? (roster.length ? undefined : 'generate') : code === false ? undefined : code === true ? 'generate' : code;
  if (!roster.length && !joinCode) at(['join'], 'nobody could join: give a roster, or a join code (code: true)');
  if (problems.length) throw new LabFileError(file, sortProblems(problems));
  return {
    title: d.title ?? 'tcplab class',
    ...(d.labs ? { labs: d.labs } : {}),
    roster,
    ...(joinCode ? { joinCode } : {}),
    limits,
    stateDir: d.state ? (isAbsolute(d.state) ? d.state : join(base, d.state)) : join(base, 'class-state'),
    ...(d.publicUrl ? { publicUrl: d.publicUrl.replace(/\/$/, '') } : {}),
    file,
  };
}

/** A roster file: one student a line, `id` or `id, name` (a CSV export of two columns reads the same); blank
 *  lines and lines starting with # are skipped; a first line `id,name` is a header. */
export function parseRoster(text: string): { students: RosterStudent[] } | { problem: string } {
  const students: RosterStudent[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const comma = line.indexOf(',');
    const unquote = (x: string) =>
      x
        .trim()
        .replace(/^"(.*)"$/, '$1')
        .replace(/""/g, '"');
    const id = unquote(comma < 0 ? line : line.slice(0, comma));
    if (i === 0 && /^(id|student)$/i.test(id)) continue;
    if (!STUDENT_ID.test(id))
      return { problem: `line ${i + 1} of the roster: '${id.slice(0, 40)}' is not a student id (${STUDENT_ID_RULE})` };
    const name = comma < 0 ? '' : unquote(line.slice(comma + 1));
    students.push({ id, name: name ? name.slice(0, 80) : id });
  }
  return { students };
}

function readRoster(path: string): { students: RosterStudent[] } | { problem: string } {
  const text = readLimitedText(path, MAX_ROSTER_BYTES, 'a roster');
  if (typeof text !== 'string') return { problem: `the roster ${path}: ${text.problem.message}` };
  return parseRoster(text);
}

export function classJsonSchemaText(): string {
  const schema = z.toJSONSchema(ClassSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return JSON.stringify({ ...schema, title: 'tcplab class file' }, null, 2) + '\n';
}
