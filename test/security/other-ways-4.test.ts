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
// Each must score 0 while the honest answers beside it pass: the lab's rule, the rule after a try without it,
// in Lab 7 a rule that drops the same FINs at the firewall from another table (raw), the firewall's own drop in
// other words, and in Lab 2 a rule that drops every segment to the server.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import {
  LAB7_FIN_FIREWALL_DROP,
  background,
  expectOnlyHonestPasses,
  gradeAnswers,
  RAW_SYNS,
  SYNACK_FIREWALL_DROP,
  synQueueAnswers,
  type Entry,
} from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-otherways4-'));

/** A MAC address no machine of the lab has. */
const NOBODY = '02:00:00:00:00:01';
/** The server's frames to the firewall (its only way to the client) addressed to nobody. */
const serverMisaddresses = `ip neigh replace {{firewall.ip.back}} lladdr ${NOBODY} nud permanent dev back`;
/** The server's segments from its port 5556 alone sent to nobody (a policy route to a gateway that no machine
 *  is): the firewall's ping still gets through, and the frames still reach the firewall's tunnel, addressed to
 *  another machine. */
const serverMisdirectsPort = [
  'ip rule add ipproto tcp sport 5556 table 100',
  'ip route add default via 198.18.255.254 dev back onlink table 100',
  `ip neigh replace 198.18.255.254 lladdr ${NOBODY} nud permanent dev back`,
].join(' && ');
/** Ways the firewall stops forwarding everything, not one kind of segment. */
const BREAKS: Record<string, string> = {
  'firewall-link-down': 'ip link set front down',
  'firewall-policy-drop': 'iptables -P FORWARD DROP',
  'firewall-no-route': 'ip route del {{net.front}} dev front',
};

