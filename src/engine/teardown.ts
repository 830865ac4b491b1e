// Removing an instance: every container and network carrying its label, also after a crash.
import createDebug from 'debug';
import { LABEL } from '../plan/plan.js';
import type { Runtime } from '../runtime/runtime.js';
import { realClock } from './clock.js';

const log = createDebug('lab');

/** What a removal took away. */
export interface Removed {
  containers: number;
  networks: number;
}

/** Two removals' counts together. */
export function addRemoved(a: Removed, b: Removed): Removed {
  return { containers: a.containers + b.containers, networks: a.networks + b.networks };
}

const removals = new Map<string, Promise<Removed>>();

/** Remove every container and network of one instance (or, with no id, of every instance). */
export async function removeInstance(runtime: Runtime, id?: string): Promise<Removed> {
  // The signal handler, a failed start and runLab's own teardown can all remove the same instance at once.
  // Calls for one id run one after another, and each does a full pass: a container whose create was in
  // flight during the first pass is found by the next one.
  const key = id ?? '';
  const prev = removals.get(key) ?? Promise.resolve(none());
  const run = prev.catch(none).then(() => removeOnce(runtime, id));
  removals.set(key, run);
  try {
    return await run;
  } finally {
    if (removals.get(key) === run) removals.delete(key);
  }
}

function none(): Removed {
  return { containers: 0, networks: 0 };
}

async function removeOnce(runtime: Runtime, id?: string): Promise<Removed> {
  const labels: Record<string, string> = { [LABEL.managed]: 'true', ...(id ? { [LABEL.instance]: id } : {}) };
  const containers = await runtime.listContainers(labels);
  await Promise.all(containers.map((c) => runtime.removeContainer(c.name)));
  const networks = await runtime.listNetworks(labels);
  const removed: Removed = { containers: containers.length, networks: 0 };
  await Promise.all(
    networks.map(async (n) => {
      // Another process (or a create that was in flight) may still have a container on it: remove those
      // containers too and try again, for a few seconds at most.
      for (let attempt = 0; ; attempt++) {
        try {
          await runtime.removeNetwork(n.name);
          removed.networks++;
          return;
        } catch (e) {
          if (attempt >= 20 || !/active endpoints/i.test((e as Error).message)) throw e;
          log('network %s still has endpoints; removing its containers again', n.name);
          for (const c of await runtime.listContainers(labels)) {
            await runtime.removeContainer(c.name);
            removed.containers++;
          }
          await realClock.sleep(Math.min(50 * (attempt + 1), 500));
        }
      }
    }),
  );
  return removed;
}

/** "2 containers and 1 network", in words a person reads. */
export function describeRemoved(r: Removed): string {
  const part = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  // "2 networks", not "0 containers and 2 networks"; nothing at all is said as "0 containers and 0 networks".
  if (!r.containers && r.networks) return part(r.networks, 'network');
  if (r.containers && !r.networks) return part(r.containers, 'container');
  return `${part(r.containers, 'container')} and ${part(r.networks, 'network')}`;
}
