// Docker-backed tests: skipped where no engine is reachable, but failing (not skipping) when
// LAB_REQUIRE_DOCKER=1, as CI sets it. Every test removes what it created; each file's afterAll compares the
// engine's labelled containers and networks with those it held when the file began.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { DockerRuntime } from '../../src/runtime/docker.js';
import { ensureImage } from '../../src/engine/image.js';
import { LABEL } from '../../src/plan/plan.js';
import { removeInstance } from '../../src/engine/teardown.js';

export const required = process.env.LAB_REQUIRE_DOCKER === '1';

async function reachable(): Promise<boolean> {
  try {
    await new DockerRuntime().info();
    return true;
  } catch {
    return false;
  }
}

const dockerReachable = await reachable();
if (required && !dockerReachable) {
  throw new Error('LAB_REQUIRE_DOCKER=1 but no Docker engine is reachable: start dockerd (see .ci/run) or unset LAB_REQUIRE_DOCKER');
}

/**
 * What marks this test file's processes: this one, and every process it starts with its environment (the CLI
 * runs of the tests). A lab made by a process that is still alive is this file's only if that process carries
 * the mark; one made by any other live process belongs to another run on the same engine (another engineer's
 * lab), which this file must neither count nor remove. tcplab also labels what it makes with the mark
 * (io.tcplab.run), which says whose a lab is after its maker is gone: files run two at a time.
 */
const RUN_MARK = 'TCPLAB_RUN';
const RUN_ID = `${process.pid}-${randomBytes(4).toString('hex')}`;
process.env[RUN_MARK] = RUN_ID;

/**
 * describe() for tests that need a real engine; the image is built (or found) once per file. Before the file's
 * first test it notes every container and network the engine holds with tcplab's label; after its last, every
 * labelled container and network that was not there before and is not another live run's is a leftover of this
 * file, whatever made it (a run whose id nobody reported, a retried run, a lab made by a CLI the test started):
 * the file fails, naming each, after removing them.
 */
export function describeDocker(name: string, fn: (env: DockerTestEnv) => void): void {
  describe.skipIf(!dockerReachable)(name, () => {
    const env = new DockerTestEnv();
    beforeAll(async () => {
      await env.noteEngine();
      env.image = await ensureImage(env.runtime, () => {});
    });
    afterAll(async () => {
      // Look first, then clean up: a leftover that is removed before anyone looks is never seen.
      const left = await env.leftovers();
      const instances = new Set([...env.instances, ...(await env.newOnEngine()).map((o) => o.labels[LABEL.instance] ?? '')]);
      for (const id of instances) if (id) await removeInstance(env.runtime, id);
      expect(left, 'containers or networks left behind').toEqual([]);
    });
    fn(env);
  });
}

/** A container or network of tcplab's, as the engine lists it. */
interface Labelled {
  kind: 'container' | 'network';
  id: string;
  name: string;
  labels: Record<string, string>;
}

/** Did this file make it, or another run that is still going? See RUN_MARK. */
function madeHere(labels: Record<string, string>): boolean {
  // Labelled with its run (src/identity.ts): that says it, even when the process that made it is gone (a lab
  // serve restarted by its test, a CLI killed on purpose) while another file looks for its own leftovers.
  const run = labels[LABEL.run];
  if (run !== undefined) return run === RUN_ID;
  // A step of an image build (another file building the lab image meanwhile): its container has only the
  // label the image itself carries, no lab instance and no maker. The build removes it.
  if (labels[LABEL.instance] === undefined && labels[LABEL.pid] === undefined) return false;
  const m = /^(.*):(\d+)$/.exec(labels[LABEL.pid] ?? '');
  // Made by no process we can name: count it, rather than let a leftover pass.
  if (!m) return true;
  // Another host's process is never one of this file's.
  if (m[1] !== hostname()) return false;
  const pid = Number(m[2]);
  if (pid === process.pid) return true;
  let environ: string;
  try {
    environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    // Gone (nobody is left to remove what it made), or not ours to read (another user's run).
    return !processExists(pid);
  }
  return environ.split('\0').includes(`${RUN_MARK}=${RUN_ID}`);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

class DockerTestEnv {
  runtime = new DockerRuntime();
  image = '';
  /** Instance ids this file created, as far as it knows them: removed when the file ends, whatever happened. */
  instances = new Set<string>();
  /** The engine's labelled containers and networks before the file's first test. */
  private before: Set<string> | undefined;

  track(id: string): string {
    this.instances.add(id);
    return id;
  }

  private async labelled(): Promise<Labelled[]> {
    const managed = { [LABEL.managed]: 'true' };
    return [
      ...(await this.runtime.listContainers(managed)).map((c) => ({ kind: 'container' as const, ...c })),
      ...(await this.runtime.listNetworks(managed)).map((n) => ({ kind: 'network' as const, ...n })),
    ];
  }

  async noteEngine(): Promise<void> {
    this.before = new Set((await this.labelled()).map((o) => `${o.kind} ${o.id}`));
  }

  /** Labelled containers and networks that appeared since the file began and are not another live run's. */
  async newOnEngine(): Promise<Labelled[]> {
    if (!this.before) throw new Error('newOnEngine() before the engine was noted');
    const before = this.before;
    return (await this.labelled()).filter((o) => !before.has(`${o.kind} ${o.id}`) && madeHere(o.labels));
  }

  /**
   * What this file has left on the engine so far: every labelled container and network that appeared since it
   * began (see newOnEngine), and any of the instances it tracked. Call it when nothing of the file should be
   * running; a file that keeps an instance across tests gets it listed until it removes it.
   */
  async leftovers(): Promise<string[]> {
    const out = new Map<string, string>();
    const say = (o: Labelled) =>
      out.set(
        `${o.kind} ${o.id}`,
        `${o.kind} ${o.name} (instance ${o.labels[LABEL.instance] ?? '?'}, lab ${o.labels[LABEL.lab] ?? '?'}, made by ${o.labels[LABEL.pid] ?? '?'})`,
      );
    for (const o of await this.newOnEngine()) say(o);
    for (const id of this.instances) {
      const labels = { [LABEL.managed]: 'true', [LABEL.instance]: id };
      for (const c of await this.runtime.listContainers(labels)) say({ kind: 'container', ...c });
      for (const n of await this.runtime.listNetworks(labels)) say({ kind: 'network', ...n });
    }
    return [...out.values()];
  }
}
