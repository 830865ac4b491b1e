// The parser against live output of the lab image, captured with testcontainers (reaper disabled: the
// container is stopped in afterAll and carries no network but loopback, so nothing leaves the container).
import { GenericContainer, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { parseSs } from '../../src/observe/ss.js';
import { parseIptablesSave } from '../../src/observe/iptables.js';
import { realClock } from '../../src/engine/clock.js';

describeDocker('ss and iptables output of the real image', (env) => {
  let c: StartedTestContainer;
  beforeAll(async () => {
    c = await new GenericContainer(env.image)
      .withNetworkMode('none')
      .withAddedCapabilities('NET_ADMIN')
      .withLabels({ 'io.tcplab.test': 'observe' })
      .withCommand(['sleep', 'infinity'])
      .start();
  });
  afterAll(async () => {
    await c?.stop({ remove: true, removeVolumes: true });
  });

  it('parses every line ss prints, in every state the image can show on loopback', async () => {
    const sh = async (...argv: string[]) => {
      const r = await c.exec(argv);
      expect(r.exitCode, `${argv.join(' ')}: ${r.output}`).toBe(0);
      return r.output;
    };
    await sh('iptables', '-A', 'INPUT', '-i', 'lo', '-p', 'tcp', '--dport', '5557', '--tcp-flags', 'SYN', 'SYN', '-j', 'DROP');
    await sh('tcplab-run', 'start', 'l1', 'nc', '-l', '127.0.0.1', '5555');
    await sh('tcplab-run', 'start', 'c1', 'nc', '127.0.0.1', '5555');
    await sh('tcplab-run', 'start', 'c2', 'nc', '127.0.0.1', '5557');
    await sh('tcplab-run', 'start', 'l2', 'nc', '-l', '127.0.0.1', '5556');
    await sh('tcplab-run', 'start', 'c3', 'nc', '127.0.0.1', '5556');
    const want = ['LISTEN', 'ESTABLISHED', 'SYN_SENT', 'TIME_WAIT', 'FIN_WAIT_2', 'CLOSE_WAIT'];
    let stopped = false;
    const seen = new Set<string>();
    let raw = '';
    const deadline = realClock.now() + 15_000;
    while (realClock.now() < deadline) {
      raw = await sh('ss', '-tanoH');
      const sockets = parseSs(raw);
      // Every line of output is a socket the parser understood.
      expect(sockets).toHaveLength(raw.trim().split('\n').length);
      for (const s of sockets) seen.add(s.state);
      if (!stopped && seen.has('ESTABLISHED')) {
        await sh('tcplab-run', 'stop', 'c1'); // the client closes first: TIME_WAIT on its side
        await sh('tcplab-run', 'stop', 'l2'); // the server closes first, its client's nc stays: FIN_WAIT_2 / CLOSE_WAIT
        stopped = true;
      }
      if (want.every((s) => seen.has(s))) break;
      await realClock.sleep(50);
    }
    expect([...seen].sort(), raw).toEqual(expect.arrayContaining(want));
    const rules = parseIptablesSave(await sh('iptables-save', '-c'));
    const drop = rules.find((r) => r.chain === 'INPUT' && r.spec.includes('--dport 5557'))!;
    expect(drop.packets).toBeGreaterThanOrEqual(1);
  });
});
