// Red team, sixth round: labs 1, 2, 3, 4, 7, 11, 12 and 13. As in the fifth round, a task's wire checks ask that
// some segment was seen, not that it belonged to the connection graded, nor that the task's rule did the dropping:
//
// - Labs 7, 11, 12 and 13: no firewall rule at all: the server's own program sends its FIN, SYN|ACKs or data
//   with a TTL of 1 (IP_TTL on its socket), so they reach the firewall's back and die there (time exceeded),
//   never reaching the client, while the ping of the step after the task, sent with the usual TTL, gets through.
//   Lab 6's hop limit (fifth round) on another machine, without a route, so the ping is not touched.
// - Lab 13: no rule at all: the firewall's front link too small for those segments, and its "fragmentation
//   needed" dropped on its way out (its OUTPUT chain), so the server never sends smaller.
// - Lab 3: the check's own connection made to a listener on the client's loopback (with the server's address),
//   or rewritten (DNAT) to a listener at the client's own address, while the server's SYN_RECV comes from a
//   connection whose SYN|ACKs the client drops on arrival.
// - Lab 2: no DROP rule: the client's SYNs to 5555 sent to nobody by a policy route for a mark its mangle rule
//   sets on them (the check's `ip route get` carries no mark), or by an address rewrite (DNAT, in either of the
//   image's iptables) to an address nobody has.
//
// Each attack must score 0 while the honest answer beside it passes. One more that worked is not here, being
// still open (docs/authoring.md, "Still open after the seventh round"): Lab 1's TIME_WAIT made on the client's
// loopback after a close the server began. Another, Lab 7's FIN sent with a source route option, was closed in
// the seventh round (other-ways-7.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import {
  LAB7_HONEST,
  background,
  type Entry,
  expectOnlyHonestPasses,
  gradeAnswers,
  synQueueAnswers,
  LAB13_DATA_FIREWALL_DROP,
} from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-otherways6-'));

/** The server's own program on its port 5556: a listener that accepts one connection, sets `opts` on it (Python
 *  statements on `a`), then does `then`. */
const serverProgram = (opts: string, then: string) =>
  background(`import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("", 5556)); l.listen(1)
a, _ = l.accept(); l.close()
${opts}
${then}
time.sleep(600)`);
const TTL_1 = 'a.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)';

/** A listener on 5556 that never accepts, whose SYN|ACKs (the listener's TTL is theirs) carry a TTL of 1. */
const ttl1Listener = (backlog: number) =>
  background(`import socket, time
l = socket.socket(); l.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1); l.bind(("", 5556)); l.listen(${backlog})
time.sleep(600)`);

/** Lab 3: the server's SYN_RECV from a connection whose SYN|ACKs the client drops on arrival, then `then`. */
const serverSynRecvThen = (then: string): Entry[] => [
  { on: 'client', script: 'iptables -A INPUT -i eth0 -p tcp --sport 5556 --tcp-flags SYN,ACK SYN,ACK -j DROP', at: '0s', exit: 0 },
  { on: 'client', script: 'timeout 1 nc {{server.ip}} 5556', at: '1s', exit: 124 },
  { on: 'client', script: then, at: '3s', exit: 0 },
];

/** A listener at `address`:`port` that accepts every connection and keeps it. */
const acceptForever = (address: string, port: number) =>
  background(`import socket, time
l = socket.socket(); l.bind(("${address}", ${port})); l.listen(8)
cs = []
while True:
    cs.append(l.accept()[0])`);

