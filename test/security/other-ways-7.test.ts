// Red team, seventh round: labs 7 and 13. The sixth round's TTL check asks that the server's segment reached the
// firewall able to go on; a segment can be made to die there in another way:
//
// - Labs 7 and 13: no firewall rule at all: the server's own program gives its socket a loose source route option
//   (IP_OPTIONS, an LSRR through the client's address), so its FIN (Lab 7) or its data (Lab 13) reaches the
//   firewall's back with a TTL of 64 and is dropped there on arrival (the firewall takes no source-routed
//   packets, accept_source_route=0), never reaching the client, while the ping of the probe or of the step after
//   the task, sent with no options, gets through.
// - Lab 7: no firewall rule at all: the client drops the server's FIN on arrival (its INPUT chain), and the
//   server's own program closes only once the probe's ping is over, so that one FIN, sent as usual, reaches the
//   firewall after the probe began and leaves it; then its retransmissions never reach the firewall (the
//   server's own OUTPUT rule, or a source route). The check that no FIN left the firewall looked at the last 3
//   seconds only, and forgot that one.
// - Lab 13: no firewall rule at all: the server's data sent first with a TTL of 1 (it dies at the firewall, which
//   sees it arrive), its first retransmission as usual (it goes through, and the client, for which it is a first
//   sending, drops it on arrival), the later ones dropped by the server's own OUTPUT rule. The firewall saw a
//   retransmission arrive with a TTL that lets it go on, and the client saw no retransmission.
// - Labs 11 and 12: no firewall rule at all: the client drops the SYN|ACKs on arrival (its INPUT chain), the first
//   ones, sent as usual, reach the firewall and leave it, and then the server's own OUTPUT rule keeps the
//   retransmissions from the firewall. "SYN|ACKs reached the firewall" took the first ones, and "none left in
//   the last 3 s" no longer saw them.
//
// Each attack must score 0 while the honest answer beside it passes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import {
  LAB7_HONEST,
  LAB7_HONEST_AFTER_A_TRY,
  background,
  type Entry,
  expectOnlyHonestPasses,
  synQueueAnswers,
  gradeAnswers,
  LAB13_DATA_FIREWALL_DROP,
  LAB13_HONEST_AFTER_A_TRY,
} from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-otherways7-'));

/** The server's own program on its port 5556: a listener that accepts one connection, gives it a loose source
 *  route through the client (NOP, LSRR of length 7, pointer 4, the client's address: 8 bytes of IP options),
 *  then does `then` (Python statements on `a`). The handshake, done before, carries no option. */
const sourceRouted = (then: string) =>
  background(`import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("", 5556)); l.listen(1)
a, _ = l.accept(); l.close()
a.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, bytes([1, 131, 7, 4]) + socket.inet_aton("{{client.ip}}"))
${then}
time.sleep(600)`);

/** Lab 7: the server's own program on 5556 that closes (its FIN, sent as usual) only once the probe's ping on the
 *  server has come and gone, then does `then` to keep the FIN's retransmissions from the firewall. */
const finAfterTheProbe = (then: string) =>
  background(`import os, socket, subprocess, threading, time
def pinging():
    for p in filter(str.isdigit, os.listdir("/proc")):
        try: c = open("/proc/%s/cmdline" % p, "rb").read()
        except OSError: continue
        if b"tcplab-sock" in c and b"ping" in c: return True
    return False
over = threading.Event()
def watch():
    while not pinging(): time.sleep(0.003)
    while pinging(): time.sleep(0.003)
    over.set()
threading.Thread(target=watch, daemon=True).start()
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("", 5556)); l.listen(1)
a, _ = l.accept(); l.close()
over.wait()
a.shutdown(socket.SHUT_WR)
time.sleep(0.2)
${then}
time.sleep(600)`);

