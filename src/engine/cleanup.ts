// Finding instances whose owner is gone: each instance carries io.tcplab.pid = "host:pid" of the process that
// created it. An instance whose process on this host no longer exists (killed, crashed, power cut) and that was
// not kept on purpose (lab start --keep) is stale: `lab clean --stale` removes it, `lab doctor` reports it.
import { hostname, userInfo } from 'node:os';
import { LABEL } from '../plan/plan.js';
import type { Runtime } from '../runtime/runtime.js';

interface InstanceInfo {
  instance: string;
  lab: string;
  /** host:pid of the process that made it. */
  owner: string;
  /** The OS user who started it; undefined for an instance made before tcplab labelled users. */
  user: string | undefined;
  kept: boolean;
  containers: number;
  networks: number;
  /** Why it counts as stale, or why not. */
  status: 'stale' | 'running' | 'kept' | 'other-host' | 'unknown-owner';
}

/**
 * Who is running tcplab: whose labs `lab shell`, `lab check`, `lab status` and `lab stop` act on. The OS user,
 * unless TCPLAB_USER names someone (a workshop where everybody shares one login; tests that play two users).
 */
export function currentUser(): string {
  if (process.env.TCPLAB_USER) return process.env.TCPLAB_USER;
  try {
    return userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers): the environment's name, or the uid itself.
    return process.env.USER || process.env.LOGNAME || `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** Is this process alive? EPERM means it exists but belongs to someone else. */
function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function ownerStatus(
  labels: Record<string, string>,
  host = hostname(),
  alive: (pid: number) => boolean = processAlive,
): InstanceInfo['status'] {
  if (labels[LABEL.keep] === 'true') return 'kept';
  const owner = labels[LABEL.pid];
  const m = owner ? /^(.*):(\d+)$/.exec(owner) : null;
  if (!m) return 'unknown-owner';
  if (m[1] !== host) return 'other-host';
  return alive(Number(m[2])) ? 'running' : 'stale';
}

/** Every instance on the engine, with its owner's status. */
export async function listInstances(
  runtime: Runtime,
  opts: { host?: string; alive?: (pid: number) => boolean } = {},
): Promise<InstanceInfo[]> {
  const managed = { [LABEL.managed]: 'true' };
  const [containers, networks] = await Promise.all([runtime.listContainers(managed), runtime.listNetworks(managed)]);
  const byId = new Map<string, InstanceInfo>();
  for (const [kind, list] of [
    ['containers', containers],
    ['networks', networks],
  ] as const) {
    for (const r of list) {
      const id = r.labels[LABEL.instance];
      if (!id) continue;
      let info = byId.get(id);
      if (!info) {
        info = {
          instance: id,
          lab: r.labels[LABEL.lab] ?? '?',
          owner: r.labels[LABEL.pid] ?? '?',
          user: r.labels[LABEL.owner],
          kept: r.labels[LABEL.keep] === 'true',
          containers: 0,
          networks: 0,
          status: ownerStatus(r.labels, opts.host, opts.alive),
        };
        byId.set(id, info);
      }
      info[kind]++;
    }
  }
  return [...byId.values()].sort((a, b) => a.instance.localeCompare(b.instance));
}
