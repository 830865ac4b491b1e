// Finding instances whose owner is gone: each instance carries io.tcplab.pid = "host:pid" of the process that
// created it. An instance whose process on this host no longer exists (killed, crashed, power cut) and that was
// not kept on purpose (lab start --keep) is stale: `lab clean --stale` removes it, `lab doctor` reports it.
import { ownerStatus } from '../identity.js';
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
  status: ReturnType<typeof ownerStatus>;
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
