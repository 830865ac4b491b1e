// Checkers for the graders' documented result formats (see test/fixtures/formats/README.md). Each returns the
// problems found: a key the format does not document, a documented key of the wrong type, a missing field the
// format needs. Used on tcplab's output and, to keep the checkers honest, on the documented examples.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { XMLParser, XMLValidator } from 'fast-xml-parser';

type Kind = 'number' | 'string' | 'boolean' | 'object' | 'array' | 'strings';

function typeOk(v: unknown, kind: Kind): boolean {
  if (kind === 'array') return Array.isArray(v);
  if (kind === 'strings') return typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
  if (kind === 'object') return typeof v === 'object' && v !== null && !Array.isArray(v);
  return typeof v === kind && (kind !== 'number' || Number.isFinite(v));
}

function fields(doc: unknown, where: string, known: Record<string, Kind>, required: string[] = []): string[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return [`${where}: not an object`];
  const out: string[] = [];
  for (const [k, v] of Object.entries(doc)) {
    if (!(k in known)) out.push(`${where}.${k}: not a documented field`);
    else if (!typeOk(v, known[k]!)) out.push(`${where}.${k}: should be ${known[k]}`);
  }
  for (const k of required) if (!(k in doc)) out.push(`${where}.${k}: missing`);
  return out;
}

const VISIBILITY = ['hidden', 'after_due_date', 'after_published', 'visible'];

export function gradescopeProblems(doc: unknown): string[] {
  const top = {
    score: 'number',
    execution_time: 'number',
    output: 'string',
    output_format: 'string',
    test_output_format: 'string',
    test_name_format: 'string',
    visibility: 'string',
    stdout_visibility: 'string',
    extra_data: 'object',
    tests: 'array',
    leaderboard: 'array',
  } as const;
  const test = {
    score: 'number',
    max_score: 'number',
    status: 'string',
    name: 'string',
    name_format: 'string',
    number: 'string',
    output: 'string',
    output_format: 'string',
    tags: 'strings',
    visibility: 'string',
    extra_data: 'object',
  } as const;
  const d = doc as Record<string, unknown>;
  const out = fields(doc, 'results', top);
  // "score: optional, but required if not on each test case"
  const tests = Array.isArray(d.tests) ? (d.tests as Record<string, unknown>[]) : [];
  if (d.score === undefined && (tests.length === 0 || tests.some((t) => t.score === undefined))) out.push('results.score: missing');
  tests.forEach((t, i) => {
    out.push(...fields(t, `tests[${i}]`, test));
    if (t.status !== undefined && t.status !== 'passed' && t.status !== 'failed') out.push(`tests[${i}].status: passed or failed`);
    if (t.visibility !== undefined && !VISIBILITY.includes(t.visibility as string)) out.push(`tests[${i}].visibility: unknown`);
  });
  for (const k of ['visibility', 'stdout_visibility'])
    if (d[k] !== undefined && !VISIBILITY.includes(d[k] as string)) out.push(`results.${k}: unknown`);
  return out;
}

export function prairieLearnProblems(doc: unknown): string[] {
  const d = doc as Record<string, unknown>;
  const top = {
    gradable: 'boolean',
    score: 'number',
    message: 'string',
    output: 'string',
    images: 'array',
    tests: 'array',
    format_errors: 'strings',
  } as const;
  const test = {
    name: 'string',
    description: 'string',
    points: 'number',
    max_points: 'number',
    message: 'string',
    output: 'string',
    images: 'array',
  } as const;
  const out = fields(doc, 'results', top);
  // "If the submission is gradable, the result only has one mandatory field: score, ... in the range [0.0, 1.0]"
  if (d.gradable !== false) {
    if (typeof d.score !== 'number') out.push('results.score: missing');
    else if (d.score < 0 || d.score > 1) out.push('results.score: outside 0..1');
  }
  ((Array.isArray(d.tests) ? d.tests : []) as unknown[]).forEach((t, i) =>
    out.push(...fields(t, `tests[${i}]`, test, ['name', 'points', 'max_points'])),
  );
  return out;
}

