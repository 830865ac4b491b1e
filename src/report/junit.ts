// JUnit XML: one testsuite per lab, one testcase per check, so CI systems show each expectation.
import type { LabResult } from '../grade/grade.js';

function esc(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

export function renderJunit(results: LabResult[]): string {
  const total = results.reduce((n, r) => n + Math.max(r.score.total, 1), 0);
  const failures = results.reduce(
    (n, r) => n + (r.score.total - r.score.passed) + (r.error && r.score.total === r.score.passed ? 1 : 0),
    0,
  );
  const out = [`<?xml version="1.0" encoding="UTF-8"?>`, `<testsuites name="tcplab" tests="${total}" failures="${failures}">`];
  for (const r of results) {
    const name = `lab ${r.lab.id} ${r.lab.slug}`;
    const checks = r.steps.flatMap((s) => s.checks);
    out.push(
      `  <testsuite name="${esc(name)}" tests="${Math.max(checks.length, 1)}" failures="${r.score.total - r.score.passed}" time="${(r.durationMs / 1000).toFixed(3)}">`,
    );
    for (const c of checks) {
      out.push(
        `    <testcase classname="${esc(`${r.lab.slug}.${c.step}`)}" name="${esc(c.expected)}" time="${(c.elapsedMs / 1000).toFixed(3)}">`,
      );
      if (!c.passed) out.push(`      <failure message="${esc(c.why ?? 'not met')}">${esc(['seen:', ...c.seen].join('\n'))}</failure>`);
      out.push('    </testcase>');
    }
    if (r.error) {
      out.push(`    <testcase classname="${esc(r.lab.slug)}" name="lab ran to the end"><error message="${esc(r.error)}"/></testcase>`);
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