describeDocker(
  'red team, seventh round: a segment dropped for its IP options, and one that went through taken for one that did not',
  () => {
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const grade = (lab: string, step: string, files: Record<string, Entry[]>) => gradeAnswers(dir, lab, step, files, 4);

    it("Lab 7: the server's own FIN sent with a source route option is not the firewall's rule", async () => {
      const by = await grade('7', 'your-turn', {
        honest: LAB7_HONEST,
        'server-source-route': [
          { on: 'server', script: sourceRouted('time.sleep(2); a.close()'), at: '0s', exit: 0 },
          { on: 'client', script: 'sleep 1; nc {{server.ip}} 5556', at: '1s' },
        ],
      });
      expectOnlyHonestPasses(by, ['server-source-route']);
    });

    it("Lab 7: one FIN that left the firewall after the probe began, its retransmissions then kept from it, is not the firewall's rule", async () => {
      const clientDropsFin = {
        on: 'client',
        script: 'iptables -A INPUT -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP',
        at: '0s',
        exit: 0,
      };
      const nc = { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' };
      const by = await grade('7', 'your-turn', {
        honest: LAB7_HONEST,
        // A close tried with no rule first: its FIN left the firewall then, before the probe.
        'honest-after-a-try': LAB7_HONEST_AFTER_A_TRY,
        'late-fin-server-output': [
          clientDropsFin,
          {
            on: 'server',
            script: finAfterTheProbe(
              'subprocess.run(["iptables", "-A", "OUTPUT", "-p", "tcp", "--sport", "5556", "--tcp-flags", "FIN", "FIN", "-j", "DROP"])',
            ),
            at: '1s',
            exit: 0,
          },
          nc,
        ],
        'late-fin-source-route': [
          clientDropsFin,
          {
            on: 'server',
            script: finAfterTheProbe(
              'a.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, bytes([1, 131, 7, 4]) + socket.inet_aton("{{client.ip}}"))',
            ),
            at: '1s',
            exit: 0,
          },
          nc,
        ],
      });
      expectOnlyHonestPasses(by, ['late-fin-server-output', 'late-fin-source-route']);
    });

    it("Lab 13: the server's own data sent with a source route option, or let through once between sendings that never reach the firewall, is not the firewall's rule", async () => {
      const rule = LAB13_DATA_FIREWALL_DROP;
      const by = await grade('13', 'your-turn', {
        honest: [
          { on: 'firewall', script: rule, at: '0s', exit: 0 },
          { on: 'server', script: '(sleep 3; echo hello from the server; sleep 100) | nc -l 5556', at: '1s' },
          { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' },
        ],
        'server-source-route': [
          { on: 'server', script: sourceRouted('time.sleep(2); a.sendall(b"hello from the server\\n")'), at: '0s', exit: 0 },
          { on: 'client', script: 'sleep 1; nc {{server.ip}} 5556', at: '1s' },
        ],
        // A line sent with no rule first: it went through the firewall then, a first sending.
        'honest-after-a-try': LAB13_HONEST_AFTER_A_TRY,
        // The first retransmission comes about 200 ms after the first sending, the next about 400 ms after it.
        'ttl-1-then-one-through': [
          { on: 'client', script: 'iptables -A INPUT -p tcp --sport 5556 --tcp-flags PSH PSH -j DROP', at: '0s', exit: 0 },
          {
            on: 'server',
            script: background(`import socket, subprocess, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("", 5556)); l.listen(1)
a, _ = l.accept(); l.close()
time.sleep(2)
a.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)
a.sendall(b"hello from the server\\n")
time.sleep(0.1)
a.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
time.sleep(0.25)
subprocess.run(["iptables", "-A", "OUTPUT", "-p", "tcp", "--sport", "5556", "--tcp-flags", "PSH", "PSH", "-j", "DROP"])
time.sleep(600)`),
            at: '1s',
            exit: 0,
          },
          { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' },
        ],
      });
      expectOnlyHonestPasses(by, ['server-source-route', 'ttl-1-then-one-through']);
    });

    for (const [lab, backlog, count] of [
      ['11', 8, 20],
      ['12', 2, 10],
    ] as const) {
      it(`Lab ${lab}: SYN|ACKs that left the firewall once, their retransmissions then kept from it, are not the firewall's rule`, async () => {
        const q = synQueueAnswers(backlog, count);
        const by = await grade(lab, 'your-turn', {
          ...q.honest,
          'first-through-then-server-output': [
            { on: 'server', script: `tcplab-sock listen 5556 --backlog ${backlog}`, at: '0s' },
            { on: 'client', script: 'iptables -A INPUT -p tcp --sport 5556 --tcp-flags SYN,ACK SYN,ACK -j DROP', at: '1s', exit: 0 },
            { on: 'client', script: `tcplab-sock flood {{server.ip}} 5556 --count ${count}`, at: '2s' },
            {
              on: 'server',
              script: 'sleep 0.3; iptables -A OUTPUT -p tcp --sport 5556 --tcp-flags SYN,ACK SYN,ACK -j DROP',
              at: '3s',
              exit: 0,
            },
          ],
        });
        expectOnlyHonestPasses(by, ['first-through-then-server-output']);
      });
    }
  },
);
