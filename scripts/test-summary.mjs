// Prints the plain closing line CI reads ("tests: N passed, N failed, N skipped") from vitest's JSON report,
// and fails when a Docker-backed test was skipped although LAB_REQUIRE_DOCKER=1.
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const passed = report.numPassedTests;
const failed = report.numFailedTests;
const skipped = report.numPendingTests + (report.numTodoTests ?? 0);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (process.env.LAB_REQUIRE_DOCKER === '1' && skipped > 0) {
  console.log('some tests were skipped although LAB_REQUIRE_DOCKER=1: that is a failure');
  process.exit(1);
}
if (passed === 0 || failed > 0 || !report.success) process.exit(1);
