// Red team, second round: answers that make the states a task checks without doing the task, by means of the
// kernel's real state (the first round, red-team.test.ts, forged what the grader reads). Each was found by a
// tester playing a student who had read the labs; each must score 0 while the honest answer beside it passes.
//
// - Lab 1: the client connects to itself (the server's address on its loopback), so its TIME_WAIT never crossed
//   the network; the server only has to have nothing left on the port.
// - Lab 3: no split handshake; the server's SYN_RECV comes from SYNs sent by hand through a raw socket while
//   the check's own connection is ESTABLISHED on both sides.
// - Lab 4: the firewall untouched; the client rejects its own SYNs (or the server resets them).
// - Lab 10: no ephemeral port used: 50 connections from ports bound by hand outside the client's range.
// - Lab 11: no backlog chosen: a listener with room for 128 and exactly nine SYNs, so nine half-open and no
//   queue full at all.
// - Lab 13: no FORWARD rule; the client's own INPUT chain drops the server's data.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import {
  expectOnlyHonestPasses,
  gradeAnswers,
  lab1Honest,
  lab1Port,
  RAW_SYNS,
  type Entry,
  LAB13_DATA_FIREWALL_DROP,
} from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-otherways-'));

/** A TCP connection made on the client to the server's address added to the client's own loopback: the
 *  client closes first, and its end is left in TIME_WAIT. bindClient: from the client's own address. */
const selfConnect = (port: string, bindClient: boolean) => `ip addr add {{server.ip}}/32 dev lo
python3 - <<'PY'
import socket
l = socket.socket(); l.bind(("{{server.ip}}", ${port})); l.listen(1)
c = socket.socket()
${bindClient ? 'c.bind(("{{client.ip}}", 0))' : ''}
c.connect(("{{server.ip}}", ${port}))
a, _ = l.accept(); l.close()
c.sendall(b"hi"); c.close()
while a.recv(100): pass
a.close()
PY`;

describeDocker('red team: other ways to the states a task checks are not the task', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const grade = (lab: string, step: string, files: Record<string, Entry[]>) => gradeAnswers(dir, lab, step, files, 4);

  it('Lab 1: a TIME_WAIT the client made with itself is not the task', async () => {
    const by = await grade('1', 'your-turn', {
      honest: lab1Honest(),
      'self-connect': [{ on: 'client', script: selfConnect(lab1Port('self-connect'), false), at: '0s', exit: 0 }],
      'self-connect-from-own-address': [
        { on: 'client', script: selfConnect(lab1Port('self-connect-from-own-address'), true), at: '0s', exit: 0 },
      ],
    });
    expectOnlyHonestPasses(by, ['self-connect', 'self-connect-from-own-address']);
  });

  it("Lab 3: SYN_RECV from hand-made SYNs, beside the check's own connection fully open, is not the task", async () => {
    const by = await grade('3', 'your-turn', {
      honest: [
        { on: 'client', script: 'iptables -A OUTPUT -p tcp --dport 5556 --tcp-flags SYN,ACK,FIN,RST,PSH ACK -j DROP', at: '0s', exit: 0 },
      ],
      'raw-syns': [{ on: 'client', script: RAW_SYNS, at: '0s', exit: 0 }],
      // The ACK dropped where it arrives, not where it leaves: the server's wire still sees it.
      'server-drops-ack': [
        { on: 'server', script: 'iptables -A INPUT -p tcp --dport 5556 --tcp-flags SYN,ACK,FIN,RST,PSH ACK -j DROP', at: '0s', exit: 0 },
      ],
    });
    expectOnlyHonestPasses(by, ['raw-syns']);
    // The server-side rule makes the same states, but the prompt asks for the client's rule: it may not pass.
    expect.soft(by['server-drops-ack']?.passed, JSON.stringify(by['server-drops-ack'])).toBe(false);
  });

  it("Lab 4: a refusal made by the client's or the server's own rules is not the firewall's", async () => {
    const by = await grade('4', 'your-turn', {
      honest: [
        { on: 'firewall', script: 'iptables -R FORWARD 1 -p tcp --dport 5555 -j REJECT --reject-with tcp-reset', at: '0s', exit: 0 },
      ],
      'client-rejects': [
        {
          on: 'client',
          script: 'iptables -I OUTPUT -p tcp -d {{server.ip}} --dport 5555 -j REJECT --reject-with tcp-reset',
          at: '0s',
          exit: 0,
        },
      ],
      'server-resets': [
        {
          on: 'firewall',
          script: 'iptables -D FORWARD 1',
          at: '0s',
          exit: 0,
        },
        { on: 'server', script: 'iptables -I INPUT -p tcp --dport 5555 -j REJECT --reject-with tcp-reset', at: '0s', exit: 0 },
      ],
    });
    expectOnlyHonestPasses(by, ['client-rejects', 'server-resets']);
  });

  it('Lab 11: nine half-open connections on a listener with room for 128 are not a full SYN queue', async () => {
    const rule = 'iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags SYN,ACK SYN,ACK -j DROP';
    const by = await grade('11', 'your-turn', {
      honest: [
        { on: 'server', script: 'tcplab-sock listen 5556 --backlog 8', at: '0s' },
        { on: 'firewall', script: rule, at: '1s', exit: 0 },
        { on: 'client', script: 'tcplab-sock flood {{server.ip}} 5556 --count 20', at: '2s' },
      ],
      'nine-syns': [
        { on: 'server', script: 'tcplab-sock listen 5556 --backlog 128', at: '0s' },
        { on: 'firewall', script: rule, at: '1s', exit: 0 },
        { on: 'client', script: 'tcplab-sock flood {{server.ip}} 5556 --count 9', at: '2s' },
      ],
    });
    expectOnlyHonestPasses(by, ['nine-syns']);
  });

  it("Lab 13: data dropped by the client's own INPUT chain did not stop at the firewall", async () => {
    const by = await grade('13', 'your-turn', {
      honest: [
        {
          on: 'firewall',
          script: LAB13_DATA_FIREWALL_DROP,
          at: '0s',
          exit: 0,
        },
        { on: 'server', script: '(sleep 3; echo hello from the server; sleep 100) | nc -l 5556', at: '1s' },
        { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' },
      ],
      'client-drops': [
        { on: 'client', script: 'iptables -A INPUT -s {{server.ip}} -p tcp --sport 5556 --tcp-flags PSH PSH -j DROP', at: '0s', exit: 0 },
        { on: 'server', script: '(sleep 3; echo hello from the server; sleep 100) | nc -l 5556', at: '1s' },
        { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' },
      ],
    });
    expectOnlyHonestPasses(by, ['client-drops']);
  });

  it("Lab 10: fifty TIME_WAITs from ports bound by hand did not use up the client's ephemeral ports", async () => {
    const sink = { on: 'server', script: 'tcplab-sock sink 5557', at: '0s' };
    const by = await grade('10', 'your-turn', {
      honest: [sink, { on: 'client', script: 'sleep 1; tcplab-sock burst {{server.ip}} 5557 --count 60', at: '1s', exit: 0 }],
      'fixed-ports': [
        sink,
        {
          on: 'client',
          script: `sleep 1; python3 - <<'PY'
import socket
for p in range(20000, 20050):
    s = socket.socket(); s.bind(("", p)); s.connect(("{{server.ip}}", 5557)); s.sendall(b"x"); s.close()
PY`,
          at: '1s',
          exit: 0,
        },
      ],
    });
    expectOnlyHonestPasses(by, ['fixed-ports']);
  });
});
