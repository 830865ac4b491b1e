// Benchmark section "submissions": a class of Lab 2 answers graded by the real CLI, `lab grade 2 --submissions
// DIR --parallel P`, for several P. Four of five answers are right (a DROP of the client's SYNs), one is wrong
// (a REJECT): every verdict is checked, so a fast run that grades wrongly does not count as fast.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SubmissionResult } from '../submit/batch.js';
import { median } from './stats.js';
import { run } from './shell.js';

const RIGHT = 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP';
const WRONG = 'iptables -I OUTPUT -p tcp --dport 5555 -j REJECT';

export interface ClassRun {
  parallel: number;
  submissions: number;
  wallMs: number;
  perSecond: number;
  /** Right answers passed and wrong ones did not. */
  correct: number;
  /** Median time one submission took, from its instance's creation to its removal. */
  medianEachMs: number;
  wrongVerdicts: string[];
}

/** n submissions of Lab 2's task in a new folder: every fifth is wrong. */
function writeClass(n: number): { dir: string; wrong: Set<string> } {
  const dir = mkdtempSync(join(tmpdir(), 'tcplab-bench-class-'));
  const wrong = new Set<string>();
  for (let i = 1; i <= n; i++) {
    const student = `s${String(i).padStart(3, '0')}`;
    const bad = i % 5 === 0;
    if (bad) wrong.add(student);
    writeFileSync(
      join(dir, `${student}.yaml`),
      `student: ${student}\nlab: 2\nanswers:\n  drop-syn:\n    client: |\n      ${bad ? WRONG : RIGHT}\n`,
    );
  }
  return { dir, wrong };
}

export async function gradeClass(bin: string, n: number, parallel: number): Promise<ClassRun> {
  const { dir, wrong } = writeClass(n);
  try {
    const stateDir = mkdtempSync(join(tmpdir(), 'tcplab-bench-state-'));
    const res = await run(
      [process.execPath, bin, 'grade', '2', '--submissions', dir, '--parallel', String(parallel), '--json', '--no-color'],
      {
        env: { ...process.env, TCPLAB_STATE_DIR: stateDir },
        timeoutMs: 3_600_000,
      },
    );
    rmSync(stateDir, { recursive: true, force: true });
    if (res.code !== 0) throw new Error(`lab grade --submissions failed (exit ${res.code}):\n${res.stderr.slice(-4000)}`);
    const doc = JSON.parse(res.stdout) as { submissions: SubmissionResult[] };
    const wrongVerdicts = doc.submissions
      .filter((r) => r.passed === wrong.has(r.student ?? ''))
      .map((r) => {
        if (r.passed) return `${r.student}: passed a wrong answer`;
        const missed = r.tasks.flatMap((t) => t.items).find((it) => !it.passed);
        const why = r.error ?? (missed ? `${missed.name}: seen ${missed.checks[0]?.seen.join(' | ')}` : 'no result');
        return `${r.student}: failed a right answer (${r.score}/${r.maxScore}; ${why})`;
      });
    return {
      parallel,
      submissions: doc.submissions.length,
      wallMs: res.ms,
      perSecond: doc.submissions.length / (res.ms / 1000),
      correct: doc.submissions.length - wrongVerdicts.length,
      medianEachMs: median(doc.submissions.map((r) => r.durationMs)),
      wrongVerdicts,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
