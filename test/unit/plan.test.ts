import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { overlaps, planLab, subnetAt } from '../../src/plan/plan.js';
import { expand } from '../../src/lab/templates.js';
import { pickSubnets } from '../../src/engine/subnets.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { shellQuote } from '../../src/plan/shell.js';

describe('planLab', () => {
  const lab = resolveLab('2').lab;
  const plan = planLab({ lab, instance: 'abc123', image: 'tcplab/node:x', subnets: ['198.18.7.0/24'] });

  it('names and labels everything after the instance', () => {
    expect(plan.networks.map((n) => n.name)).toEqual(['tcplab-abc123-lan']);
    expect(plan.nodes.map((n) => n.name)).toEqual(['tcplab-abc123-client', 'tcplab-abc123-server']);
    for (const r of [...plan.networks, ...plan.nodes]) {
      expect(r.labels).toMatchObject({
        'io.tcplab.managed': 'true',
        'io.tcplab.instance': 'abc123',
        'io.tcplab.lab': 'incomplete-handshake',
      });
    }
    expect(plan.networks[0]!.internal).toBe(true);
  });

  it("gives fixed addresses and the lab's sysctls", () => {
    expect(plan.vars).toMatchObject({ 'client.ip': '198.18.7.2', 'server.ip': '198.18.7.3', 'net.lan': '198.18.7.0/24' });
    expect(plan.nodes[0]!.sysctls).toEqual({ 'net.ipv4.tcp_syn_retries': '6' });
  });

  it('routes the routed topology through the firewall', () => {
    const routed = planLab({ lab: { ...lab, topology: 'routed' }, instance: 'r', image: 'i', subnets: ['198.18.1.0/24', '198.18.2.0/24'] });
    const byKey = Object.fromEntries(routed.nodes.map((n) => [n.key, n]));
    expect(byKey.firewall!.interfaces.map((i) => i.ip)).toEqual(['198.18.1.4', '198.18.2.4']);
    expect(byKey.firewall!.sysctls['net.ipv4.ip_forward']).toBe('1');
    expect(byKey.client!.routes).toEqual([{ to: '198.18.2.0/24', via: '198.18.1.4' }]);
    expect(byKey.server!.routes).toEqual([{ to: '198.18.1.0/24', via: '198.18.2.4' }]);
  });

  it('expands only known templates', () => {
    expect(expand('{{server.ip}}:5555', plan.vars)).toBe('198.18.7.3:5555');
    expect(() => expand('{{host.ip}}', plan.vars)).toThrow(/unknown template/);
  });
});

describe('subnets', () => {
  it('stay inside 198.18.0.0/15', () => {
    expect(subnetAt(0)).toBe('198.18.0.0/24');
    expect(subnetAt(511)).toBe('198.19.255.0/24');
    expect(subnetAt(512)).toBe('198.18.0.0/24');
  });
  it('skip every subnet the engine already uses, including wider ones', () => {
    expect(overlaps('198.18.0.0/16', '198.18.200.0/24')).toBe(true);
    expect(overlaps('172.17.0.0/16', '198.18.0.0/24')).toBe(false);
    expect(pickSubnets(['198.18.0.0/24', '198.18.1.0/24'], 2, 0)).toEqual(['198.18.2.0/24', '198.18.3.0/24']);
    expect(pickSubnets(['198.18.0.0/16'], 1, 0)).toEqual(['198.19.0.0/24']);
    expect(() => pickSubnets(['198.18.0.0/15'], 1, 0)).toThrow(/no free subnet/);
  });
});

describe('lab plan', () => {
  const plan = (args: string[]) =>
    spawnSync(process.execPath, ['bin/lab.js', 'plan', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, NO_COLOR: '1' },
    });

  it("shows a task's probe, marked as the probe, after the step's commands and the solution (text)", () => {
    const r = plan(['4']);
    expect(r.status).toBe(0);
    const task = r.stdout.slice(r.stdout.indexOf('Your task: refuse instead of hanging'));
    expect(task).toMatch(/^ {3}firewall\$ iptables -R FORWARD 1 .* tcp-reset\n {3}probe: client\$ nc -v -w 3 \S+ 5555$/m);
  });

  it("shows a task's probe (--json): a list of its own, the step's actions as before", () => {
    const r = plan(['4', '--json']);
    expect(r.status).toBe(0);
    const steps = (JSON.parse(r.stdout) as { steps: { id: string; actions: string[]; probe?: string[] }[] }).steps;
    const task = steps.find((s) => s.probe)!;
    expect(task.actions).toEqual([expect.stringMatching(/^firewall\$ iptables -R FORWARD 1 .*tcp-reset$/)]);
    expect(task.probe).toEqual([expect.stringMatching(/^client\$ nc -v -w 3 198\.\S+ 5555$/)]);
    expect(steps.filter((s) => s.probe)).toHaveLength(1);
  });
});

describe('lab plan, a write', () => {
  it('shows what is typed into which command (it was an internal error: a write has no run)', () => {
    const r = spawnSync(process.execPath, ['bin/lab.js', 'plan', '3'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ {3}client: write to client: "hello\\n"$/m);
  });
});

describe('a command shown to a person', () => {
  it('quotes words with an apostrophe in double quotes, and means the same to a shell', () => {
    const argv = ['tcplab-sock', '--fail', "the server's ping got no answer", "it's $HOME", 'a "b"', "x'y!"];
    const shown = shellQuote(argv);
    expect(shown).toContain(`--fail "the server's ping got no answer"`);
    expect(shown).not.toContain(`'\\''s ping`);
    // Both shells read back the very words.
    for (const sh of ['bash', 'sh']) {
      const r = spawnSync(sh, ['-c', `for a in ${shown}; do printf '%s\\n' "$a"; done`], { encoding: 'utf8' });
      expect(r.stdout.split('\n').slice(0, -1), sh).toEqual(argv);
    }
  });
});
