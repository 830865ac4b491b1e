// The shapes a lab can have. Pure data: which machines, on which bridges, with which address and routes.
import type { NodeName, Topology } from './schema.js';

interface TopologyNode {
  name: NodeName;
  /** Networks this node is attached to, first one primary (its {{name.ip}}). */
  networks: string[];
  /** Host part of its address on each network (x in 198.18.N.x). */
  host: number;
  /** Routes it needs: destination network key -> router node. */
  routes: { to: string; via: NodeName }[];
  /** Sysctls the topology itself needs (the lab's own come on top). */
  sysctls: Record<string, string>;
}

const TOPOLOGIES: Record<Topology, TopologyNode[]> = {
  direct: [
    { name: 'client', networks: ['lan'], host: 2, routes: [], sysctls: {} },
    { name: 'server', networks: ['lan'], host: 3, routes: [], sysctls: {} },
  ],
  routed: [
    { name: 'client', networks: ['front'], host: 2, routes: [{ to: 'back', via: 'firewall' }], sysctls: {} },
    { name: 'server', networks: ['back'], host: 3, routes: [{ to: 'front', via: 'firewall' }], sysctls: {} },
    { name: 'firewall', networks: ['front', 'back'], host: 4, routes: [], sysctls: { 'net.ipv4.ip_forward': '1' } },
  ],
};

/**
 * How a topology's networks are wired. 'bridge': the nodes use the addresses Docker gives them on the bridge.
 * 'vxlan': each network joins exactly two nodes through a VXLAN tunnel over its bridge, because Docker drops
 * routed traffic on internal bridges (see images/node/tcplab-net); the lab addresses live on the tunnels.
 */
export const WIRING: Record<Topology, 'bridge' | 'vxlan'> = { direct: 'bridge', routed: 'vxlan' };

/** Host part of a node's tunnel-underlay address on a vxlan-wired network (the lab address's host + 100). */
export const UNDERLAY_OFFSET = 100;

export function nodesOf(topology: Topology): TopologyNode[] {
  return TOPOLOGIES[topology];
}

export function networksOf(topology: Topology): string[] {
  return [...new Set(TOPOLOGIES[topology].flatMap((n) => n.networks))];
}
