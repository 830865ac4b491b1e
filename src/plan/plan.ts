// Pure planning: a lab, an instance id and the subnets to use -> everything the engine will create.
// Nothing here talks to Docker, so `--dry-run`, the Compose renderer and the tests all share it.
import type { Lab, NodeName, Topology } from '../lab/schema.js';
import { networksOf, nodesOf, UNDERLAY_OFFSET, WIRING } from '../lab/topology.js';

export const LABEL = {
  managed: 'io.tcplab.managed',
  instance: 'io.tcplab.instance',
  lab: 'io.tcplab.lab',
  node: 'io.tcplab.node',
  pid: 'io.tcplab.pid',
  /** The OS user who started the instance: commands without an instance named act on their own user's labs. */
  owner: 'io.tcplab.owner',
  created: 'io.tcplab.created',
  /** Set on instances kept on purpose (lab start --keep), which `lab clean --stale` leaves alone. */
  keep: 'io.tcplab.keep',
  /** TCPLAB_RUN, when the environment sets it: a tag a harness (the test suite, two files at a time) gives all it
   *  starts, so that it tells its instances from another run's even after the process that made one is gone. */
  run: 'io.tcplab.run',
} as const;

/** The image repository tcplab builds into; each image is tagged by content (src/engine/image.ts). */
export const IMAGE_REPO = 'tcplab/node';

/**
 * A stable tag for the image tcplab used last, which the Compose files name: the content tag changes with
 * images/, so a classroom can `lab doctor` once and then use Compose; without tcplab, `docker-compose up
 * --build` builds it from images/node.
 */
export const COMPOSE_IMAGE = `${IMAGE_REPO}:current`;

/** Bridge options for every lab network: the bridge gets no IPv4 address, so nothing on the host (or beyond)
 *  is reachable from a lab container, not even through the gateway address; lab traffic stays on the bridge. */
const NETWORK_OPTIONS = { 'com.docker.network.bridge.inhibit_ipv4': 'true' } as const;

/** The hardening every lab node gets (see docs/reliability.md "Least privilege"). */
export const NODE_SECURITY = {
  capDrop: ['ALL'],
  /** What every student process has (`lab shell`, an answer, a terminal): root with these two, nothing else. */
  capAdd: ['NET_ADMIN', 'NET_RAW'],
  /** Also in the container's bounding set, for tcplab-agent only: it uses them once, at start, to become its own
   *  user (SETUID, SETGID) and to drop every other capability for good (SETPCAP); `tcplab-agent student`, which
   *  every student process goes through, drops all three before anything of the student's runs. */
  agentCapAdd: ['SETUID', 'SETGID', 'SETPCAP'],
  securityOpt: ['no-new-privileges'],
  readOnlyRootfs: true,
  tmpfs: { '/tmp': 'rw,nosuid,nodev,size=16m', '/run': 'rw,nosuid,nodev,size=4m' },
  memoryBytes: 64 * 1024 * 1024,
  pidsLimit: 128,
  // Given explicitly, not left to the engine: rootful Podman's default NOFILE is above what it may set in a
  // container ("error setting rlimit type 7"), and Docker's default (its daemon's limit) varies by host.
  // 1024 is the usual Linux soft limit and far above what a lab opens (lab 10: 80 sockets).
  ulimits: [
    { name: 'nofile', soft: 1024, hard: 1024 },
    { name: 'nproc', soft: 1024, hard: 1024 },
  ],
} as const;

export interface NetworkPlan {
  key: string;
  name: string;
  subnet: string;
  gateway: string;
  internal: true;
  /** Bridge driver options (no address on the host side: see NETWORK_OPTIONS). */
  options: Record<string, string>;
  labels: Record<string, string>;
}

export interface NodePlan {
  key: NodeName;
  name: string;
  hostname: string;
  image: string;
  /** In attach order; the first is given at create time. */
  interfaces: { network: string; networkName: string; ip: string }[];
  routes: { to: string; via: string }[];
  /** Commands run in the node once it has started, in order, each must succeed: wiring, then routes. */
  setup: string[][];
  sysctls: Record<string, string>;
  labels: Record<string, string>;
  cmd: string[];
}

export interface Plan {
  instance: string;
  lab: { id: number; slug: string; title: string };
  topology: Topology;
  image: string;
  networks: NetworkPlan[];
  nodes: NodePlan[];
  /** Template values: client.ip, server.ip, firewall.ip.front, net.lan ... */
  vars: Record<string, string>;
}

interface PlanInput {
  lab: Lab;
  instance: string;
  image: string;
  /** One /24 per network of the topology, in the order of networksOf(topology), e.g. "198.18.42.0/24". */
  subnets: string[];
  /** Extra labels (pid of the owning process, creation time). */
  labels?: Record<string, string>;
  /** More template values: the student's variants ({'variant.port': '5637'}, src/lab/variants.ts). */
  variables?: Record<string, string>;
}

function resourcePrefix(instance: string): string {
  return `tcplab-${instance}`;
}