interface JunitCase {
  classname: string;
  name: string;
  failure?: { message?: string; text?: string };
  error?: { message?: string; text?: string };
  skipped?: boolean;
}
interface JunitSuite {
  name: string;
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  properties: Record<string, string>;
  cases: JunitCase[];
}

/** Parse JUnit XML with a real XML parser; throws when it is not well-formed. */
export function parseJunit(xml: string): {
  name: string;
  tests: number;
  failures: number;
  errors: number;
  suites: JunitSuite[];
} {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`not well-formed XML: ${JSON.stringify(valid.err)}`);
  const doc = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    textNodeName: 'text',
    isArray: (name) => ['testsuite', 'testcase', 'property'].includes(name),
  }).parse(xml) as {
    testsuites: { name: string; tests: string; failures?: string; errors?: string; testsuite?: Record<string, unknown>[] };
  };
  const attrs = (o: unknown) => (typeof o === 'object' && o !== null ? (o as Record<string, string>) : o === '' ? {} : { text: String(o) });
  return {
    name: doc.testsuites.name,
    tests: Number(doc.testsuites.tests),
    failures: Number(doc.testsuites.failures ?? 0),
    errors: Number(doc.testsuites.errors ?? 0),
    suites: (doc.testsuites.testsuite ?? []).map((s) => ({
      name: s.name as string,
      tests: Number(s.tests),
      failures: Number(s.failures ?? 0),
      errors: Number(s.errors ?? 0),
      skipped: Number(s.skipped ?? 0),
      properties: Object.fromEntries(
        (((s.properties as { property?: { name: string; value: string }[] }) ?? {}).property ?? []).map((p) => [p.name, p.value]),
      ),
      cases: ((s.testcase as Record<string, unknown>[]) ?? []).map((c) => ({
        classname: c.classname as string,
        name: c.name as string,
        ...(c.failure !== undefined ? { failure: attrs(c.failure) } : {}),
        ...(c.error !== undefined ? { error: attrs(c.error) } : {}),
        ...(c.skipped !== undefined ? { skipped: true } : {}),
      })),
    })),
  };
}

/** Counts that do not add up: each suite's tests, failures, errors and skipped against its test cases, the root's against its suites. */
export function junitCountProblems(xml: string): string[] {
  const j = parseJunit(xml);
  const out: string[] = [];
  for (const s of j.suites) {
    const want = {
      tests: s.cases.length,
      failures: s.cases.filter((c) => c.failure).length,
      errors: s.cases.filter((c) => c.error).length,
      skipped: s.cases.filter((c) => c.skipped).length,
    };
    for (const [k, v] of Object.entries(want))
      if (s[k as keyof typeof want] !== v) out.push(`suite ${s.name}: ${k}=${s[k as keyof typeof want]}, has ${v}`);
  }
  const sum = (k: 'tests' | 'failures' | 'errors') => j.suites.reduce((n, s) => n + s[k], 0);
  for (const k of ['tests', 'failures', 'errors'] as const)
    if (j[k] !== sum(k)) out.push(`testsuites: ${k}=${j[k]}, its suites have ${sum(k)}`);
  return out;
}

const JUNIT_XSD = fileURLToPath(new URL('../fixtures/formats/jenkins-junit.xsd', import.meta.url));

/**
 * What xmllint says of the document against the Jenkins JUnit schema (test/fixtures/formats/README.md): [] when
 * it is valid; undefined when xmllint is not installed (libxml2-utils).
 */
export function junitSchemaProblems(xml: string): string[] | undefined {
  const r = spawnSync('xmllint', ['--noout', '--schema', JUNIT_XSD, '-'], { input: xml, encoding: 'utf8' });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined;
  if (r.status === 0) return [];
  return (r.stderr || `xmllint exited ${r.status}`).split('\n').filter((l) => l && !/validates$/.test(l));
}

/** RFC 4180 CSV -> rows of cells. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += ch;
  }
  if (cell || row.length) rows.push([...row, cell]);
  return rows;
}
