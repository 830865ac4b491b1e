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
// This file has Labs 11, 12 and 3; other-ways-4.test.ts has Labs 7, 13 and 2 (one round in two files, so that
// CI's two workers end together).
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
  background,
  expectOnlyHonestPasses,
  gradeAnswers,
  RAW_SYNS,
  SYNACK_FIREWALL_DROP,
  synQueueAnswers,
  type Entry,
  BREAKS,
  serverMisaddresses,
  serverMisdirectsPort,
} from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-otherways4q-'));

describeDocker('red team, fourth round: Labs 11, 12 and 3', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const grade = (lab: string, step: string, files: Record<string, Entry[]>) => gradeAnswers(dir, lab, step, files, 4);

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
});
