// Bringing one lab instance up: its networks (on free subnets, retrying when another process took the same one
// at the same moment), its hardened containers, and each node's network setup. On any failure, or Ctrl-C,
// whatever was created is removed before the error goes up: nothing half-built stays behind.
import { randomBytes } from 'node:crypto';
import createDebug from 'debug';
import type { Lab } from '../lab/schema.js';
import { networksOf } from '../lab/topology.js';
import { LABEL, NODE_SECURITY, planLab, type NodePlan, type Plan } from '../plan/plan.js';
import { shellQuote } from '../plan/shell.js';
import { SubnetTakenError, type Runtime } from '../runtime/runtime.js';
import { EngineError } from '../errors.js';
import { variantValues } from '../lab/variants.js';
import { throwIfAborted } from './abort.js';
import { realClock } from './clock.js';
import { Instance, type InstanceOptions } from './instance.js';
import { ownerLabels, REFERENCE_STUDENT } from '../identity.js';
import { pickSubnets, randomPoolStart } from './subnets.js';
import { removeInstance } from './teardown.js';

const log = createDebug('lab');
const SETUP_TIMEOUT_MS = 10_000;
const SUBNET_ATTEMPTS = 20;

export function newInstanceId(): string {
  return randomBytes(4).toString('hex');
}

export async function createInstance(runtime: Runtime, lab: Lab, opts: InstanceOptions): Promise<Instance> {
  const emit = opts.emit ?? (() => {});
  const clock = opts.clock ?? realClock;
  const t0 = clock.now();
  const id = opts.instance ?? newInstanceId();
  const labels = { ...ownerLabels(opts.owner), ...(opts.keep ? { [LABEL.keep]: 'true' } : {}) };
  try {
    throwIfAborted(opts.signal, 'start');
    const plan = await createNetworks(runtime, lab, id, labels, opts);
    // allSettled, not all: on a failure the other nodes' calls must finish before cleanup lists what exists.
    const settled = await Promise.allSettled(plan.nodes.map((node) => createNode(runtime, node, opts)));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    throwIfAborted(opts.signal, 'start');
    emit({ type: 'ready', instance: id, ms: clock.now() - t0 });
    const ready = new Instance(runtime, plan, opts);
    // Open the persistent observers now, without waiting, so the first look of the first step is not slower.
    ready.warmUp();
    return ready;
  } catch (e) {
    await removeInstance(runtime, id).catch((err) => log('cleanup after failed start: %s', (err as Error).message));
    throw e;
  }
}

/** The instance's networks, in parallel; another process may take a subnet at the same moment: then others. */
async function createNetworks(
  runtime: Runtime,
  lab: Lab,
  id: string,
  labels: Record<string, string>,
  opts: InstanceOptions,
): Promise<Plan> {
  const emit = opts.emit ?? (() => {});
  const count = networksOf(lab.topology ?? 'direct').length;
  const used = await runtime.usedSubnets();
  let start = randomPoolStart();
  for (let attempt = 0; ; attempt++) {
    const subnets = pickSubnets(used, count, start);
    // The CLI always says who the lab is for; a caller that does not (a test, the benchmark) gets the values of a
    // fixed id, so that a lab with variants still runs.
    const variables = variantValues(lab, opts.student ?? REFERENCE_STUDENT);
    const plan = planLab({ lab, instance: id, image: opts.image, subnets, labels, variables });
    const created: string[] = [];
    try {
      throwIfAborted(opts.signal, 'network creation');
      // allSettled so that cleanup knows every network that exists.
      const nets = await Promise.allSettled(
        plan.networks.map(async (net) => {
          await runtime.createNetwork({
            name: net.name,
            subnet: net.subnet,
            gateway: net.gateway,
            internal: true,
            labels: net.labels,
            options: net.options,
          });
          created.push(net.name);
          emit({ type: 'network', name: net.name, subnet: net.subnet });
        }),
      );
      const failedNet = nets.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failedNet) throw failedNet.reason;
      return plan;
    } catch (e) {
      await Promise.all(created.map((n) => runtime.removeNetwork(n).catch(() => {})));
      if (!(e instanceof SubnetTakenError) || attempt >= SUBNET_ATTEMPTS) throw e;
      log('subnet taken (%s), trying others', e.message);
      used.push(...subnets);
      start = randomPoolStart();
    }
  }
}

async function createNode(runtime: Runtime, node: NodePlan, opts: InstanceOptions): Promise<void> {
  throwIfAborted(opts.signal, 'container creation');
  const [first, ...rest] = node.interfaces;
  await runtime.createContainer({
    name: node.name,
    hostname: node.hostname,
    image: node.image,
    cmd: node.cmd,
    labels: node.labels,
    network: { name: first!.networkName, ip: first!.ip },
    sysctls: node.sysctls,
    capAdd: [...NODE_SECURITY.capAdd],
    capDrop: [...NODE_SECURITY.capDrop],
    securityOpt: [...NODE_SECURITY.securityOpt],
    readOnlyRootfs: NODE_SECURITY.readOnlyRootfs,
    tmpfs: { ...NODE_SECURITY.tmpfs },
    memoryBytes: NODE_SECURITY.memoryBytes,
    pidsLimit: NODE_SECURITY.pidsLimit,
    ulimits: NODE_SECURITY.ulimits,
  });
  for (const iface of rest) await runtime.connectNetwork(node.name, iface.networkName, iface.ip);
  throwIfAborted(opts.signal, 'container start');
  await runtime.startContainer(node.name);
  // Wiring and routes (plan.ts); for a routed lab the tunnels need both ends, but each end can be configured
  // on its own: packets only flow once both are up, before any step runs. All of a node's setup in one exec:
  // each exec costs a round trip of create, attach, start and inspect (60-100 ms).
  // The segment recorder starts in the same exec, last, so it is listening before any step runs (it sees every
  // interface, the tunnels made just before included). TCPLAB_CAPTURE=0 leaves it out.
  const setup = !(opts.capture ?? process.env.TCPLAB_CAPTURE !== '0') ? node.setup : [...node.setup, CAPTURE_START];
  if (setup.length) {
    const res = await runtime.exec(node.name, setupScript(setup), { timeoutMs: SETUP_TIMEOUT_MS });
    if (res.exitCode !== 0) throw new EngineError(`could not set up the network on ${node.key}: ${(res.stderr || res.stdout).trim()}`);
  }
  opts.emit?.({ type: 'node', node: node.key, name: node.name, ips: node.interfaces.map((i) => i.ip) });
}

/** Starts images/node/tcplab-capture in the background; it returns once its socket is open. */
const CAPTURE_START = ['tcplab-capture', 'start'];

/** A node's setup commands (planner output, never lab text) as one `sh -c` in the container; the first that
 *  fails stops it and is named on stderr. */
export function setupScript(setup: string[][]): string[] {
  const run = 'run() { "$@" || { rc=$?; echo "($*) exited $rc" >&2; exit "$rc"; }; }';
  return ['sh', '-c', [run, ...setup.map((argv) => `run ${shellQuote(argv)}`)].join('\n')];
}
