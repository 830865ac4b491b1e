// `lab doctor`'s isolation line is a real check: it fails when a lab node has a route out, or when the host
// answers at the bridge's gateway address, and passes only when neither happens.
import { describe, expect, it } from 'vitest';
import { isolation } from '../../src/cli/commands/doctor.js';
import type { ExecResult } from '../../src/runtime/runtime.js';
import { planLab } from '../../src/plan/plan.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { studentArgv } from '../../src/observe/agent-protocol.js';

const plan = planLab({ lab: resolveLab('1').lab, instance: 'aaaa0001', image: 'x', subnets: ['198.18.9.0/24'] });

function node(answers: Record<string, Partial<ExecResult>>) {
  const calls: string[][] = [];
  return {
    plan,
    calls,
    async exec(_node: string, argv: string[]): Promise<ExecResult> {
      calls.push(argv);
      // Run as the student: tcplab-agent student -- CMD...
      const a = answers[argv[argv.indexOf('--') + 1]!] ?? {};
      return { argv, exitCode: 1, stdout: '', stderr: '', durationMs: 1, ...a };
    },
  };
}

describe("doctor's isolation check", () => {
  it('passes when there is no route out and nothing answers at the gateway', async () => {
    const n = node({ ip: { exitCode: 2, stderr: 'RTNETLINK answers: Network is unreachable' }, nc: { stderr: 'timed out' } });
    const c = await isolation(n);
    expect(c).toMatchObject({ name: 'isolation', ok: true });
    expect(n.calls).toEqual([studentArgv(['ip', 'route', 'get', '192.0.2.1']), studentArgv(['nc', '-vz', '-w', '1', '198.18.9.1', '22'])]);
  });

  it('fails when a node has a default route out of the lab', async () => {
    const c = await isolation(node({ ip: { exitCode: 0, stdout: '192.0.2.1 via 198.18.9.1 dev eth0 src 198.18.9.2' } }));
    expect(c.ok).toBe(false);
    expect(c.detail).toMatch(/route out of the lab: 192\.0\.2\.1 via 198\.18\.9\.1/);
  });

  it('fails when the host answers at the gateway (refused is an answer too)', async () => {
    const c = await isolation(
      node({ ip: { exitCode: 2 }, nc: { stderr: 'nc: connect to 198.18.9.1 port 22 (tcp) failed: Connection refused' } }),
    );
    expect(c.ok).toBe(false);
    expect(c.detail).toMatch(/host answers .* 198\.18\.9\.1/);
  });
});
