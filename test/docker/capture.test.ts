// Capture on real lab nodes: tcpdump as students run it with the student's capability set (NET_ADMIN and NET_RAW
// only), the agent's own recorder, and `lab grade 2 --trace DIR` read back with tcpdump.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { GenericContainer, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import type { Instance } from '../../src/engine/instance.js';
import { createInstance } from '../../src/engine/provision.js';
import { LABEL } from '../../src/plan/plan.js';
import { studentArgv } from '../../src/observe/agent-protocol.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { bareLab, until } from '../helpers/lab.js';

afterAll(removeTempDirs);

const lab = bareLab(992, 'capture-test');

describeDocker('capture in lab nodes', (env) => {
  let inst: Instance;
  beforeAll(async () => {
    inst = await createInstance(env.runtime, lab, { image: env.image, instance: env.track(`cap${Date.now().toString(36).slice(-5)}`) });
  });
  afterAll(async () => {
    await inst?.down();
  });

  it('tcpdump -nn -i eth0 and tcpdump -w capture as the student, who has only NET_ADMIN and NET_RAW', async () => {
    // As `lab shell` runs a shell: through tcplab-agent student.
    const sh = (node: 'client' | 'server', script: string) => inst.exec(node, studentArgv(['sh', '-c', script]));
    // The student's capability sets are exactly NET_ADMIN + NET_RAW (0x3000), and stay so for anything it runs.
    const caps = await sh('server', 'grep -E "^Cap(Eff|Prm|Bnd|Inh|Amb)" /proc/self/status; id -u');
    expect(caps.stdout).toMatch(/CapEff:\s+0000000000003000/);
    expect(caps.stdout).toMatch(/CapPrm:\s+0000000000003000/);
    expect(caps.stdout).toMatch(/CapBnd:\s+0000000000003000/);
    expect(caps.stdout).toMatch(/CapAmb:\s+0000000000000000/);
    expect(caps.stdout.trim().split('\n').at(-1)).toBe('0');
    // The lab's own commands run as the agent's user, with the same two capabilities and no more.
    await inst.runAction({ on: 'server', run: ['sh', '-c', 'grep -E "^Cap(Eff|Bnd)" /proc/self/status; id -u'], name: 'labcaps' });
    const lab = (await inst.agent('server').look({ commands: ['labcaps'] })).commands.labcaps!;
    expect(lab.output).toMatch(/CapEff:\s+0000000000003000\nCapBnd:\s+0000000000003000\n990/);
    const server = inst.vars['server.ip']!;
    await inst.runAction({ on: 'server', run: ['nc', '-l', '5599'], name: 'srv', background: true });
    // Two tcpdumps in the background of a student's shell, as a student would start them.
    const started = await sh(
      'server',
      'tcpdump -nn -i eth0 -c 3 tcp port 5599 >/tmp/td.out 2>&1 & tcpdump -i eth0 -c 3 -w /tmp/t.pcap tcp port 5599 >/tmp/tw.out 2>&1 &',
    );
    expect(started.exitCode).toBe(0);
    // tcpdump prints "listening on eth0" once its socket is open; only then is the connection made.
    await until('tcpdump to listen', async () => {
      const a = await sh('server', 'cat /tmp/td.out /tmp/tw.out');
      return (a.stdout.match(/listening on eth0/g) ?? []).length === 2 ? true : undefined;
    });
    await inst.runAction({ on: 'client', run: ['nc', server, '5599'], name: 'cli', background: true });
    const out = await until('tcpdump to print three segments', async () => {
      const r = await sh('server', 'cat /tmp/td.out');
      return /3 packets captured/.test(r.stdout) ? r.stdout : undefined;
    });
    expect(out).toMatch(new RegExp(`IP \\S+ > ${server.replace(/\./g, '\\.')}\\.5599: Flags \\[S\\]`));
    expect(out).toMatch(/Flags \[S\.\]/);
    expect(out).not.toMatch(/Couldn't change|Operation not permitted/);
    await until('tcpdump -w to finish', async () =>
      /3 packets captured/.test((await sh('server', 'cat /tmp/tw.out')).stdout) ? true : undefined,
    );
    const read = await sh('server', 'tcpdump -nn -r /tmp/t.pcap');
    expect(read.exitCode).toBe(0);
    expect(read.stdout.trim().split('\n')).toHaveLength(3);
    expect(read.stdout).toMatch(/Flags \[S\]/);
  });

  it('the engine records both sides of a connection on the kernel clock of its ss snapshots', async () => {
    const server = inst.vars['server.ip']!;
    await inst.runAction({ on: 'server', run: ['nc', '-l', '5598'], name: 'srv2', background: true });
    inst.beginStep();
    await inst.runAction({ on: 'client', run: ['nc', server, '5598'], name: 'cli2', background: true, stdin: 'hi\n' });
    const checks = await inst.waitFor('s', [
      { on: 'server', segments: { from: '{{client.ip}}:*', to: '{{server.ip}}:5598', flags: 'SYN', without: 'ACK' } },
      { on: 'client', segments: { from: '{{server.ip}}:5598', flags: 'SYN|ACK', dir: 'in' } },
      { on: 'server', socket: { state: 'ESTABLISHED', local: '{{server.ip}}:5598' } },
    ]);
    expect(checks.map((c) => c.passed)).toEqual([true, true, true]);
    const t = inst.timeline();
    const syn = t.transmissions.find((x) => x.dst.port === 5598 && x.flags.join() === 'SYN')!;
    expect(syn.fate).toBe('delivered');
    expect(syn.sightings.map((s) => `${s.node}:${s.dir}`)).toEqual(['client:out', 'server:in']);
    // The server's ESTABLISHED, seen by ss, comes after the handshake's segments on the same clock.
    const est = t.events.find((e) => e.kind === 'state' && e.node === 'server' && e.to === 'ESTABLISHED' && e.local.port === 5598);
    expect(est).toBeDefined();
    // (A sent segment's timestamp can lie a few tens of microseconds after the moment it left: TCP stamps it with
    // its earliest departure time. A millisecond covers that.)
    expect(est!.at).toBeGreaterThan(syn.at - 1);
    // The look that saw it read its clock before its ss ran: on a busy host ss runs up to LOOK_SLACK_MS later
    // (src/trace/timeline.ts), so the look's own time may come before the SYN (seen in CI: by 1.6 ms).
    expect(est!.kind === 'state' && est!.seenAt).toBeGreaterThanOrEqual(syn.at - 250);
  });
});

describeDocker('lab grade 2 --trace DIR', (env) => {
  let reader: StartedTestContainer | undefined;
  const dir = tempDir('tcplab-trace-');
  let code = -1;
  let pid = 0;
  let stderr = '';
  beforeAll(async () => {
    const bin = new URL('../../bin/lab.js', import.meta.url).pathname;
    const child = spawn('node', [bin, 'grade', '2', '--trace', dir], {
      env: { ...process.env, TCPLAB_STATE_DIR: tempDir('tcplab-state-') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    pid = child.pid!;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
    // tcpdump of the image reads the files: copied into a throwaway container with no network at all.
    const files = ['client.pcap', 'server.pcap'].map((f) => ({
      content: readFileSync(join(dir, 'incomplete-handshake', f)),
      target: `/t/${f}`,
    }));
    reader = await new GenericContainer(env.image)
      .withNetworkMode('none')
      .withLabels({ 'io.tcplab.test': 'trace' })
      .withCopyContentToContainer(files)
      .withCommand(['sleep', 'infinity'])
      .start();
  }, 120_000);
  afterAll(async () => {
    await reader?.stop({ remove: true, removeVolumes: true });
    // The CLI removed its own lab: nothing labelled with its process is left.
    const left = await env.runtime.listContainers({ [LABEL.managed]: 'true', [LABEL.pid]: `${hostname()}:${pid}` });
    expect(left).toEqual([]);
  });

  const tcpdump = async (file: string) => {
    const r = await reader!.exec(['tcpdump', '-nn', '-r', `/t/${file}`]);
    expect(r.exitCode, r.output).toBe(0);
    return r.output;
  };

  it('passes, and writes a pcap per node, ladder.txt and ladder.html', () => {
    expect(code, stderr).toBe(0);
    for (const f of ['client.pcap', 'server.pcap', 'ladder.txt', 'ladder.html'])
      expect(existsSync(join(dir, 'incomplete-handshake', f)), f).toBe(true);
  });

  it("server.pcap: tcpdump sees the client's retransmitted SYNs reach the server", async () => {
    const out = await tcpdump('server.pcap');
    const syns = out.split('\n').filter((l) => / In +IP \S+ > \S+\.5555: Flags \[S\], seq (\d+)/.test(l));
    expect(syns.length, out).toBeGreaterThanOrEqual(2);
    // The same initial sequence number each time: retransmissions of one SYN.
    const seqs = new Set(syns.map((l) => /seq (\d+)/.exec(l)![1]));
    expect(seqs.size).toBeLessThan(syns.length);
  });

  it('client.pcap: the SYN|ACK reaches the client after the release', async () => {
    const out = await tcpdump('client.pcap');
    expect(out).toMatch(/ In +IP \S+\.5555 > \S+: Flags \[S\.\]/);
    // And the client answers it: the handshake's ACK leaves.
    expect(out).toMatch(/ Out +IP \S+ > \S+\.5555: Flags \[\.\], ack 1,/);
  });

  it('ladder.txt names both the segments and the states', () => {
    const text = readFileSync(join(dir, 'incomplete-handshake', 'ladder.txt'), 'utf8');
    expect(text).toMatch(/SYN seq 0/);
    expect(text).toMatch(/SYN\|ACK seq 0 ack 1/);
    for (const st of ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'LISTEN']) expect(text).toContain(`[${st}`);
    expect(text).toMatch(/X client OUTPUT dropped \d+/);
    const html = readFileSync(join(dir, 'incomplete-handshake', 'ladder.html'), 'utf8');
    expect(html).toMatch(/<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    // Offline: nothing is loaded from anywhere.
    expect(html).not.toMatch(/<script|<link|src=|@import|url\(http/);
  });
});
