// Bringing one lab instance up: its networks (on free subnets, retrying when another process took the same one
// at the same moment), its hardened containers, and each node's network setup. On any failure, or Ctrl-C,
// whatever was created is removed before the error goes up: nothing half-built stays behind.
import { randomBytes } from 'node:crypto';
import createDebug from 'debug';
import type { Lab } from '../lab/schema.js';
import { networksOf } from '../lab/topology.js';
import { LABEL, NODE_SECURITY, planLab, type NetworkPlan, type NodePlan, type Plan } from '../plan/plan.js';
import { SubnetTakenError, type ContainerSpec, type NetworkSpec, type Runtime } from '../runtime/runtime.js';
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
  let instance: Instance | undefined;
  try {
    throwIfAborted(opts.signal, 'start');
    const plan = await createNetworks(runtime, lab, id, labels, opts);
    instance = new Instance(runtime, plan, opts);
    const inst = instance;
    // allSettled, not all: on a failure the other nodes' calls must finish before cleanup lists what exists.
    const settled = await Promise.allSettled(plan.nodes.map((node) => createNode(runtime, node, inst, opts)));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    throwIfAborted(opts.signal, 'start');
    emit({ type: 'ready', instance: id, ms: clock.now() - t0 });
    return inst;
  } catch (e) {
    instance?.close();
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
          await runtime.createNetwork(networkSpec(net));
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

/** A lab network as every lab makes it: internal, from its plan. */
export function networkSpec(net: NetworkPlan): NetworkSpec {
  return { name: net.name, subnet: net.subnet, gateway: net.gateway, internal: true, labels: net.labels, options: net.options };
}

/** A node's container as every lab makes it: its plan, with the hardening of NODE_SECURITY. */
export function containerSpec(node: NodePlan, capture = true): ContainerSpec {
  const first = node.interfaces[0]!;
  return {
    name: node.name,
    hostname: node.hostname,
    image: node.image,
    // Without capture (TCPLAB_CAPTURE=0), the agent opens no packet socket; segment checks then cannot tell.
    cmd: capture ? node.cmd : [...node.cmd, '--no-capture'],
    labels: node.labels,
    network: { name: first.networkName, ip: first.ip },
    sysctls: node.sysctls,
    capAdd: [...NODE_SECURITY.capAdd, ...NODE_SECURITY.agentCapAdd],
    capDrop: [...NODE_SECURITY.capDrop],
    securityOpt: [...NODE_SECURITY.securityOpt],
    readOnlyRootfs: NODE_SECURITY.readOnlyRootfs,
    tmpfs: { ...NODE_SECURITY.tmpfs },
    memoryBytes: NODE_SECURITY.memoryBytes,
    pidsLimit: NODE_SECURITY.pidsLimit,
    ulimits: NODE_SECURITY.ulimits,
  };
}

async function createNode(runtime: Runtime, node: NodePlan, instance: Instance, opts: InstanceOptions): Promise<void> {
  throwIfAborted(opts.signal, 'container creation');
  await runtime.createContainer(containerSpec(node, opts.capture ?? process.env.TCPLAB_CAPTURE !== '0'));
  for (const iface of node.interfaces.slice(1)) await runtime.connectNetwork(node.name, iface.networkName, iface.ip);
  throwIfAborted(opts.signal, 'container start');
  await runtime.startContainer(node.name);
  // The agent starts with the container and records segments from its first moment, before any step. The
  // wiring and routes (plan.ts) go through it too, one command after another, with no exec of their own; for a
  // routed lab the tunnels need both ends, but each end can be configured on its own: packets only flow once
  // both are up, before any step runs.
  const agent = instance.agent(node.key);
  for (const argv of node.setup) {
    let status;
    try {
      status = (await agent.run({ argv, timeoutMs: SETUP_TIMEOUT_MS })).status!;
    } catch (e) {
      throwIfAborted(opts.signal, 'network setup');
      throw new EngineError(`could not set up the network on ${node.key}: ${(e as Error).message}`, undefined, 3);
    }
    if (status.exit !== 0)
      throw new EngineError(
        `could not set up the network on ${node.key}: (${argv.join(' ')}) exited ${status.exit}: ${status.output.trim()}`,
      );
  }
  opts.emit?.({ type: 'node', node: node.key, name: node.name, ips: node.interfaces.map((i) => i.ip) });
}
