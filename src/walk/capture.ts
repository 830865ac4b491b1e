// At the end of a task in the walk: read what the student typed in `lab shell` on each machine (the log
// images/node/tcplab-bashrc keeps in its /tmp), keep the commands typed during the task, up to the `lab check`
// that passed, as one timeline across the machines with how each command ended (src/submit/record.ts), and save
// them for `lab submit`. Reading happens while the lab still runs: its machines, and
// their logs, go when the walk ends.
import { readFileSync } from 'node:fs';
import type { Instance } from '../engine/instance.js';
import type { Lab, NodeName, Step } from '../lab/schema.js';
import { labHash } from '../submit/submission.js';
import { parseShellLog, taskAnswer, taskTimeline, type ShellCommand } from '../submit/record.js';
import type { StateFiles, TaskWork } from './state-files.js';
import { VERSION } from '../version.js';

const SHELL_LOG = '/tmp/tcplab-shell.log';
/** Read at most the last MiB of a machine's log. */
const LOG_TAIL_BYTES = 1024 * 1024;

interface CaptureContext {
  lab: Lab;
  file: string;
  student?: string;
  instance: Pick<Instance, 'id' | 'plan' | 'vars' | 'exec'>;
  store: StateFiles;
}

/** Every machine's shell log, parsed; a machine that cannot be read (it is going away) contributes nothing. */
async function shellLogs(instance: CaptureContext['instance']): Promise<Map<NodeName, ShellCommand[]>> {
  const logs = new Map<NodeName, ShellCommand[]>();
  await Promise.all(
    instance.plan.nodes.map(async (n) => {
      const r = await instance.exec(n.key, ['tail', '-c', String(LOG_TAIL_BYTES), SHELL_LOG]).catch(() => undefined);
      logs.set(n.key, r && r.exitCode === 0 ? parseShellLog(r.stdout) : []);
    }),
  );
  return new Map([...logs].sort(([a], [b]) => a.localeCompare(b)));
}

export async function captureTask(
  c: CaptureContext,
  step: Step,
  window: { startedAt: number; endedAt: number },
  outcome: { passed: boolean; attempts: number; solvedByTcplab?: boolean },
): Promise<TaskWork> {
  const logs = await shellLogs(c.instance);
  const answer = taskAnswer(logs, window.startedAt, window.endedAt, c.instance.vars).map(({ node, lines }) => ({ node, lines }));
  const timeline = taskTimeline(logs, window.startedAt, window.endedAt, c.instance.vars);
  let hash = '';
  try {
    hash = labHash(readFileSync(c.file, 'utf8'));
  } catch {
    // The lab file went away during the walk: the submission just carries no hash.
  }
  const task: TaskWork = {
    title: step.title,
    startedAt: new Date(window.startedAt).toISOString(),
    endedAt: new Date(window.endedAt).toISOString(),
    passed: outcome.passed,
    attempts: outcome.attempts,
    ...(outcome.solvedByTcplab ? { solvedByTcplab: true } : {}),
    answer,
    timeline,
  };
  c.store.saveTaskWork(
    {
      ...(c.student ? { student: c.student } : {}),
      lab: { id: c.lab.id, slug: c.lab.slug, title: c.lab.title, file: c.file, hash },
      tcplab: VERSION,
      instance: c.instance.id,
    },
    step.id,
    task,
  );
  return task;
}
