// A Compose file rendered by src/plan/compose.ts, brought up with whichever Compose is installed (`docker
// compose` v2 or `docker-compose` v1): the machines come up with the plan's hardening and reach each other
// (across the firewall for the routed topology).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { AgentClient } from '../../src/engine/agent-client.js';
import { describeDocker, required } from '../helpers/docker.js';
import { COMPOSE_TOPOLOGIES, planCompose, renderCompose, topologyLab } from '../../src/plan/compose.js';
import { COMPOSE_IMAGE } from '../../src/plan/plan.js';
import { newInstanceId } from '../../src/engine/provision.js';
import { pickSubnets } from '../../src/engine/subnets.js';
import { networksOf } from '../../src/lab/topology.js';
import { findCompose, missingComposeError } from '../helpers/compose.js';

const run = promisify(execFile);
const composeCli = await findCompose();
if (required && !composeCli) throw missingComposeError();

const dir = mkdtempSync(join(tmpdir(), 'tcplab-compose-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeDocker('compose files in real containers', (env) => {
  it.skipIf(!composeCli).each(COMPOSE_TOPOLOGIES)(
    `the %s topology comes up with ${composeCli?.argv.join(' ') ?? 'Compose'} ${composeCli?.version ?? ''} and its nodes reach each other`,
    async (topology) => {
      // The committed files use fixed subnets that a running lab may hold; render the same plan with free
      // subnets and a fresh name instead (the unit test pins the committed files to this renderer).
      const instance = env.track(`ct${newInstanceId()}`);
      const subnets = pickSubnets(await env.runtime.usedSubnets(), networksOf(topology).length, Math.floor(Math.random() * 512));
      const plan = planCompose({ lab: topologyLab(topology), instance, subnets });
      const file = join(dir, `${topology}.yaml`);
      writeFileSync(file, renderCompose(plan, { buildContext: fileURLToPath(new URL('../../images/node', import.meta.url)) }));
      const [bin, ...pre] = composeCli!.argv;
      const compose = (...args: string[]) => run(bin!, [...pre, '-f', file, '-p', instance, ...args], { timeout: 120_000 });
      try {
        await compose('up', '-d', '--no-build');
        const client = plan.nodes.find((n) => n.key === 'client')!;
        const server = plan.nodes.find((n) => n.key === 'server')!;
        // The containers carry the plan's hardening.
        const inspected = (await env.runtime.inspectContainer(client.name)) as {
          Image: string;
          HostConfig: { CapAdd: string[]; ReadonlyRootfs: boolean; Privileged: boolean; Ulimits: { Name: string; Soft: number }[] };
        };
        expect(inspected.HostConfig.CapAdd.sort()).toEqual(['NET_ADMIN', 'NET_RAW', 'SETGID', 'SETPCAP', 'SETUID']);
        expect(inspected.HostConfig.ReadonlyRootfs).toBe(true);
        expect(inspected.HostConfig.Privileged).toBe(false);
        // The explicit ulimits that let rootful Podman start the nodes are in the file too.
        expect(Object.fromEntries(inspected.HostConfig.Ulimits.map((u) => [u.Name, u.Soft]))).toEqual({ nofile: 1024, nproc: 1024 });
        const fw = plan.nodes.find((n) => n.key === 'firewall');
        // A rule with no target only counts what the firewall forwards to port 5555.
        if (fw)
          expect(
            (await env.runtime.exec(fw.name, ['iptables', '-A', 'FORWARD', '-p', 'tcp', '--dport', '5555'], { timeoutMs: 10_000 }))
              .exitCode,
          ).toBe(0);
        // A listener on the server, a connection from the client (the routed setup runs in the container's
        // command, so allow it a moment).
        // Through the server's agent, the main process of a container Compose made, as tcplab would.
        const agent = new AgentClient(env.runtime, server.name, 'server');
        const started = await agent.run({ name: 'srv', argv: ['nc', '-l', '5555'], background: true });
        agent.close();
        expect(started.pid).toBeGreaterThan(0);
        let probe = { exitCode: -1, stdout: '', stderr: '' };
        for (let i = 0; i < 20 && probe.exitCode !== 0; i++) {
          probe = await env.runtime.exec(client.name, ['nc', '-z', '-v', '-w', '2', plan.vars['server.ip']!, '5555'], {
            timeoutMs: 10_000,
          });
          if (probe.exitCode !== 0) await new Promise((r) => setTimeout(r, 250));
        }
        expect(probe.exitCode, probe.stdout + probe.stderr).toBe(0);
        expect(probe.stdout + probe.stderr).toMatch(/succeeded/);
        if (fw) {
          // The client's segments went through the firewall's FORWARD chain.
          const counters = await env.runtime.exec(fw.name, ['iptables-save', '-c', '-t', 'filter'], { timeoutMs: 10_000 });
          const m = /^\[(\d+):\d+\] -A FORWARD -p tcp -m tcp --dport 5555$/m.exec(counters.stdout);
          expect(Number(m?.[1] ?? 0), counters.stdout).toBeGreaterThanOrEqual(3);
        }
        expect(plan.image).toBe(COMPOSE_IMAGE);
      } finally {
        await compose('down', '-v', '--remove-orphans').catch(() => {});
      }
      expect(await env.leftovers()).toEqual([]);
    },
    180_000,
  );
});
