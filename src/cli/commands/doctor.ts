// `lab doctor`: which engine, the lab image, and what a lab needs of them (a lab network, iptables in a
// container, per-node sysctls, ss), each a check with a fix; the checks live beside the command.
import { LabError } from '../../errors.js';
import type { Lab } from '../../lab/schema.js';
import { formatDuration } from '../../lab/duration.js';
import { describeOrigin, imageOrigin } from '../../engine/image.js';
import { createInstance, newInstanceId } from '../../engine/provision.js';
import type { Instance } from '../../engine/instance.js';
import { studentArgv } from '../../observe/agent-protocol.js';
import { removeInstance } from '../../engine/teardown.js';
import { listInstances } from '../../engine/cleanup.js';
import { defineCommand } from '../command.js';
import { IMAGE_OPTION, prepareImage, stderrRenderer } from '../run-tracked.js';

interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

/** A lab that only brings up the direct topology: what `lab doctor` probes with. */
const PROBE_LAB: Lab = {
  id: 999,
  slug: 'doctor',
  title: 'doctor',
  summary: '',
  intro: '',
  topology: 'direct',
  nodes: { client: { sysctls: { 'net.ipv4.tcp_syn_retries': 2 } } },
  steps: [{ id: 'probe', title: 'probe', explain: '' }],
};

/** An address outside every lab (TEST-NET-1, RFC 5737): a lab node must have no route to it. */
const OUTSIDE_ADDRESS = '192.0.2.1';

export const doctorCommand = defineCommand({
  name: 'doctor',
  usage: 'doctor [--json]',
  summary: 'check the Docker engine, the image, and that a lab container can use iptables',
  options: { ...IMAGE_OPTION },
  async run(ctx, values) {
    const checks: DoctorCheck[] = [];
    const say = (c: DoctorCheck) => {
      checks.push(c);
      ctx.info(
        `${c.ok ? ctx.style.green('✓') : ctx.style.red('✗')} ${c.name}: ${c.detail}${c.fix ? `\n    ${ctx.style.dim('fix:')} ${c.fix}` : ''}`,
      );
    };
    const finish = () => {
      if (ctx.json) ctx.print(JSON.stringify({ ok: checks.every((c) => c.ok), checks }, null, 2));
      return checks.every((c) => c.ok) ? 0 : 1;
    };
    try {
      const info = await ctx.runtime.info();
      say({
        name: 'engine',
        ok: true,
        detail: `${info.product ?? 'Docker'} ${info.version}, API ${info.apiVersion}, ${info.os}, kernel ${info.kernel}${info.cgroupVersion ? `, cgroup v${info.cgroupVersion}` : ''}${info.endpoint ? `, at ${info.endpoint}` : ''}`,
      });
      const stale = (await listInstances(ctx.runtime)).filter((i) => i.status === 'stale');
      // Leftovers of a killed run are worth knowing about, not a failure of this machine.
      say({
        name: 'leftovers',
        ok: true,
        detail: stale.length
          ? `${stale.length} instance(s) whose process is gone: ${stale.map((i) => `${i.instance} (${i.lab}, was ${i.owner})`).join(', ')}`
          : 'no instance of a dead process',
        ...(stale.length ? { fix: '`lab clean --stale` removes them' } : {}),
      });
    } catch (e) {
      say({ name: 'engine', ok: false, detail: (e as Error).message, ...(e instanceof LabError && e.hint ? { fix: e.hint } : {}) });
      return finish();
    }
    let image: string;
    try {
      image = await prepareImage(ctx, values['base-image'], stderrRenderer(ctx));
      // Built here or loaded from an archive (`lab image load`): the image's labels name the engine that built it.
      const origin = await imageOrigin(ctx.runtime, image).catch(() => undefined);
      say({ name: 'image', ok: true, detail: origin ? `${image}: ${describeOrigin(origin)}` : image });
    } catch (e) {
      say({
        name: 'image',
        ok: false,
        detail: (e as Error).message,
        fix: 'the image builds from images/node on a Debian base; without a registry, `lab image load FILE` an archive saved with `lab image save` (docs/hosts.md "Offline classrooms")',
      });
      return finish();
    }
    const id = newInstanceId();
    ctx.live.add(id);
    try {
      const t0 = performance.now();
      const inst = await createInstance(ctx.runtime, PROBE_LAB, { image, instance: id, signal: ctx.signal });
      say({
        name: 'lab network',
        ok: true,
        detail: `internal bridge ${inst.plan.networks[0]!.subnet}, two containers, ready in ${formatDuration(performance.now() - t0)}`,
      });
      // As a student would, in `lab shell`: root with NET_ADMIN and NET_RAW only.
      const rule = await inst.exec('client', studentArgv(['iptables', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '9', '-j', 'DROP']));
      say({
        name: 'iptables',
        ok: rule.exitCode === 0,
        detail: rule.exitCode === 0 ? 'a student can add a rule inside a container' : rule.stderr.trim(),
        ...(rule.exitCode === 0
          ? {}
          : { fix: 'the kernel needs the iptables (nf_tables) modules; on Docker Desktop update to a current version' }),
      });
      const sysctl = await inst.exec('client', ['cat', '/proc/sys/net/ipv4/tcp_syn_retries']);
      say({
        name: 'per-node sysctls',
        ok: sysctl.stdout.trim() === '2',
        detail: `net.ipv4.tcp_syn_retries=${sysctl.stdout.trim()} (asked for 2)`,
      });
      say(await agentCheck(inst));
      say(await isolation(inst));
    } catch (e) {
      say({
        name: 'lab network',
        ok: false,
        detail: (e as Error).message,
        fix: 'run `lab clean`, then try again; DEBUG=lab* shows every engine call',
      });
    } finally {
      await removeInstance(ctx.runtime, id).catch(() => {});
      ctx.live.delete(id);
    }
    return finish();
  },
});