describeDocker('red team, fourth round: a broken network is not the rule the task asks for', () => {
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
      'honest-after-a-try': [
        { on: 'server', script: 'nc -l 5556', at: '0s', ctrlC: '3s' },
        { on: 'client', script: 'nc {{server.ip}} 5556', at: '1s', ctrlC: '4s' },
        { on: 'firewall', script: rule, at: '5s', exit: 0 },
        { on: 'server', script: 'nc -l 5556', at: '6s', ctrlC: '9s' },
        { on: 'client', script: 'nc {{server.ip}} 5556', at: '7s' },
      ],
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
    const rule = 'iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags PSH PSH -j DROP';
    /** The server's line comes at 4 s; `cut` at 3 s, once the client is connected. */
    const talk = (cut: string): Entry[] => [
      { on: 'server', script: '(sleep 3; echo hello from the server; sleep 100) | nc -l 5556', at: '1s' },
      { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' },
      { on: cut === serverMisaddresses || cut === serverMisdirectsPort ? 'server' : 'firewall', script: cut, at: '3s', exit: 0 },
    ];
    const by = await grade('13', 'your-turn', {
      honest: [{ on: 'firewall', script: rule, at: '0s', exit: 0 }, ...talk('true')],
      // A line that got through with no rule first: its data reached the client then.
      'honest-after-a-try': [
        { on: 'server', script: 'echo first try | nc -l 5556', at: '0s', ctrlC: '3s' },
        { on: 'client', script: 'nc {{server.ip}} 5556', at: '1s', ctrlC: '3s' },
        { on: 'firewall', script: rule, at: '4s', exit: 0 },
        { on: 'server', script: '(sleep 3; echo hello from the server; sleep 100) | nc -l 5556', at: '5s' },
        { on: 'client', script: 'nc {{server.ip}} 5556', at: '6s' },
      ],
      'firewall-link-down': talk(BREAKS['firewall-link-down']!),
      'firewall-no-route': talk(BREAKS['firewall-no-route']!),
      'server-misaddresses': talk(serverMisaddresses),
    });
    expectOnlyHonestPasses(by, ['firewall-link-down', 'firewall-no-route', 'server-misaddresses']);
  });

  /** Labs 11 and 12 alike: the firewall's drop of the SYN|ACKs (honest, also after a flood tried with no rule),
   *  or SYN|ACKs lost by a broken network. */
  const synQueue = (backlog: number, count: number): Record<string, Entry[]> => {
    const q = synQueueAnswers(backlog, count);
    return {
      ...q.honest,
      'firewall-no-route': q.instead('firewall', BREAKS['firewall-no-route']!),
      'server-misaddresses': q.instead('server', serverMisaddresses),
      'server-misdirects-port': q.instead('server', serverMisdirectsPort),
    };
  };

  /** Two listeners on 5556 (SO_REUSEPORT): a decoy on every address with the backlog the task checks, which
   *  gets nothing, and one on the server's address (the closer match, so it gets every SYN) with room to spare. */
  const decoyListener = (decoy: number, real: number) =>
    background(`import socket, time
ls = []
for host, backlog in (("", ${decoy}), ("{{server.ip}}", ${real})):
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1); l.bind((host, 5556)); l.listen(backlog); ls.append(l)
time.sleep(600)`);

  it("Lab 11: SYN|ACKs lost by a firewall with no way back, or sent to nobody, are not the firewall's rule", async () => {
    const by = await grade('11', 'your-turn', {
      ...synQueue(8, 20),
      // Nine SYNs on a listener with room for 128, beside a decoy listen(8): no queue was full.
      'decoy-listener': [
        { on: 'server', script: decoyListener(8, 128), at: '0s', exit: 0 },
        { on: 'firewall', script: SYNACK_FIREWALL_DROP, at: '1s', exit: 0 },
        { on: 'client', script: 'tcplab-sock flood {{server.ip}} 5556 --count 9', at: '2s' },
      ],
    });
    expectOnlyHonestPasses(by, ['firewall-no-route', 'server-misaddresses', 'server-misdirects-port', 'decoy-listener']);
  });

  it("Lab 12: SYN|ACKs lost by a firewall with no way back, or sent to nobody, are not the firewall's rule", async () => {
    const by = await grade('12', 'your-turn', {
      ...synQueue(2, 10),
      // Three SYNs on a listener with room for 64, beside a decoy listen(2), the client's others dropped by its
      // own rule: no queue was full.
      'decoy-listener': [
        { on: 'server', script: decoyListener(2, 64), at: '0s', exit: 0 },
        { on: 'firewall', script: SYNACK_FIREWALL_DROP, at: '1s', exit: 0 },
        { on: 'client', script: 'tcplab-sock flood {{server.ip}} 5556 --count 3 &', at: '2s', exit: 0 },
        { on: 'client', script: 'sleep 1; iptables -A OUTPUT -p tcp --dport 5556 --syn -j DROP', at: '3s', exit: 0 },
        { on: 'client', script: 'tcplab-sock flood {{server.ip}} 5556 --count 7', at: '4s' },
      ],
    });
    expectOnlyHonestPasses(by, ['firewall-no-route', 'server-misaddresses', 'server-misdirects-port', 'decoy-listener']);
  });

  // Lab 3 checks its probe's connection: ESTABLISHED on the client, SYN_RECV on the server, no pure ACK on the
  // server's wire. A client rule that keeps the probe from connecting at all (its user, 990, is the lab's), the
  // student's own connection made earlier (ESTABLISHED on both sides) and SYNs sent by hand (SYN_RECV) meet all
  // three with no ACK dropped anywhere.
  it("Lab 3: a probe kept from connecting, beside the student's own connection and hand-made SYNs, is not the task", async () => {
    const rule = 'iptables -A OUTPUT -p tcp --dport 5556 --tcp-flags SYN,ACK,FIN,RST,PSH ACK -j DROP';
    const by = await grade('3', 'your-turn', {
      honest: [{ on: 'client', script: rule, at: '0s', exit: 0 }],
      // A connection made with no rule first (it completed on both sides), then the rule.
      'honest-after-a-try': [
        { on: 'client', script: 'nc {{server.ip}} 5556', at: '0s' },
        { on: 'client', script: rule, at: '1s', exit: 0 },
      ],
      'probe-kept-out': [
        { on: 'client', script: 'iptables -A OUTPUT -m owner --uid-owner 990 -p tcp --dport 5556 -j DROP', at: '0s', exit: 0 },
        { on: 'client', script: 'nc {{server.ip}} 5556', at: '1s' },
        { on: 'client', script: RAW_SYNS, at: '2s', exit: 0 },
      ],
    });
    expectOnlyHonestPasses(by, ['probe-kept-out']);
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
