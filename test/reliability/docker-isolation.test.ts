// Isolation between concurrent runs (separate processes), and least privilege seen from outside (inspect) and
// from inside a lab container. Traffic goes only to the lab's own containers, to another lab's containers in
// 198.18.0.0/15 made by this test, and to the bridge gateway address; nothing else is aimed at.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createServer, type Server } from 'node:net';
import { studentArgv } from '../../src/observe/agent-protocol.js';
import { describeDocker } from '../helpers/docker.js';
import type { Instance } from '../../src/engine/instance.js';
import { createInstance, newInstanceId } from '../../src/engine/provision.js';
import { LABEL, SUBNET_POOL } from '../../src/plan/plan.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { docker, LabRun, leftoversOf, removeOwnedBy } from './cli.js';

describeDocker('reliability: isolation and least privilege', (env) => {
  const owners = new Set<string>();
  afterAll(async () => {
    for (const o of owners) await removeOwnedBy(o);
  });

  it('10 concurrent `lab grade 1 2` processes: all pass, no shared network, no subnet or name collision', async () => {
    const runs = Array.from({ length: 10 }, () => new LabRun(['grade', '1', '2', '--json']));
    for (const r of runs) owners.add(r.owner);
    const ownerSet = new Set(runs.map((r) => r.owner));
    // Watch the engine while they run: every network of these runs, with its subnet and owner.
    const seen = new Map<string, { subnet: string; owner: string; instance: string; ticks: Set<number> }>();
    let tick = 0;
    const attached = new Map<string, Set<string>>(); // network name -> instances of the containers on it
    let running = true;
    const watch = (async () => {
      while (running) {
        tick++;
        const nets = await docker.docker.listNetworks({ filters: JSON.stringify({ label: [`${LABEL.managed}=true`] }) } as object);
        for (const n of nets) {
          const owner = n.Labels?.[LABEL.pid] ?? '';
          if (!ownerSet.has(owner)) continue;
          const subnet = n.IPAM?.Config?.[0]?.Subnet ?? '';
          const prev = seen.get(n.Name);
          if (prev) expect(prev.subnet).toBe(subnet);
          seen.set(n.Name, { subnet, owner, instance: n.Labels![LABEL.instance]!, ticks: (prev?.ticks ?? new Set<number>()).add(tick) });
          // Which instances' containers sit on this network (inspect shows the endpoints).
          try {
            const info = (await docker.docker.getNetwork(n.Id).inspect()) as { Containers?: Record<string, { Name: string }> };
            const set = attached.get(n.Name) ?? new Set<string>();
            for (const c of Object.values(info.Containers ?? {})) set.add(c.Name.replace(/^tcplab-([0-9a-f]+)-.*$/, '$1'));
            attached.set(n.Name, set);
          } catch {
            // gone between list and inspect
          }
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    const exits = await Promise.all(runs.map((r) => r.exited));
    running = false;
    await watch;
    for (const e of exits) {
      expect(e.code, e.stderr.slice(-2000)).toBe(0);
      const report = JSON.parse(e.stdout) as { passed: boolean; labs: { passed: boolean; instance: string }[] };
      expect(report.passed).toBe(true);
      expect(report.labs.map((l) => l.passed)).toEqual([true, true]);
    }
    // 10 processes x 2 labs = 20 instances, each with its own id.
    const instances = exits.flatMap((e) => (JSON.parse(e.stdout) as { labs: { instance: string }[] }).labs.map((l) => l.instance));
    expect(new Set(instances).size).toBe(20);
    // Networks: names unique per instance, and a network only ever held its own instance's containers.
    for (const [name, n] of seen) {
      expect(name.startsWith(`tcplab-${n.instance}-`)).toBe(true);
      for (const inst of attached.get(name) ?? []) expect(inst).toBe(n.instance);
    }
    // Subnets: two networks seen in the same sample never share a /24 (a subnet may be reused after removal).
    const all = [...seen.values()];
    let reused = 0;
    for (let i = 0; i < all.length; i++) {
      for (let j = i + 1; j < all.length; j++) {
        if (all[i]!.subnet !== all[j]!.subnet) continue;
        reused++;
        const together = [...all[i]!.ticks].filter((t) => all[j]!.ticks.has(t));
        expect(together, `${all[i]!.instance} and ${all[j]!.instance} both on ${all[i]!.subnet}`).toEqual([]);
      }
    }
    console.log(
      `isolation: ${seen.size} networks of ${new Set(all.map((n) => n.instance)).size} instances seen in ${tick} samples, ${reused} subnet reuses after removal`,
    );
    expect(seen.size).toBeGreaterThan(0);
    for (const r of runs) expect(await leftoversOf(r.owner)).toEqual([]);
  }, 300_000);

  it('two instances picking the same subnet at the same moment: the engine refuses one, it retries elsewhere', async () => {
    // Make both start at the same pool index and believe the engine has no networks (a stale list, as when
    // two processes list at the same moment): the real engine must refuse the overlap, and createInstance retry.
    const blind: Runtime = Object.assign(Object.create(env.runtime) as Runtime, { usedSubnets: async () => [] as string[] });
    const spy = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const lab = resolveLab('1').lab;
    const ids = [env.track(newInstanceId()), env.track(newInstanceId())];
    let made: Instance[] = [];
    try {
      const settled = await Promise.allSettled(ids.map((instance) => createInstance(blind, lab, { image: env.image, instance })));
      made = settled.filter((s): s is PromiseFulfilledResult<Instance> => s.status === 'fulfilled').map((s) => s.value);
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled']);
    } finally {
      spy.mockRestore();
    }
    const subnets = made.map((i) => i.plan.networks[0]!.subnet);
    expect(new Set(subnets).size).toBe(2);
    // Both wanted the pool's middle /24; at most one got it.
    const middle = `198.${18 + (Math.floor(0.5 * SUBNET_POOL.count) >> 8)}.${Math.floor(0.5 * SUBNET_POOL.count) & 255}.0/24`;
    expect(subnets.filter((s) => s === middle).length).toBeLessThanOrEqual(1);
    for (const i of made) await i.down();
  });

  describe_privilege(env);
});

function describe_privilege(env: Parameters<Parameters<typeof describeDocker>[1]>[0]) {
  let a: Instance;
  let b: Instance;
  let hostListener: Server;
  let hostPort = 0;

  beforeAll(async () => {
    // The shipped labs are direct; a routed plan of the same lab covers the firewall node and two bridges.
    const direct = resolveLab('1').lab;
    const routed = { ...direct, slug: 'routed-probe', topology: 'routed' as const };
    a = await createInstance(env.runtime, routed, { image: env.image, instance: env.track(newInstanceId()) });
    b = await createInstance(env.runtime, direct, { image: env.image, instance: env.track(newInstanceId()) });
    // B's server listens; A's containers must not reach it. A's own server listens; A's client must reach it.
    for (const [inst, port] of [
      [a, 7100],
      [b, 7200],
    ] as const) {
      await inst.runAction({ on: 'server', run: ['nc', '-lk', String(port)], name: 'l', background: true });
    }
    // A listener on the host, on every address, so that reaching the gateway address would connect.
    hostListener = createServer((s) => s.destroy());
    await new Promise<void>((r) => hostListener.listen(0, '0.0.0.0', r));
    hostPort = (hostListener.address() as { port: number }).port;
  });

  afterAll(async () => {
    hostListener?.close();
    await a?.down();
    await b?.down();
  });

  it('from outside: every container is hardened (inspect)', async () => {
    for (const inst of [a, b]) {
      for (const node of inst.plan.nodes) {
        const c = (await env.runtime.inspectContainer(node.name)) as {
          HostConfig: Record<string, unknown>;
          Mounts: { Source?: string; Destination?: string }[];
          Config: { User?: string };
        };
        const h = c.HostConfig;
        expect(h.CapDrop).toEqual(['ALL']);
        // NET_ADMIN and NET_RAW for everything a student runs; SETUID, SETGID and SETPCAP only for the agent to
        // become its own user at start (inside: no student process has them, below).
        expect([...(h.CapAdd as string[])].sort()).toEqual(['NET_ADMIN', 'NET_RAW', 'SETGID', 'SETPCAP', 'SETUID']);
        expect(h.SecurityOpt).toContain('no-new-privileges');
        expect(h.Privileged).toBe(false);
        expect(h.ReadonlyRootfs).toBe(true);
        expect(h.Memory).toBeGreaterThan(0);
        expect(h.Memory).toBeLessThanOrEqual(256 * 1024 * 1024);
        expect(h.PidsLimit).toBeGreaterThan(0);
        expect(h.PidsLimit).toBeLessThanOrEqual(512);
        expect(h.NetworkMode).not.toBe('host');
        expect(h.PidMode ?? '').toBe('');
        expect(h.IpcMode).not.toBe('host');
        expect(h.Devices ?? []).toEqual([]);
        expect(h.Binds ?? []).toEqual([]);
        expect(c.Mounts.filter((m) => /docker\.sock/.test(`${m.Source} ${m.Destination}`))).toEqual([]);
        expect(c.Mounts).toEqual([]);
      }
    }
    for (const inst of [a, b]) {
      for (const net of inst.plan.networks) {
        const n = (await docker.docker.getNetwork(net.name).inspect()) as { Internal: boolean; Options?: Record<string, string> };
        expect(n.Internal).toBe(true);
        expect(n.Options?.['com.docker.network.bridge.inhibit_ipv4']).toBe('true');
      }
    }
  });

  it('from inside: a student has only NET_ADMIN and NET_RAW, no-new-privileges, a read-only root, no docker socket', async () => {
    for (const node of a.plan.nodes) {
      // As `lab shell` and every answer run: through tcplab-agent student.
      const student = (argv: string[]) => a.exec(node.key, studentArgv(argv));
      const status = await student(['grep', '-E', '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs)', '/proc/self/status']);
      // CAP_NET_ADMIN = 12, CAP_NET_RAW = 13: 0x3000 and nothing else, in every set, for good.
      expect(status.stdout).toMatch(/CapEff:\s+0000000000003000/);
      expect(status.stdout).toMatch(/CapPrm:\s+0000000000003000/);
      expect(status.stdout).toMatch(/CapBnd:\s+0000000000003000/);
      expect(status.stdout).toMatch(/CapAmb:\s+0000000000000000/);
      expect(status.stdout).toMatch(/NoNewPrivs:\s+1/);
      expect((await student(['touch', '/etc/tcplab-rel'])).exitCode).not.toBe(0);
      expect((await student(['mount', '-t', 'tmpfs', 'x', '/mnt'])).exitCode).not.toBe(0);
      expect((await student(['test', '-e', '/var/run/docker.sock'])).exitCode).not.toBe(0);
      expect((await student(['test', '-e', '/run/docker.sock'])).exitCode).not.toBe(0);
      // What the lab needs still works: iptables (NET_ADMIN) and a writable /tmp.
      expect((await student(['iptables', '-S'])).exitCode).toBe(0);
      expect((await student(['touch', '/tmp/ok'])).exitCode).toBe(0);
      // The agent itself, and so every lab command: its own user, the same two capabilities, no others.
      const agent = await student(['grep', '-E', '^(Uid|CapEff|CapBnd)', '/proc/1/status']);
      expect(agent.stdout).toMatch(/Uid:\s+990\s/);
      expect(agent.stdout).toMatch(/CapEff:\s+0000000000003000/);
      expect(agent.stdout).toMatch(/CapBnd:\s+0000000000003000/);
    }
  });

  it('from inside: no default route, the host is not reachable through the gateway, another lab is not reachable', async () => {
    // Positive controls: inside a lab, machines on one bridge reach each other (so a failure below is isolation,
    // not a broken nc). (Client to server across the routed firewall is not used: see the report on routed labs.)
    const own = await b.exec('client', ['nc', '-z', '-w', '2', b.plan.vars['server.ip']!, '7200']);
    expect(own.exitCode, own.stderr).toBe(0);
    const hop = await a.exec('firewall', ['nc', '-z', '-w', '2', a.plan.vars['server.ip']!, '7100']);
    expect(hop.exitCode, hop.stderr).toBe(0);
    for (const node of a.plan.nodes) {
      const routes = await a.exec(node.key, ['ip', '-4', 'route', 'show']);
      expect(routes.exitCode).toBe(0);
      expect(routes.stdout).not.toMatch(/^default/m);
      // The gateway address of each of its bridges, on the port the host listens on: never connects.
      for (const net of a.plan.networks) {
        const gw = await a.exec(node.key, ['nc', '-z', '-w', '2', net.gateway, String(hostPort)]);
        expect(gw.exitCode, `${node.key} -> ${net.gateway}:${hostPort}`).not.toBe(0);
      }
      // The other lab's server, listening on 7200: unreachable (another 198.18 subnet, another bridge).
      const other = await a.exec(node.key, ['nc', '-z', '-w', '2', b.plan.vars['server.ip']!, '7200']);
      expect(other.exitCode, `${node.key} -> other lab`).not.toBe(0);
    }
    // And the other way round.
    const back = await b.exec('client', ['nc', '-z', '-w', '2', a.plan.vars['server.ip']!, '7100']);
    expect(back.exitCode).not.toBe(0);
  });
}
