// The engine's floor under a Lab 2 run (benchmark section "cpu"): Lab 2's network and two machines made and
// removed exactly as `lab grade 2` makes them (its plan, hardening, image and agent as each machine's main
// process), one `docker exec` per machine (a run opens one relay per machine), and no lab: no step, no look, no
// command. What a run costs above this figure is tcplab's to cut; this much is the engine's and the kernel's
// on this host whatever tcplab does, unless a run made fewer machines or reused them (BENCHMARKS.md says why
// it does not). lab-cpu.ts runs it as its own process, as it runs the CLI, so its split has the same parts;
// node's start and dockerode are its "tcplab" part (about 0.25 CPU-s here).
import type { ContainerSpec, NetworkSpec } from '../runtime/runtime.js';
import { DockerRuntime } from '../runtime/docker.js';
import { removeInstance } from '../engine/teardown.js';
import { ownerLabels } from '../identity.js';

/** What floor.js makes: written by floorSpec() in the benchmark's process, so that this one loads no lab file. */
interface FloorSpec {
  instance: string;
  networks: NetworkSpec[];
  containers: ContainerSpec[];
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as FloorSpec;
  const runtime = new DockerRuntime();
  // Whose it is (TCPLAB_USER, set by the benchmark): the benchmark meters the containers by this label.
  const owner = ownerLabels();
  try {
    for (const net of spec.networks) await runtime.createNetwork({ ...net, labels: { ...net.labels, ...owner } });
    await Promise.all(
      spec.containers.map(async (c) => {
        await runtime.createContainer({ ...c, labels: { ...c.labels, ...owner } });
        await runtime.startContainer(c.name);
        const r = await runtime.exec(c.name, ['true'], { user: '990' });
        if (r.exitCode !== 0) throw new Error(`exec in ${c.name} exited ${r.exitCode}`);
      }),
    );
  } finally {
    await removeInstance(runtime, spec.instance);
  }
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`floor: ${e.message}\n`);
    process.exit(1);
  },
);
