// Which lab the page is about, and where its walk is. A `lab start` at a terminal leaves its plan and current
// step in a state file (src/walk/state-files.ts); a lab started with --yes (or kept after one) leaves none, so its
// plan is rebuilt from what the engine says about its containers: the lab (by its label), the instance id and
// the subnets its networks got are all the planner needs, and planning is pure.
import type { Lab, NodeName, Topology } from '../lab/schema.js';
import { networksOf } from '../lab/topology.js';
import { planLab, type Plan } from '../plan/plan.js';
import type { Runtime } from '../runtime/runtime.js';
import { LabError } from '../errors.js';
import type { Walk } from './view.js';

/** The names the planner gives an instance's networks, in its order (the planner is the one place that names them). */
function networkNames(topology: Topology, instance: string): string[] {
  const placeholder = networksOf(topology).map((_, i) => `198.18.${i}.0/24`);
  return planLab({ lab: labStub('-', topology), instance, image: '-', subnets: placeholder }).networks.map((n) => n.name);
}

/** The subnets of a topology's networks, in planLab's order, from the addresses containers have on them. */
export function subnetsOf(topology: Topology, instance: string, attachments: Record<string, string>): string[] {
  return networkNames(topology, instance).map((name) => {
    const ip = attachments[name];
    const m = ip ? /^(\d+\.\d+\.\d+)\.\d+$/.exec(ip) : null;
    if (!m) throw new LabError(`lab instance ${instance} has no address on its network ${name}`, 'is it still starting? try again');
    return `${m[1]}.0/24`;
  });
}

interface InspectShape {
  Config?: { Image?: string };
  NetworkSettings?: { Networks?: Record<string, { IPAddress?: string; IPAMConfig?: { IPv4Address?: string } | null }> };
}

/** A lab whose file this process cannot find (started from a file elsewhere): enough of one to plan with. */
export function labStub(slug: string, topology: Topology): Lab {
  return { id: 0, slug, title: slug, summary: '', intro: '', topology, steps: [{ id: 'unknown', title: slug, explain: '' }] };
}

/** The plan of a running instance, from its containers: network addresses and image. */
export async function rebuildPlan(runtime: Runtime, instance: string, nodes: Map<NodeName, string>, lab: Lab): Promise<Plan> {
  const attachments: Record<string, string> = {};
  let image = '';
  for (const container of nodes.values()) {
    const info = (await runtime.inspectContainer(container)) as InspectShape;
    image ||= info.Config?.Image ?? '';
    for (const [net, a] of Object.entries(info.NetworkSettings?.Networks ?? {})) {
      const ip = a.IPAMConfig?.IPv4Address || a.IPAddress;
      if (ip && !attachments[net]) attachments[net] = ip;
    }
  }
  const topology = lab.topology ?? 'direct';
  const plan = planLab({ lab, instance, image, subnets: subnetsOf(topology, instance, attachments) });
  const missing = plan.nodes.filter((n) => nodes.get(n.key) !== n.name);
  if (missing.length)
    throw new LabError(
      `lab instance ${instance} does not have the machines its lab (${lab.slug}) plans: ${missing.map((n) => n.name).join(', ')} missing`,
      '`lab status` shows what runs; `lab stop ID` removes a broken instance',
    );
  return plan;
}

/** The topology of an instance from the machines it has. */
export function topologyOf(nodes: Iterable<NodeName>): Topology {
  return [...nodes].includes('firewall') ? 'routed' : 'direct';
}

/**
 * Where the walk is: a state file (a `lab start` at a terminal) says which step; without one, a walk whose
 * process still runs does not tell (lab start --yes), and one whose process is gone left the lab as its last
 * step did (--keep).
 */
export function walkOf(state: { stepIndex: number } | undefined, ownerAlive: boolean, steps: number | undefined): Walk {
  if (state && steps !== undefined) {
    const stepIndex = Math.min(state.stepIndex, steps - 1);
    return ownerAlive ? { kind: 'walking', stepIndex } : { kind: 'finished', stepIndex };
  }
  if (steps === undefined) return { kind: 'unknown', reason: "this lab's file is not one tcplab knows here, so its steps are not shown" };
  if (ownerAlive)
    return {
      kind: 'unknown',
      reason: 'its walk runs without a terminal (lab start --yes or lab grade), which does not publish its current step',
    };
  return { kind: 'finished', stepIndex: steps - 1 };
}
