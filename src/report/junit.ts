// JUnit XML. `lab grade <labs>`: one testsuite per lab run, one testcase per check. `lab grade --submissions`:
// one testsuite per student, one testcase per graded item. Test names come from the lab file with templates as
// written ({{server.ip}}, {{variant.port}}), never from a run's random addresses, so CI systems and graders
// can compare runs and students test by test.
import type { Lab } from '../lab/schema.js';
import type { LabResult } from '../grade/grade.js';
import type { SubmissionResult } from '../submit/batch.js';
import { itemOutput } from './feedback.js';
import { printable } from '../printable.js';

function esc(s: string): string {
  // Control characters are shown escaped (XML 1.0 refuses most of them, and a CI page must not get them).
  return printable(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Suite names must tell suites apart: the second run of one lab gets " (2)". */
function distinct(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = (seen.get(n) ?? 0) + 1;
    seen.set(n, k);
    return k === 1 ? n : `${n} (${k})`;
  });
}

/** One testcase: its name, and its failure or error when it has one. */
interface Case {
  classname: string;
  name: string;
  time?: number;
  failure?: { message: string; text: string };
  error?: { message: string; text?: string };
}

interface Suite {
  name: string;
  time: number;
  properties?: [string, string][];
  cases: Case[];
}

/**
 * The document, its counts taken from the test cases it holds, so that they add up by construction: a suite's
 * tests, failures, errors and skipped are its cases', and the root's are the sums of its suites'. (The Jenkins
 * JUnit schema has no skipped on the root; nothing here is ever skipped.)
 */
function render(name: string, suites: Suite[]): string {
  const count = (cs: Case[]) => ({
    tests: cs.length,
    failures: cs.filter((c) => c.failure).length,
    errors: cs.filter((c) => c.error).length,
  });
  const all = count(suites.flatMap((s) => s.cases));
  const time = suites.reduce((n, s) => n + s.time, 0);
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="${esc(name)}" tests="${all.tests}" failures="${all.failures}" errors="${all.errors}" time="${time.toFixed(3)}">`,
  ];
  const names = distinct(suites.map((s) => s.name));
  suites.forEach((suite, i) => {
    const n = count(suite.cases);
    out.push(
      `  <testsuite name="${esc(names[i]!)}" tests="${n.tests}" failures="${n.failures}" errors="${n.errors}" skipped="0" time="${suite.time.toFixed(3)}">`,
    );
    if (suite.properties?.length) {
      out.push('    <properties>');
      for (const [k, v] of suite.properties) out.push(`      <property name="${esc(k)}" value="${esc(v)}"/>`);
      out.push('    </properties>');
    }
    for (const c of suite.cases) {
      const head = `    <testcase classname="${esc(c.classname)}" name="${esc(c.name)}"${c.time !== undefined ? ` time="${c.time.toFixed(3)}"` : ''}`;
      if (!c.failure && !c.error) {
        out.push(`${head}/>`);
        continue;
      }
      out.push(`${head}>`);
      // The schema's order: error before failure.
      if (c.error) out.push(`      <error message="${esc(c.error.message)}">${esc(c.error.text ?? '')}</error>`);
      if (c.failure) out.push(`      <failure message="${esc(c.failure.message)}">${esc(c.failure.text)}</failure>`);
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  });
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}

export function renderJunit(results: LabResult[]): string {
  return render(
    'tcplab',
    results.map((r) => ({
      name: `lab ${r.lab.id} ${r.lab.slug}`,
      time: r.durationMs / 1000,
      cases: [
        ...r.steps
          .flatMap((s) => s.checks)
          .map((c): Case => ({
            classname: `${r.lab.slug}.${c.step}`,
            name: c.name ?? c.expected,
            time: c.elapsedMs / 1000,
            ...(c.passed ? {} : { failure: { message: c.why ?? 'not met', text: [c.expected, 'seen:', ...c.seen].join('\n') } }),
          })),
        ...(r.error ? [{ classname: r.lab.slug, name: 'lab ran to the end', error: { message: r.error } }] : []),
      ],
    })),
  );
}

/** A suite per submission, named by the student (or the file, when it does not say). */
export function renderSubmissionsJunit(lab: Lab, results: SubmissionResult[]): string {
  return render(
    `tcplab lab ${lab.id} ${lab.slug}`,
    results.map((r) => ({
      name: r.student ?? r.file,
      time: r.durationMs / 1000,
      properties: [
        ['file', r.file],
        ['score', String(r.score)],
        ['maxScore', String(r.maxScore)],
        ['gradable', String(r.gradable)],
      ],
      cases: !r.gradable
        ? [
            {
              classname: lab.slug,
              name: 'the submission can be graded',
              error: { message: (r.reason ?? '').split('\n')[0] ?? '', text: r.reason ?? '' },
            },
          ]
        : [
            ...r.tasks.flatMap((t) =>
              t.items.map((item): Case => ({
                classname: `${lab.slug}.${item.step}`,
                name: item.name,
                ...(item.passed
                  ? {}
                  : { failure: { message: item.checks.find((c) => !c.passed)?.why ?? 'not met', text: itemOutput(item) } }),
              })),
            ),
            ...(r.error ? [{ classname: lab.slug, name: 'lab ran to the end', error: { message: r.error } }] : []),
          ],
    })),
  );
}
