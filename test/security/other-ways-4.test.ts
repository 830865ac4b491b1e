// Red team, fourth round. First: a broken network is not a firewall rule. Labs 7, 11, 12 and 13 ask for a rule
// in the firewall's FORWARD chain that drops one kind of segment (the server's FIN, its SYN|ACKs, its data); Lab
// 2 for a rule in the client's OUTPUT chain that drops its SYNs. Each task's checks looked only at that segment:
// that it reached the machine that must drop it, and did not leave. A machine that forwards nothing at all meets
// them too, and so does one that sends its frames to nobody:
//
// - Labs 7 and 13: once the connection is up, the firewall stops forwarding altogether (`ip link set front
//   down`, the FORWARD chain's policy set to DROP, the route to the client's network deleted).
// - Labs 11 and 12: the firewall has no route back to the client's network, so every SYN|ACK stops there.
// - Labs 7, 11, 12 and 13: the server's neighbour entry for the firewall names a MAC address nobody has; its
//   frames still reach the firewall's wire (a point-to-point tunnel), which takes them for someone else's.
// - Lab 2: the client's neighbour entry for the server names a MAC address nobody has (set once, or kept so by
//   a loop), or ARP is off on its interface (its frames then go to its own address); its SYNs go nowhere, and
//   the client waits in SYN_SENT as behind a DROP rule.
//
// Then two checks met by something else than the task:
//
// - Lab 3: the probe's connection kept out by a rule for the lab's user, beside the student's own connection
//   (ESTABLISHED) and SYNs sent by hand (SYN_RECV on the server), no ACK dropped anywhere.
// - Labs 11 and 12: a decoy listener with the backlog the task checks, beside the listener that gets the SYNs
//   (SO_REUSEPORT) with room to spare: no queue was full.
//
// This file has Labs 7, 13 and 2; other-ways-4-queues.test.ts has Labs 11, 12 and 3 (one round in two files,
// so that CI's two workers end together).
//
// Each must score 0 while the honest answers beside it pass: the lab's rule, the rule after a try without it,
// in Lab 7 a rule that drops the same FINs at the firewall from another table (raw), the firewall's own drop in
// other words, and in Lab 2 a rule that drops every segment to the server.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import {
  LAB7_HONEST_AFTER_A_TRY,
  BREAKS,
  LAB7_FIN_FIREWALL_DROP,
  NOBODY,
  expectOnlyHonestPasses,
  gradeAnswers,
  serverMisaddresses,
  serverMisdirectsPort,
  type Entry,
  LAB13_DATA_FIREWALL_DROP,
  LAB13_HONEST_AFTER_A_TRY,
} from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-otherways4-'));

describeDocker('red team, fourth round: a broken network is not the rule the task asks for (Labs 7, 13 and 2)', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const grade = (lab: string, step: string, files: Record<string, Entry[]>) => gradeAnswers(dir, lab, step, files, 4);

  it("Lab 7: a firewall that forwards nothing, or a server that sends to nobody, is not the firewall's FIN rule", async () => {
    const rule = LAB7_FIN_FIREWALL_DROP;
    /** A connection, then `cut` (at 3 s, once it is up), then the server closes. */
    const talk = (cut: string): Entry[] => [
      { on: 'server', script: 'nc -l 5556', at: '1s', ctrlC: '4s' },
      { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' },
      { on: cut === serverMisaddresses || cut === serverMisdirectsPort ? 'server' : 'firewall', script: cut, at: '3s', exit: 0 },
    ];
    const by = await grade('7', 'your-turn', {
      honest: [{ on: 'firewall', script: rule, at: '0s', exit: 0 }, ...talk('true')],
      'honest-after-a-try': LAB7_HONEST_AFTER_A_TRY,
      // The same FINs dropped at the firewall, before routing: its own drop in other words.
      'honest-raw-table': [
        { on: 'firewall', script: rule.replace('-A FORWARD', '-t raw -A PREROUTING'), at: '0s', exit: 0 },
        ...talk('true'),
      ],
      ...Object.fromEntries(Object.entries(BREAKS).map(([name, cut]) => [name, talk(cut)])),
      'server-misaddresses': talk(serverMisaddresses),
      'server-misdirects-port': talk(serverMisdirectsPort),
    });
    expectOnlyHonestPasses(by, [...Object.keys(BREAKS), 'server-misaddresses', 'server-misdirects-port']);
  });

  it("Lab 13: a firewall that forwards nothing, or a server that sends to nobody, is not the firewall's data rule", async () => {
    const rule = LAB13_DATA_FIREWALL_DROP;
    /** The server's line comes at 4 s; `cut` at 3 s, once the client is connected. */
    const talk = (cut: string): Entry[] => [
      { on: 'server', script: '(sleep 3; echo hello from the server; sleep 100) | nc -l 5556', at: '1s' },
      { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' },
      { on: cut === serverMisaddresses || cut === serverMisdirectsPort ? 'server' : 'firewall', script: cut, at: '3s', exit: 0 },
    ];
    const by = await grade('13', 'your-turn', {
      honest: [{ on: 'firewall', script: rule, at: '0s', exit: 0 }, ...talk('true')],
      // A line that got through with no rule first: its data reached the client then.
      'honest-after-a-try': LAB13_HONEST_AFTER_A_TRY,
      'firewall-link-down': talk(BREAKS['firewall-link-down']!),
      'firewall-no-route': talk(BREAKS['firewall-no-route']!),
      'server-misaddresses': talk(serverMisaddresses),
    });
    expectOnlyHonestPasses(by, ['firewall-link-down', 'firewall-no-route', 'server-misaddresses']);
  });

  it('Lab 2: a client that sends its SYNs to nobody is not a DROP rule, and earns nothing', async () => {
    const by = await grade('2', 'drop-syn', {
      honest: [{ on: 'client', script: 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP', at: '0s', exit: 0 }],
      // Every segment to the server dropped: a rule in other words (tasks.test.ts), which must still pass.
      'honest-all-to-server': [{ on: 'client', script: 'iptables -A OUTPUT -d {{server.ip}} -j DROP', at: '0s', exit: 0 }],
      'wrong-neighbour': [
        { on: 'client', script: `ip neigh replace {{server.ip}} lladdr ${NOBODY} nud permanent dev eth0`, at: '0s', exit: 0 },
      ],
      // Set once, not static: the probe's own ARP request brings the server's answer, which corrects it.
      'wrong-neighbour-once': [
        { on: 'client', script: `ip neigh replace {{server.ip}} lladdr ${NOBODY} nud stale dev eth0`, at: '0s', exit: 0 },
      ],
      // ARP off: the kernel addresses the client's frames for the server to the client itself.
      'arp-off': [{ on: 'client', script: 'ip link set eth0 arp off', at: '0s', exit: 0 }],
      // The same, but an entry the kernel would replace in time: kept wrong by a loop.
      'wrong-neighbour-kept': [
        {
          on: 'client',
          script: `(while :; do ip neigh replace {{server.ip}} lladdr ${NOBODY} nud reachable dev eth0; sleep 0.2; done) >/dev/null 2>&1 &`,
          at: '0s',
          exit: 0,
        },
      ],
    });
    expectOnlyHonestPasses(by, ['wrong-neighbour', 'wrong-neighbour-once', 'arp-off', 'wrong-neighbour-kept']);
  });
});
