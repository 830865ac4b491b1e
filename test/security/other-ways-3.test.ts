// Red team, third round: labs 1, 5, 7, 8, 9, 10, 11, 12 and 13, whose tasks were graded on the end states alone (and Lab 12 on
// a count), answered the easy way round: the states made by another program, a rule in another machine, the
// connection the other way, or a connection a machine makes with itself. Each was met before the lab checked
// the wire too; each must score 0 while the honest answer beside it passes. Labs 10 to 13 are in
// other-ways-3-queues.test.ts (one round in two files, so that CI's two workers end together).
//
// - Lab 1: the client's TIME_WAIT from a connection the server opened from the student's port to a listener on
//   the client (after a refused SYN of the client's to that port, so that one did reach the server).
// - Lab 5: the server's TIME_WAIT with the client's port 6668 from a connection the server made to a listener
//   on the client's 6668 (after a refused SYN from 6668, so that one did reach the server), or from a
//   connection the server made with itself from the client's address on its loopback.
// - Lab 7: the server in FIN_WAIT_1 and the client ESTABLISHED with no firewall rule: the server drops its own
//   FIN, the client drops it on arrival, or the client never reads, so that the FIN waits behind data.
// - Lab 8: the client in CLOSING because it drops its own FIN, or with a connection it makes with itself.
// - Lab 9: no simultaneous open at all: a listener that closes after accept(), the same after a refused SYN
//   of the server's (so each side's SYN did reach the other), or two sockets put in ESTABLISHED by hand
//   (TCP_REPAIR), with nothing on the wire.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import {
  LAB7_HONEST_AFTER_A_TRY,
  LAB7_HONEST,
  background,
  type Entry,
  expectOnlyHonestPasses,
  gradeAnswers,
  lab1Honest,
  lab1Port,
  LAB5_HONEST,
  LAB5_SERVER_WITH_ITSELF,
  LAB9_HONEST,
} from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-otherways3-'));

/** A socket put in ESTABLISHED with TCP_REPAIR (no handshake sent), from `local` to `peer`, left open. The
 *  machine drops its own resets first: the other side's socket may not exist yet when repair ends. */
const repaired = (local: string, lport: number, peer: string, pport: number, sendSeq: number, recvSeq: number) =>
  `iptables -A OUTPUT -p tcp --tcp-flags RST RST -j DROP\n` +
  background(`import socket, time
s = socket.socket()
s.setsockopt(6, 19, 1)  # TCP_REPAIR
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("${local}", ${lport}))
s.setsockopt(6, 20, 1); s.setsockopt(6, 21, ${recvSeq})  # TCP_REPAIR_QUEUE recv, TCP_QUEUE_SEQ
s.setsockopt(6, 20, 2); s.setsockopt(6, 21, ${sendSeq})  # send
s.connect(("${peer}", ${pport}))
time.sleep(3); s.setsockopt(6, 19, 0)
time.sleep(600)`);

