// What the walk shows besides its steps, as data: each machine's rules and processes, the sockets a step is
// about, the hint for an attempt. The terminal and the browser draw these; nothing here prints.
import type { Instance } from '../engine/instance.js';
import type { Expectation, NodeName, Step } from '../lab/schema.js';
import { socketMatches } from '../grade/grade.js';
import type { Socket } from '../observe/ss.js';

/** The commands run on one machine for a view, with what they printed. */
export interface MachineOutput {
  node: NodeName;
  commands: { command: string; output: string }[];
}

type Exec = Pick<Instance, 'plan' | 'exec'>;

async function run(instance: Exec, node: NodeName, argv: string[]): Promise<string> {
  const r = await instance.exec(node, argv, { timeoutMs: 10_000 });
  return (r.stdout + r.stderr).trimEnd();
}

/** iptables -S and -L -vn (with counters) on every machine. */
export async function rulesOf(instance: Exec): Promise<MachineOutput[]> {
  return Promise.all(
    instance.plan.nodes.map(async ({ key: node }) => ({
      node,
      commands: [
        { command: 'iptables -S', output: await run(instance, node, ['iptables', '-S']) },
        { command: 'iptables -L -vn', output: await run(instance, node, ['iptables', '-L', '-vn']) },
      ],
    })),
  );
}

/** The processes on every machine, without ps itself and tcplab's own processes in the machine. */
export async function processesOf(instance: Exec): Promise<MachineOutput[]> {
  return Promise.all(
    instance.plan.nodes.map(async ({ key: node }) => {
      const out = await run(instance, node, ['ps', '-eo', 'pid,stat,args']);
      const lines = out.split('\n').filter((l) => !/\bps -eo\b|sleep infinity$|tcplab-agent( connect)?$/.test(l));
      return { node, commands: [{ command: 'ps -eo pid,stat,args', output: lines.join('\n') }] };
    }),
  );
}

/** The sockets a step is about: those its socket and absent expectations match, on the node they name. */
export function socketsThatMatter(expectations: Expectation[], vars: Record<string, string>): (node: NodeName, s: Socket) => boolean {
  return (node, s) =>
    expectations.some((e) => e.on === node && !!(e.socket ?? e.absent) && socketMatches((e.socket ?? e.absent)!, s, vars));
}

/** The hint after a task's `attempts`-th failed check: one more per failed check, the last one repeated. */
export function hintFor(step: Step, attempts: number): string | undefined {
  const hints = step.task?.hints ?? [];
  if (!hints.length) return undefined;
  return hints[Math.min(Math.max(attempts, 1), hints.length) - 1];
}

/**
 * Lab prose names tcplab's commands as `lab shell client`, `lab check`: as the student can type them where
 * they are (`npx lab shell client`), or, on a page without a command line (no command), as what the page has:
 * the machine's terminal and the Check button.
 */
export function commandsIn(text: string, command: string | undefined): string {
  if (command !== undefined) return text.replace(/`lab(\s+)(?=[a-z])/g, (_m, space: string) => `\`${command}${space}`);
  return text
    .replace(/`lab\s+shell\s+(client|server|firewall)`/g, (_m, node: string) => `the ${node}'s terminal`)
    .replace(/`lab\s+check`/g, 'Check');
}
