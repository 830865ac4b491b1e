// Red team, third round, continued: the attacks on Labs 10, 11, 12 and 13 (other-ways-3.test.ts has the round's
// other labs and what the round was about; the two files are one round, split so that CI's two workers end
// together). Each must score 0 while the honest answer beside it passes.
//
// - Lab 10: fifty TIME_WAITs on the ephemeral ports from the client's own address, to a listener on the
//   client's loopback with the server's address: nothing crossed the network.
// - Labs 11 and 12: the half-open connections held by the client's own INPUT rule (the SYN|ACKs reach it and
//   are dropped there), or by the server's connections to itself, not by the firewall.
// - Lab 12: three half-open connections on a listener with room for 64, the client's other SYNs dropped by
//   its own rule: no queue was full.
// - Lab 13: the server's data held in its own slow queue (tc tbf filled with datagrams), not at the firewall.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import {
  type Entry,
  expectOnlyHonestPasses,
  gradeAnswers,
  LAB10_LOOPBACK_TIME_WAITS,
  SYNACK_FIREWALL_DROP,
  synQueueAnswers,
  LAB13_DATA_FIREWALL_DROP,
} from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-otherways3q-'));

describeDocker('red team, third round: the end states of labs 10, 11, 12 and 13 made another way', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const grade = (lab: string, step: string, files: Record<string, Entry[]>) => gradeAnswers(dir, lab, step, files, 3);

  const synAckDrop = {
    client: 'iptables -A INPUT -p tcp --sport 5556 --tcp-flags SYN,ACK SYN,ACK -j DROP',
    loopback: 'iptables -A OUTPUT -o lo -p tcp --sport 5556 --tcp-flags SYN,ACK SYN,ACK -j DROP',
  };
  /** Labs 11 and 12 alike: a listener of this backlog, a flood of this many SYNs, the SYN|ACKs dropped by the
   *  firewall (honest, also after a flood tried with no rule, whose SYN|ACKs left the firewall then) or by the
   *  client's own INPUT chain. */
  const synQueue = (backlog: number, count: number): Record<string, Entry[]> => {
    const q = synQueueAnswers(backlog, count);
    return { ...q.honest, 'client-drops-synack': q.instead('client', synAckDrop.client) };
  };

  it("Lab 11: a SYN queue held by the client's own rule, or by the server's connections to itself, is not the firewall's", async () => {
    const by = await grade('11', 'your-turn', {
      ...synQueue(8, 20),
      'server-self': [
        { on: 'server', script: 'tcplab-sock listen 5556 --backlog 8', at: '0s' },
        { on: 'server', script: synAckDrop.loopback, at: '1s', exit: 0 },
        { on: 'server', script: 'tcplab-sock flood {{server.ip}} 5556 --count 20', at: '2s' },
      ],
    });
    expectOnlyHonestPasses(by, ['client-drops-synack', 'server-self']);
  });

  it('Lab 12: three half-open connections on a listener with room for 64 are not a full SYN queue', async () => {
    const by = await grade('12', 'your-turn', {
      ...synQueue(2, 10),
      'three-syns': [
        { on: 'server', script: 'tcplab-sock listen 5556 --backlog 64', at: '0s' },
        { on: 'firewall', script: SYNACK_FIREWALL_DROP, at: '1s', exit: 0 },
        { on: 'client', script: 'tcplab-sock flood {{server.ip}} 5556 --count 3 &', at: '2s', exit: 0 },
        { on: 'client', script: 'sleep 1; iptables -A OUTPUT -p tcp --dport 5556 --syn -j DROP', at: '3s', exit: 0 },
        { on: 'client', script: 'tcplab-sock flood {{server.ip}} 5556 --count 7', at: '4s' },
      ],
    });
    expectOnlyHonestPasses(by, ['three-syns', 'client-drops-synack']);
  });

  it("Lab 10: fifty TIME_WAITs with a listener on the client's own loopback did not cross the network", async () => {
    const sink = { on: 'server', script: 'tcplab-sock sink 5557', at: '0s' };
    const by = await grade('10', 'your-turn', {
      honest: [sink, { on: 'client', script: 'sleep 1; tcplab-sock burst {{server.ip}} 5557 --count 60', at: '1s', exit: 0 }],
      // IP_BIND_ADDRESS_NO_PORT: bound to the client's address, the port chosen at connect() from the range.
      'self-connect': [
        {
          on: 'client',
          script: `${LAB10_LOOPBACK_TIME_WAITS}
ip addr del {{server.ip}}/32 dev lo`,
          at: '0s',
          exit: 0,
        },
      ],
    });
    expectOnlyHonestPasses(by, ['self-connect']);
  });

  it("Lab 13: data held in the server's own slow queue did not stop at the firewall", async () => {
    // The line comes once the client is connected: 3 s in the honest answer (as in other-ways.test.ts), 6 s
    // where the slow queue must be filled first.
    const talk = (delay: number, at: number): Entry[] => [
      { on: 'server', script: `(sleep ${delay}; echo hello from the server; sleep 100) | nc -l 5556`, at: `${at}s` },
      { on: 'client', script: 'nc {{server.ip}} 5556', at: `${at + 1}s` },
    ];
    const by = await grade('13', 'your-turn', {
      honest: [
        {
          on: 'firewall',
          script: LAB13_DATA_FIREWALL_DROP,
          at: '0s',
          exit: 0,
        },
        ...talk(3, 1),
      ],
      // 6 x 1400 bytes at 1 kbit/s: a minute of datagrams in front of the server's line and its retransmissions.
      'server-slow-queue': [
        ...talk(6, 0),
        {
          on: 'server',
          script:
            'tc qdisc add dev eth0 root tbf rate 1kbit burst 1600 latency 120s && tcplab-sock udpfill {{client.ip}} --count 6 --size 1400',
          at: '2s',
          exit: 0,
        },
      ],
    });
    expectOnlyHonestPasses(by, ['server-slow-queue']);
  });

  // Lab 4's probe refused by the client alone (-m owner --uid-owner 990): where-it-dropped.test.ts.
});
