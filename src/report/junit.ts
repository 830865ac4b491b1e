// JUnit XML. `lab grade <labs>`: one testsuite per lab run, one testcase per check. `lab grade --submissions`:
// one testsuite per student, one testcase per graded item. Test names come from the lab file with templates as
// written ({{server.ip}}, {{variant.port}}), never from a run's random addresses, so CI systems and graders
// can compare runs and students test by test.
import type { Lab } from '../lab/schema.js';
import type { LabResult } from '../grade/grade.js';
import type { SubmissionResult } from '../submit/batch.js';
import { itemOutput } from './feedback.js';

function esc(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
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

export function renderJunit(results: LabResult[]): string {
  const total = results.reduce((n, r) => n + Math.max(r.score.total, 1), 0);
  const failures = results.reduce(
    (n, r) => n + (r.score.total - r.score.passed) + (r.error && r.score.total === r.score.passed ? 1 : 0),
    0,
  );
  const out = [`<?xml version="1.0" encoding="UTF-8"?>`, `<testsuites name="tcplab" tests="${total}" failures="${failures}">`];
  const names = distinct(results.map((r) => `lab ${r.lab.id} ${r.lab.slug}`));
  results.forEach((r, i) => {
    const checks = r.steps.flatMap((s) => s.checks);
    out.push(
      `  <testsuite name="${esc(names[i]!)}" tests="${Math.max(checks.length, 1)}" failures="${r.score.total - r.score.passed}" time="${(r.durationMs / 1000).toFixed(3)}">`,
    );
    for (const c of checks) {
      out.push(
        `    <testcase classname="${esc(`${r.lab.slug}.${c.step}`)}" name="${esc(c.name ?? c.expected)}" time="${(c.elapsedMs / 1000).toFixed(3)}">`,
      );
      if (!c.passed)
        out.push(`      <failure message="${esc(c.why ?? 'not met')}">${esc([c.expected, 'seen:', ...c.seen].join('\n'))}</failure>`);
      out.push('    </testcase>');
    }
    if (r.error) {
      out.push(`    <testcase classname="${esc(r.lab.slug)}" name="lab ran to the end"><error message="${esc(r.error)}"/></testcase>`);
    }
    out.push('  </testsuite>');
  });
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}

/** A suite per submission, named by the student (or the file, when it does not say). */
export function renderSubmissionsJunit(lab: Lab, results: SubmissionResult[]): string {
  const cases = (r: SubmissionResult) => (r.gradable ? r.tasks.reduce((n, t) => n + t.items.length, 0) + (r.error ? 1 : 0) : 1);
  const failed = (r: SubmissionResult) => (r.gradable ? r.tasks.reduce((n, t) => n + t.items.filter((it) => !it.passed).length, 0) : 0);
  const errors = (r: SubmissionResult) => (!r.gradable || r.error ? 1 : 0);
  const sum = (f: (r: SubmissionResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="${esc(`tcplab lab ${lab.id} ${lab.slug}`)}" tests="${sum(cases)}" failures="${sum(failed)}" errors="${sum(errors)}">`,
  ];
  const names = distinct(results.map((r) => r.student ?? r.file));
  results.forEach((r, i) => {
    out.push(
      `  <testsuite name="${esc(names[i]!)}" tests="${cases(r)}" failures="${failed(r)}" errors="${errors(r)}" time="${(r.durationMs / 1000).toFixed(3)}">`,
    );
    out.push('    <properties>');
    for (const [k, v] of [
      ['file', r.file],
      ['score', String(r.score)],
      ['maxScore', String(r.maxScore)],
      ['gradable', String(r.gradable)],
    ] as const)
      out.push(`      <property name="${k}" value="${esc(v)}"/>`);
    out.push('    </properties>');
    if (!r.gradable) {
      out.push(`    <testcase classname="${esc(lab.slug)}" name="the submission can be graded">`);
      out.push(`      <error message="${esc((r.reason ?? '').split('\n')[0] ?? '')}">${esc(r.reason ?? '')}</error>`);
      out.push('    </testcase>');
    }
    for (const t of r.tasks) {
      for (const item of t.items) {
        out.push(`    <testcase classname="${esc(`${lab.slug}.${item.step}`)}" name="${esc(item.name)}">`);
        if (!item.passed) {
          const why = item.checks.find((c) => !c.passed)?.why ?? 'not met';
          out.push(`      <failure message="${esc(why)}">${esc(itemOutput(item))}</failure>`);
        }
        out.push('    </testcase>');
      }
    }
    if (r.gradable && r.error)
      out.push(`    <testcase classname="${esc(lab.slug)}" name="lab ran to the end"><error message="${esc(r.error)}"/></testcase>`);
    out.push('  </testsuite>');
  });
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