/** The agent of each node answers (sockets through sock_diag, the segment recorder on), and a student's
 *  process has NET_ADMIN and NET_RAW and nothing else. */
async function agentCheck(inst: Instance): Promise<DoctorCheck> {
  try {
    const look = await inst.agent('server').look({ segmentsFrom: 1 });
    if (look.segments?.off) return { name: 'agent', ok: false, detail: `the agent records no segments: ${look.segments.off}` };
    const caps = await inst.exec('server', studentArgv(['grep', '^CapBnd', '/proc/self/status']));
    const bnd = /CapBnd:\s*([0-9a-f]+)/.exec(caps.stdout)?.[1];
    if (bnd !== '0000000000003000')
      return { name: 'agent', ok: false, detail: `a student's process has capabilities ${bnd ?? '?'}, not NET_ADMIN and NET_RAW only` };
    return {
      name: 'agent',
      ok: true,
      detail: `every node's agent answers (${look.sockets.length} socket(s) read, segments recorded); a student's processes have NET_ADMIN and NET_RAW only`,
    };
  } catch (e) {
    return {
      name: 'agent',
      ok: false,
      detail: (e as Error).message,
      fix: 'the image may be from another tcplab: `lab clean --images`, then `lab doctor` builds it again',
    };
  }
}

/**
 * Is a lab node cut off from everything outside its lab? Asked without sending anything out: the kernel's
 * route lookup for an outside address must fail (no default route), and so must the route to the host's
 * default bridge. Then a connection to its own bridge's gateway address, which the host must not answer
 * (the bridge has no address on the host side), stays inside the bridge.
 */
export async function isolation(inst: Pick<Instance, 'exec' | 'plan'>): Promise<DoctorCheck> {
  const route = await inst.exec('client', studentArgv(['ip', 'route', 'get', OUTSIDE_ADDRESS]));
  if (route.exitCode === 0) {
    return {
      name: 'isolation',
      ok: false,
      detail: `a lab node has a route out of the lab: ${route.stdout.trim()}`,
      fix: 'tcplab removes the default route of every node; an engine that re-adds one breaks isolation: report it with `lab doctor --json`',
    };
  }
  const gateway = inst.plan.networks[0]!.gateway;
  const probe = await inst.exec('client', studentArgv(['nc', '-vz', '-w', '1', gateway, '22']), { timeoutMs: 5000 });
  const answered = probe.exitCode === 0 || /refused|succeeded/i.test(probe.stdout + probe.stderr);
  return answered
    ? {
        name: 'isolation',
        ok: false,
        detail: `the host answers a lab node at the bridge gateway ${gateway}: ${(probe.stderr || probe.stdout).trim()}`,
        fix: 'this engine ignores com.docker.network.bridge.inhibit_ipv4; lab nodes can reach the host',
      }
    : { name: 'isolation', ok: true, detail: `no route from a lab node to ${OUTSIDE_ADDRESS}, and the host does not answer at ${gateway}` };
}
