// Prints the plain closing line CI reads ("tests: N passed, N failed, N skipped") from vitest's JSON report,
// and fails when a Docker-backed test was skipped although LAB_REQUIRE_DOCKER=1.
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const passed = report.numPassedTests;
const failed = report.numFailedTests;
const skipped = report.numPendingTests + (report.numTodoTests ?? 0);
// The failed tests by name, before the closing line: CI keeps only the tail of a long log, and a count alone
// does not say which test to look at.
for (const file of report.testResults ?? []) {
  const name = String(file.name ?? '').replace(/^.*?\/(test\/)/, '$1');
  for (const t of file.assertionResults ?? []) {
    if (t.status !== 'failed') continue;
    const why = String((t.failureMessages ?? [])[0] ?? '')
      .split('\n')[0]
      .slice(0, 300);
    console.log(`failed: ${name} > ${t.fullName ?? t.title}\n    ${why}`);
  }
  if ((file.assertionResults ?? []).length === 0 && file.status === 'failed') {
    console.log(
      `failed: ${name} (the file itself): ${String(file.message ?? '')
        .split('\n')[0]
        .slice(0, 300)}`,
    );
  }
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (process.env.LAB_REQUIRE_DOCKER === '1' && skipped > 0) {
  console.log('some tests were skipped although LAB_REQUIRE_DOCKER=1: that is a failure');
  process.exit(1);
}
if (passed === 0 || failed > 0 || !report.success) process.exit(1);