describeDocker('red team, third round: the end states of labs 1, 5, 7, 8 and 9 made another way', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const grade = (lab: string, step: string, files: Record<string, Entry[]>) => gradeAnswers(dir, lab, step, files, 3);

  it("Lab 1: the client's TIME_WAIT from a connection the server opened is not the client's connection", async () => {
    const by = await grade('1', 'your-turn', {
      honest: lab1Honest(),
      'server-connects': [
        { on: 'client', script: `nc {{server.ip}} ${lab1Port('server-connects')}`, at: '0s', exit: 1 },
        { on: 'client', script: '(sleep 2; echo hi) | nc -q0 -l 4000', at: '1s' },
        { on: 'server', script: `nc -p ${lab1Port('server-connects')} {{client.ip}} 4000 </dev/null`, at: '2s' },
      ],
    });
    expectOnlyHonestPasses(by, ['server-connects']);
  });

  it("Lab 5: the server's TIME_WAIT from a connection it made, or made with itself, is not the client's from 6668", async () => {
    const by = await grade('5', 'your-turn', {
      honest: LAB5_HONEST,
      // A refused SYN from 6668 first, so that the server did see one from there.
      'server-connects': [
        { on: 'client', script: 'nc -p 6668 {{server.ip}} 5999', at: '0s', exit: 1 },
        { on: 'client', script: 'nc -l 6668', at: '1s', exit: 0 },
        { on: 'server', script: 'echo bye | nc -q0 {{client.ip}} 6668', at: '2s', exit: 0 },
      ],
      'server-self': [
        {
          on: 'server',
          script: LAB5_SERVER_WITH_ITSELF,
          at: '0s',
          exit: 0,
        },
      ],
    });
    expectOnlyHonestPasses(by, ['server-connects', 'server-self']);
  });

  it("Lab 7: FIN_WAIT_1 without the firewall's rule is not the task", async () => {
    const talk: Entry[] = [
      { on: 'server', script: 'nc -l 5556', at: '1s', ctrlC: '4s' },
      { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' },
    ];
    const by = await grade('7', 'your-turn', {
      honest: LAB7_HONEST,
      // A close tried with no rule first: its FIN left the firewall then.
      'honest-after-a-try': LAB7_HONEST_AFTER_A_TRY,
      'server-drops-own-fin': [
        { on: 'server', script: 'iptables -A OUTPUT -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP', at: '0s', exit: 0 },
        ...talk,
      ],
      'client-drops-fin': [
        { on: 'client', script: 'iptables -A INPUT -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP', at: '0s', exit: 0 },
        ...talk,
      ],
      // The FIN queued behind data that the client's full receive window holds back: never sent at all.
      'zero-window': [
        {
          on: 'server',
          script: background(`import socket, time
l = socket.socket(); l.bind(("", 5556)); l.listen(1)
a, _ = l.accept(); l.close(); a.setblocking(False)
try:
    while True: a.send(b"x" * 65536)
except BlockingIOError: pass
a.shutdown(socket.SHUT_WR); time.sleep(600)`),
          at: '0s',
          exit: 0,
        },
        {
          on: 'client',
          script: background(`import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("{{server.ip}}", 5556)); time.sleep(600)`),
          at: '1s',
          exit: 0,
        },
      ],
    });
    expectOnlyHonestPasses(by, ['server-drops-own-fin', 'client-drops-fin', 'zero-window']);
  });

  it("Lab 8: CLOSING from the client's own rule, or with itself, is not the server's FINs crossing", async () => {
    const talk: Entry[] = [
      { on: 'server', script: 'nc -l 5556', at: '1s', ctrlC: '6s' },
      { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s', ctrlC: '4s' },
    ];
    const by = await grade('8', 'your-turn', {
      honest: [{ on: 'server', script: 'iptables -A INPUT -p tcp --dport 5556 --tcp-flags FIN FIN -j DROP', at: '0s', exit: 0 }, ...talk],
      'client-drops-own-fin': [
        { on: 'client', script: 'iptables -A OUTPUT -p tcp --dport 5556 --tcp-flags FIN FIN -j DROP', at: '0s', exit: 0 },
        ...talk,
      ],
      'client-self': [
        {
          on: 'client',
          script:
            'ip addr add {{server.ip}}/32 dev lo\niptables -A OUTPUT -o lo -p tcp --dport 5556 --tcp-flags FIN FIN -j DROP\n' +
            background(`import socket, time
l = socket.socket(); l.bind(("{{server.ip}}", 5556)); l.listen(1)
c = socket.socket(); c.connect(("{{server.ip}}", 5556))
a, _ = l.accept(); l.close()
c.shutdown(socket.SHUT_WR); time.sleep(0.5); a.close(); time.sleep(600)`),
          at: '0s',
          exit: 0,
        },
      ],
    });
    expectOnlyHonestPasses(by, ['client-drops-own-fin', 'client-self']);
  });

  it('Lab 9: a listener gone after accept(), or sockets repaired into ESTABLISHED, are not a simultaneous open', async () => {
    const by = await grade('9', 'your-turn', {
      honest: LAB9_HONEST,
      'listener-closed': [
        {
          on: 'server',
          script: background(`import socket, time
l = socket.socket(); l.bind(("", 7005)); l.listen(1)
a, _ = l.accept(); l.close(); time.sleep(600)`),
          at: '0s',
          exit: 0,
        },
        { on: 'client', script: 'sleep 1; nc -p 7004 {{server.ip}} 7005', at: '1s' },
      ],
      // A refused SYN of the server's from 7005 first: each side's own SYN then reached the other.
      'stray-syn-then-listener': [
        { on: 'server', script: 'nc -p 7005 {{client.ip}} 7004', at: '0s', exit: 1 },
        {
          on: 'server',
          script: background(`import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("", 7005)); l.listen(1)
a, _ = l.accept(); l.close(); time.sleep(600)`),
          at: '1s',
          exit: 0,
        },
        { on: 'client', script: 'sleep 1; nc -p 7004 {{server.ip}} 7005', at: '2s' },
      ],
      'tcp-repair': [
        { on: 'client', script: repaired('{{client.ip}}', 7004, '{{server.ip}}', 7005, 1000, 5000), at: '0s', exit: 0 },
        { on: 'server', script: repaired('{{server.ip}}', 7005, '{{client.ip}}', 7004, 5000, 1000), at: '1s', exit: 0 },
      ],
    });
    expectOnlyHonestPasses(by, ['listener-closed', 'stray-syn-then-listener', 'tcp-repair']);
  });
});
