// The Compose files are renderings of the same plan the engine applies; the committed ones must not drift.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { COMPOSE_TOPOLOGIES, planCompose, renderCompose, renderTopologyCompose, topologyLab } from '../../src/plan/compose.js';
import { COMPOSE_IMAGE } from '../../src/plan/plan.js';
import { NODE_SECURITY } from '../../src/plan/plan.js';
import { resolveLab } from '../../src/lab/catalogue.js';

const committed = (t: string) => readFileSync(new URL(`../../compose/${t}.yaml`, import.meta.url), 'utf8');

interface Service {
  image: string;
  command: string[];
  cap_add: string[];
  cap_drop: string[];
  security_opt: string[];
  read_only: boolean;
  mem_limit: number;
  pids_limit: number;
  sysctls?: Record<string, string>;
  networks: Record<string, { ipv4_address: string }>;
}
interface ComposeFile {
  version: string;
  services: Record<string, Service>;
  networks: Record<string, { name: string; internal: boolean; ipam: { config: { subnet: string }[] } }>;
}

describe('compose files', () => {
  it.each(COMPOSE_TOPOLOGIES)('compose/%s.yaml is exactly what the renderer produces (run `npm run compose`)', (t) => {
    expect(committed(t)).toBe(renderTopologyCompose(t));
  });

  it.each(COMPOSE_TOPOLOGIES)('compose/%s.yaml holds the plan: image, hardening, internal networks, addresses', (t) => {
    const file = parse(committed(t)) as ComposeFile;
    const plan = planCompose({ lab: topologyLab(t) });
    expect(Object.keys(file.services).sort()).toEqual(plan.nodes.map((n) => n.key).sort());
    for (const node of plan.nodes) {
      const s = file.services[node.key]!;
      expect(s.image).toBe(COMPOSE_IMAGE);
      // The student's two, and the three the agent uses once to become its own user (never a student's).
      expect(s.cap_add).toEqual(['NET_ADMIN', 'NET_RAW', 'SETUID', 'SETGID', 'SETPCAP']);
      expect(s.cap_drop).toEqual(['ALL']);
      expect(s.security_opt).toContain('no-new-privileges');
      expect(s.read_only).toBe(true);
      expect(s.mem_limit).toBe(NODE_SECURITY.memoryBytes);
      expect(s.pids_limit).toBe(NODE_SECURITY.pidsLimit);
      expect(s.sysctls ?? {}).toEqual(node.sysctls);
      expect(Object.fromEntries(Object.entries(s.networks).map(([k, v]) => [k, v.ipv4_address]))).toEqual(
        Object.fromEntries(node.interfaces.map((i) => [i.network, i.ip])),
      );
      // The setup commands (tunnels and routes of a routed lab) run before the agent starts, and the agent is last.
      for (const argv of node.setup) expect(s.command.join(' ')).toContain(argv.join(' '));
      expect(s.command.join(' ')).toMatch(/tcplab-agent$/);
    }
    for (const net of plan.networks) {
      expect(file.networks[net.key]).toMatchObject({ name: net.name, internal: true, ipam: { config: [{ subnet: net.subnet }] } });
    }
  });

  it('the routed file routes the client to the server through the firewall', () => {
    const file = parse(committed('routed')) as ComposeFile;
    expect(file.services.firewall!.sysctls).toMatchObject({ 'net.ipv4.ip_forward': '1' });
    expect(file.services.client!.command.join(' ')).toMatch(/ip route replace 198\.19\.252\.0\/24 via 198\.19\.251\.4/);
  });

  it('a lab renders with its own sysctls', () => {
    const { lab } = resolveLab('6');
    const file = parse(renderCompose(planCompose({ lab }))) as ComposeFile;
    expect(file.services.server!.sysctls).toMatchObject({ 'net.ipv4.tcp_rto_max_ms': '1000' });
  });
});

describe('lab compose: where the image is built from', () => {
  const cli = (args: string[], cwd: string) =>
    spawnSync(process.execPath, [fileURLToPath(new URL('../../bin/lab.js', import.meta.url)), 'compose', ...args], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', DOCKER_HOST: 'tcp://127.0.0.1:1' },
    });
  const contexts = (text: string) =>
    Object.values((parse(text) as { services: Record<string, { build?: { context: string } }> }).services).map((s) => s.build?.context);

  it('from anywhere: the installed images/node, which holds the Dockerfile, not a path that fits only the clone', () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'tcplab-compose-'));
    try {
      const printed = cli(['6'], elsewhere).stdout;
      cli(['6', '-o', 'lab6.yaml'], elsewhere);
      for (const text of [printed, readFileSync(join(elsewhere, 'lab6.yaml'), 'utf8')]) {
        const found = contexts(text);
        expect(found.length).toBe(3);
        for (const c of found) {
          expect(isAbsolute(c!), c).toBe(true);
          expect(existsSync(join(c!, 'Dockerfile'))).toBe(true);
        }
      }
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it("written inside tcplab's folder: relative, as the committed files are", () => {
    const out = fileURLToPath(new URL('../../compose/.test-lab6.yaml', import.meta.url));
    try {
      cli(['6', '-o', out], tmpdir());
      expect(new Set(contexts(readFileSync(out, 'utf8')))).toEqual(new Set(['../images/node']));
    } finally {
      rmSync(out, { force: true });
    }
  });
});
