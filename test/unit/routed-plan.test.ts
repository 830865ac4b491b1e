// The routed topology's wiring, planned purely: tunnels over each bridge carry the lab addresses, and routes
// point each end at the firewall. (Docker drops routed traffic on internal bridges; see images/node/tcplab-net.)
import { describe, expect, it } from 'vitest';
import { planLab } from '../../src/plan/plan.js';
import { topologyLab } from '../../src/plan/compose.js';

const plan = planLab({ lab: topologyLab('routed'), instance: 'abcd1234', image: 'img', subnets: ['198.18.10.0/24', '198.18.11.0/24'] });
const node = (k: string) => plan.nodes.find((n) => n.key === k)!;

describe('routed plan', () => {
  it('keeps the lab addresses and template variables', () => {
    expect(plan.vars).toMatchObject({
      'client.ip': '198.18.10.2',
      'server.ip': '198.18.11.3',
      'firewall.ip.front': '198.18.10.4',
      'firewall.ip.back': '198.18.11.4',
    });
  });

  it('wires each network as one tunnel between its two nodes, with matching ends', () => {
    expect(node('client').setup[1]).toEqual([
      'tcplab-net',
      'vxlan',
      'front',
      '10',
      '198.18.10.2',
      '198.18.10.102',
      '198.18.10.104',
      '198.18.10.2/24',
    ]);
    expect(node('firewall').setup).toContainEqual([
      'tcplab-net',
      'vxlan',
      'front',
      '10',
      '198.18.10.4',
      '198.18.10.104',
      '198.18.10.102',
      '198.18.10.4/24',
    ]);
    expect(node('firewall').setup).toContainEqual([
      'tcplab-net',
      'vxlan',
      'back',
      '11',
      '198.18.11.4',
      '198.18.11.104',
      '198.18.11.103',
      '198.18.11.4/24',
    ]);
    expect(node('server').setup[1]).toEqual([
      'tcplab-net',
      'vxlan',
      'back',
      '11',
      '198.18.11.3',
      '198.18.11.103',
      '198.18.11.104',
      '198.18.11.3/24',
    ]);
  });

  it('routes client and server to each other through the firewall, after the tunnels', () => {
    expect(node('client').setup.at(-1)).toEqual(['ip', 'route', 'replace', '198.18.11.0/24', 'via', '198.18.10.4']);
    expect(node('server').setup.at(-1)).toEqual(['ip', 'route', 'replace', '198.18.10.0/24', 'via', '198.18.11.4']);
    expect(node('firewall').sysctls['net.ipv4.ip_forward']).toBe('1');
  });

  it('leaves the direct topology on the addresses Docker gives', () => {
    const direct = planLab({ lab: topologyLab('direct'), instance: 'abcd1234', image: 'img', subnets: ['198.18.12.0/24'] });
    // Only the default route goes: the lab's own subnet stays directly reachable.
    expect(direct.nodes.every((n) => n.setup.length === 1 && n.setup[0]!.join(' ') === 'ip route flush exact 0.0.0.0/0')).toBe(true);
    expect(plan.nodes.every((n) => n.setup[0]!.join(' ') === 'ip route flush exact 0.0.0.0/0')).toBe(true);
  });
});