describeDocker('red team, sixth round: a segment that died on the way, and a segment of another connection', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const grade = (lab: string, step: string, files: Record<string, Entry[]>) => gradeAnswers(dir, lab, step, files, 4);

  it("Lab 7: the server's own FIN sent with a TTL of 1 is not the firewall's rule", async () => {
    const by = await grade('7', 'your-turn', {
      honest: LAB7_HONEST,
      'server-ttl-1': [
        { on: 'server', script: serverProgram(TTL_1, 'time.sleep(2); a.close()'), at: '0s', exit: 0 },
        { on: 'client', script: 'sleep 1; nc {{server.ip}} 5556', at: '1s' },
      ],
    });
    expectOnlyHonestPasses(by, ['server-ttl-1']);
  });

  for (const [lab, backlog, count] of [
    ['11', 8, 20],
    ['12', 2, 10],
  ] as const) {
    it(`Lab ${lab}: the server's own SYN|ACKs sent with a TTL of 1 are not the firewall's rule`, async () => {
      const q = synQueueAnswers(backlog, count);
      const by = await grade(lab, 'your-turn', {
        honest: q.honest.honest!,
        'server-ttl-1': [
          { on: 'server', script: ttl1Listener(backlog), at: '0s', exit: 0 },
          { on: 'client', script: `sleep 1; tcplab-sock flood {{server.ip}} 5556 --count ${count}`, at: '1s' },
        ],
      });
      expectOnlyHonestPasses(by, ['server-ttl-1']);
    });
  }

  it("Lab 13: the server's own data sent with a TTL of 1, or too big for the firewall's way on, is not the firewall's rule", async () => {
    const rule = LAB13_DATA_FIREWALL_DROP;
    const long = '(sleep 3; python3 -c \'print("x" * 3000)\'; sleep 100) | nc -l 5556';
    const by = await grade('13', 'your-turn', {
      honest: [
        { on: 'firewall', script: rule, at: '0s', exit: 0 },
        { on: 'server', script: '(sleep 3; echo hello from the server; sleep 100) | nc -l 5556', at: '1s' },
        { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' },
      ],
      // The same long line as the attack's, dropped by the rule.
      'honest-long-line': [
        { on: 'firewall', script: rule, at: '0s', exit: 0 },
        { on: 'server', script: long, at: '1s' },
        { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' },
      ],
      'server-ttl-1': [
        { on: 'server', script: serverProgram(TTL_1, 'time.sleep(2); a.sendall(b"hello from the server\\n")'), at: '0s', exit: 0 },
        { on: 'client', script: 'sleep 1; nc {{server.ip}} 5556', at: '1s' },
      ],
      // The firewall's own link too small for them, and its "fragmentation needed" kept in (its OUTPUT chain),
      // so the server never learns to send smaller: no FORWARD rule.
      'firewall-small-mtu': [
        {
          on: 'firewall',
          script: 'ip link set front mtu 576 && iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP',
          at: '0s',
          exit: 0,
        },
        { on: 'server', script: long, at: '1s' },
        { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' },
      ],
    });
    expectOnlyHonestPasses(by, ['server-ttl-1', 'firewall-small-mtu']);
  });

  it("Lab 3: the check's connection made on the client's loopback, beside a SYN|ACK dropped on arrival, is not the task", async () => {
    const by = await grade('3', 'your-turn', {
      honest: [
        { on: 'client', script: 'iptables -A OUTPUT -p tcp --dport 5556 --tcp-flags SYN,ACK,FIN,RST,PSH ACK -j DROP', at: '0s', exit: 0 },
      ],
      // The server's SYN_RECV from a connection whose SYN|ACKs the client drops on arrival (its socket closed
      // since, so it sends nothing more); the check's own nc then connects to a listener on the client's
      // loopback, which has the server's address: ESTABLISHED, and no ACK on the server's wire.
      'loopback-probe': serverSynRecvThen(`ip addr add {{server.ip}}/32 dev lo
${acceptForever('{{server.ip}}', 5556)}`),
      // The same with an address rewrite instead of an address: every later connection to 5556 (the check's
      // own) rewritten to a listener at the client's own address. Its nc's socket still names the server.
      'dnat-probe':
        serverSynRecvThen(`iptables -t nat -A OUTPUT -p tcp -d {{server.ip}} --dport 5556 -j DNAT --to-destination {{client.ip}}:7000
${acceptForever('{{client.ip}}', 7000)}`),
    });
    expectOnlyHonestPasses(by, ['loopback-probe', 'dnat-probe']);
  });

  it('Lab 2: SYNs sent to nobody by a policy route or an address rewrite are not a DROP rule, and earn nothing', async () => {
    const by = await grade('2', 'drop-syn', {
      honest: [{ on: 'client', script: 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP', at: '0s', exit: 0 }],
      // The check asks `ip route get` the way of a segment to port 5555, which carries no mark: a policy rule
      // for the mark the client's own mangle rule sets on them is not seen.
      'mark-policy-route': [
        {
          on: 'client',
          script: [
            'iptables -t mangle -A OUTPUT -p tcp --dport 5555 -j MARK --set-mark 7',
            'ip rule add fwmark 7 table 7',
            'ip route add {{server.ip}} via 192.0.2.1 dev eth0 onlink table 7',
          ].join(' && '),
          at: '0s',
          exit: 0,
        },
      ],
      'dnat-to-nobody': [
        {
          on: 'client',
          script: 'a={{client.ip}}; iptables -t nat -A OUTPUT -p tcp --dport 5555 -j DNAT --to-destination ${a%.*}.250',
          at: '0s',
          exit: 0,
        },
      ],
      // The same in the legacy iptables, whose tables iptables-save (nf_tables) does not show.
      'legacy-dnat-to-nobody': [
        {
          on: 'client',
          script: 'a={{client.ip}}; iptables-legacy -t nat -A OUTPUT -p tcp --dport 5555 -j DNAT --to-destination ${a%.*}.250',
          at: '0s',
          exit: 0,
        },
      ],
    });
    expectOnlyHonestPasses(by, ['mark-policy-route', 'dnat-to-nobody', 'legacy-dnat-to-nobody']);
  });
});