export function planLab({ lab, instance, image, subnets, labels = {}, variables = {} }: PlanInput): Plan {
  const topology = lab.topology ?? 'direct';
  const netKeys = networksOf(topology);
  if (subnets.length !== netKeys.length) throw new Error(`plan needs ${netKeys.length} subnets, got ${subnets.length}`);
  const prefix = resourcePrefix(instance);
  const common = { [LABEL.managed]: 'true', [LABEL.instance]: instance, [LABEL.lab]: lab.slug, ...labels };
  const base = new Map(netKeys.map((k, i) => [k, subnetBase(subnets[i]!)]));

  const networks: NetworkPlan[] = netKeys.map((key, i) => ({
    key,
    name: `${prefix}-${key}`,
    subnet: subnets[i]!,
    gateway: `${base.get(key)}.1`,
    internal: true,
    options: { ...NETWORK_OPTIONS },
    labels: { ...common },
  }));

  const vars: Record<string, string> = { ...variables };
  for (const key of netKeys) vars[`net.${key}`] = subnets[netKeys.indexOf(key)]!;
  const topoNodes = nodesOf(topology);
  for (const n of topoNodes) {
    n.networks.forEach((net, i) => {
      const ip = `${base.get(net)}.${n.host}`;
      vars[`${n.name}.ip.${net}`] = ip;
      if (i === 0) vars[`${n.name}.ip`] = ip;
    });
  }

  const vxlan = WIRING[topology] === 'vxlan';
  const setupOf = (n: (typeof topoNodes)[number], routes: NodePlan['routes']): string[][] => {
    // An internal bridge still gives containers a default route (Docker 20.10): drop it, so that anything
    // outside the lab's own subnets is unroutable from inside, not merely dropped further on.
    const cmds: string[][] = [['ip', 'route', 'flush', 'exact', '0.0.0.0/0']];
    if (vxlan) {
      for (const net of n.networks) {
        const peers = topoNodes.filter((t) => t.name !== n.name && t.networks.includes(net));
        if (peers.length !== 1) throw new Error(`a vxlan-wired network joins two nodes; ${net} has ${peers.length + 1}`);
        const b = base.get(net)!;
        const vni = String(10 + netKeys.indexOf(net));
        cmds.push([
          'tcplab-net',
          'vxlan',
          net,
          vni,
          `${b}.${n.host}`,
          `${b}.${n.host + UNDERLAY_OFFSET}`,
          `${b}.${peers[0]!.host + UNDERLAY_OFFSET}`,
          `${b}.${n.host}/24`,
        ]);
      }
    }
    for (const r of routes) cmds.push(['ip', 'route', 'replace', r.to, 'via', r.via]);
    return cmds;
  };

  const nodes: NodePlan[] = topoNodes.map((n) => {
    const routes = n.routes.map((r) => {
      const via = topoNodes.find((t) => t.name === r.via)!;
      // The router's address on the network this node shares with it.
      const shared = via.networks.find((net) => n.networks.includes(net))!;
      return { to: vars[`net.${r.to}`]!, via: vars[`${r.via}.ip.${shared}`]! };
    });
    return {
      key: n.name,
      name: `${prefix}-${n.name}`,
      hostname: n.name,
      image,
      interfaces: n.networks.map((net) => ({ network: net, networkName: `${prefix}-${net}`, ip: vars[`${n.name}.ip.${net}`]! })),
      routes,
      setup: setupOf(n, routes),
      sysctls: { ...n.sysctls, ...stringify(lab.nodes?.[n.name]?.sysctls ?? {}) },
      labels: { ...common, [LABEL.node]: n.name },
      // The agent is the node's main process (under the engine's init): the grader's eyes and hands, out of the
      // student's reach (images/node/tcplab-agent.c).
      cmd: ['tcplab-agent'],
    };
  });

  return { instance, lab: { id: lab.id, slug: lab.slug, title: lab.title }, topology, image, networks, nodes, vars };
}

function stringify(r: Record<string, string | number>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)]));
}

function subnetBase(cidr: string): string {
  const m = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(cidr);
  if (!m) throw new Error(`expected a /24, got ${cidr}`);
  return m[1]!;
}

// Subnets: 198.18.0.0/15 holds 512 /24s. Candidates start at a random place so concurrent processes rarely
// pick the same one; the engine refuses an overlapping pool, and then we take the next.
export const SUBNET_POOL = { first: [198, 18], count: 512 } as const;

export function subnetAt(index: number): string {
  const i = ((index % SUBNET_POOL.count) + SUBNET_POOL.count) % SUBNET_POOL.count;
  return `${SUBNET_POOL.first[0]}.${SUBNET_POOL.first[1] + (i >> 8)}.${i & 255}.0/24`;
}

/** Does a.b.c.d/n overlap 198.18.x.0/24? Both as CIDR strings. */
export function overlaps(a: string, b: string): boolean {
  const [ra, la] = cidr(a);
  const [rb, lb] = cidr(b);
  const len = Math.min(la, lb);
  const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
  return (ra & mask) >>> 0 === (rb & mask) >>> 0;
}

function cidr(text: string): [number, number] {
  const [ip, len] = text.split('/');
  const parts = (ip ?? '').split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) return [0, 32];
  return [((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0, len === undefined ? 32 : Number(len)];
}
