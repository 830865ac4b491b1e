// The same lab machines made by hand, for comparison: the docker CLI one command at a time, the docker CLI with
// every node in parallel (about the engine's floor for these options), and Docker Compose. Each takes a Plan
// from the real planner, so names, labels, addresses, sysctls and hardening are exactly what tcplab creates;
// everything carries the plan's labels, so removeInstance() cleans it up like a lab instance.
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderCompose } from '../plan/compose.js';
import { NODE_SECURITY, type NodePlan, type Plan } from '../plan/plan.js';
import { must, run } from './shell.js';

function labelArgs(labels: Record<string, string>): string[] {
  return Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
}

function networkCreate(plan: Plan, i: number): string[] {
  const n = plan.networks[i]!;
  return [
    'docker',
    'network',
    'create',
    '--internal',
    '--driver',
    'bridge',
    '--subnet',
    n.subnet,
    '--gateway',
    n.gateway,
    ...Object.entries(n.options).flatMap(([k, v]) => ['-o', `${k}=${v}`]),
    ...labelArgs(n.labels),
    n.name,
  ];
}

function nodeOptions(node: NodePlan): string[] {
  const first = node.interfaces[0]!;
  return [
    '--name',
    node.name,
    '--hostname',
    node.hostname,
    '--network',
    first.networkName,
    '--ip',
    first.ip,
    ...Object.entries(node.sysctls).flatMap(([k, v]) => ['--sysctl', `${k}=${v}`]),
    ...NODE_SECURITY.capDrop.flatMap((c) => ['--cap-drop', c]),
    ...[...NODE_SECURITY.capAdd, ...NODE_SECURITY.agentCapAdd].flatMap((c) => ['--cap-add', c]),
    ...NODE_SECURITY.securityOpt.flatMap((o) => ['--security-opt', o]),
    ...(NODE_SECURITY.readOnlyRootfs ? ['--read-only'] : []),
    ...Object.entries(NODE_SECURITY.tmpfs).flatMap(([p, o]) => ['--tmpfs', `${p}:${o}`]),
    '--memory',
    String(NODE_SECURITY.memoryBytes),
    '--memory-swap',
    String(NODE_SECURITY.memoryBytes),
    '--pids-limit',
    String(NODE_SECURITY.pidsLimit),
    ...NODE_SECURITY.ulimits.flatMap((u) => ['--ulimit', `${u.name}=${u.soft}:${u.hard}`]),
    '--restart',
    'no',
    ...labelArgs(node.labels),
    node.image,
    ...node.cmd,
  ];
}

/** The commands that bring one node up, in order: run (or create, connect, start), then its setup (wiring, routes). */
function nodeCommands(node: NodePlan): string[][] {
  const cmds: string[][] = [];
  if (node.interfaces.length === 1) cmds.push(['docker', 'run', '-d', ...nodeOptions(node)]);
  else {
    cmds.push(['docker', 'create', ...nodeOptions(node)]);
    for (const iface of node.interfaces.slice(1))
      cmds.push(['docker', 'network', 'connect', '--ip', iface.ip, iface.networkName, node.name]);
    cmds.push(['docker', 'start', node.name]);
  }
  for (const argv of node.setup) cmds.push(['docker', 'exec', node.name, ...argv]);
  return cmds;
}

export async function cliSequential(plan: Plan): Promise<void> {
  for (let i = 0; i < plan.networks.length; i++) await must(networkCreate(plan, i));
  for (const node of plan.nodes) for (const c of nodeCommands(node)) await must(c);
}

export async function cliParallel(plan: Plan): Promise<void> {
  await Promise.all(plan.networks.map((_, i) => must(networkCreate(plan, i))));
  await Promise.all(
    plan.nodes.map(async (node) => {
      for (const c of nodeCommands(node)) await must(c);
    }),
  );
}

export class Compose {
  private readonly dir = mkdtempSync(join(tmpdir(), 'tcplab-bench-compose-'));
  private readonly file = join(this.dir, 'docker-compose.yml');
  constructor(private readonly plan: Plan) {
    // The same renderer as compose/*.yaml, with the setup left to exec (see up()).
    writeFileSync(this.file, renderCompose(plan, { setupInCommand: false }));
  }

  private argv(...rest: string[]): string[] {
    return ['docker-compose', '-p', `tcplab-bench-${this.plan.instance}`, '-f', this.file, ...rest];
  }

  /** up -d, then the setup commands (tunnels, routes) Compose cannot express. */
  async up(): Promise<void> {
    await must(this.argv('up', '-d', '--no-build', '--no-color', '--quiet-pull'));
    await Promise.all(
      this.plan.nodes.map(async (node) => {
        for (const argv of node.setup) await must(['docker', 'exec', node.name, ...argv]);
      }),
    );
  }

  async down(): Promise<void> {
    await run(this.argv('down', '--remove-orphans', '--timeout', '0'));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function composeVersion(): Promise<string | undefined> {
  const r = await run(['docker-compose', 'version', '--short']);
  return r.code === 0 ? r.stdout.trim() : undefined;
}
