// Red team, fifth round. Each task's checks on the wire ask that some segment was seen, but not that it belonged
// to the connection whose state is graded, nor that a rule of the task's did the dropping:
//
// - Lab 5: a refused SYN from the client's 6668 first (so one did reach the server), then the server's
//   TIME_WAIT from a connection the server makes with itself from the client's address on its loopback.
// - Lab 6: no firewall rule at all: the client sends its last ACKs with a hop limit of 1 (a host route of its
//   own), so they reach the firewall's front and die there (TTL exceeded), never reaching the server.
// - Lab 8: a normal close first (so the client's FIN did reach the server and the server's reached the client),
//   then the client drops its own FIN (OUTPUT), as in the third round.
// - Lab 9: a refused SYN of the server's from 7005, then a listener that closes after accept(), with the client
//   dropping the first SYN|ACKs on arrival, so that the listener retransmits one (same sequence number).
// - Lab 10: sixty connections the server closes first (so the client's FINs from the range did reach it, and the
//   client keeps nothing), then fifty TIME_WAITs with a listener on the client's own loopback.
//
// Each attack must score 0 while the honest answer beside it passes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import {
  background,
  type Entry,
  expectOnlyHonestPasses,
  gradeAnswers,
  LAB10_LOOPBACK_TIME_WAITS,
  LAB5_HONEST,
  LAB5_SERVER_WITH_ITSELF,
  LAB9_HONEST,
} from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-otherways5-'));

describeDocker('red team, fifth round: a segment seen is not the graded connection', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const grade = (lab: string, step: string, files: Record<string, Entry[]>) => gradeAnswers(dir, lab, step, files, 4);

  it("Lab 5: a refused SYN from 6668, then the server's connection with itself, is not the client's from 6668", async () => {
    const by = await grade('5', 'your-turn', {
      honest: LAB5_HONEST,
      'refused-syn-then-server-self': [
        { on: 'client', script: 'nc -p 6668 {{server.ip}} 5999', at: '0s', exit: 1 },
        {
          on: 'server',
          script: LAB5_SERVER_WITH_ITSELF,
          at: '1s',
          exit: 0,
        },
      ],
    });
    expectOnlyHonestPasses(by, ['refused-syn-then-server-self']);
  });

  it("Lab 6: the client's own last ACKs with a hop limit of 1 are not the firewall's rule", async () => {
    const by = await grade('6', 'your-turn', {
      honest: [
        {
          on: 'firewall',
          script: 'iptables -A FORWARD -s {{client.ip}} -p tcp --dport 5556 --tcp-flags SYN,ACK,FIN,RST,PSH ACK -j DROP',
          at: '0s',
          exit: 0,
        },
        { on: 'server', script: 'nc -l 5556', at: '1s' },
        { on: 'client', script: 'echo hello | nc -q0 {{server.ip}} 5556', at: '2s', exit: 0 },
      ],
      // The server (a program of the student's, in place of nc) closes 3 s after the client's FIN; meanwhile
      // the client's route to the server gets hop limit 1: its ACKs of the server's FINs expire at the
      // firewall's front (TTL exceeded) and never reach the server. No rule anywhere, the firewall untouched.
      // The route goes in while nc still holds the connection (it waits for the server's close), so it is
      // always in place before the server's FIN. The checks then start within 3 s of the handshake, whose last
      // ACK (a pure ACK, TTL 64) did reach the firewall: seen at the first look, it met "ACKs reach the firewall
      // in the last 3s" while the server's "none in the last 3s" was met only later, once that ACK had left its
      // window (CI, 2026-12-05: 4/4 when a slow nc let the replay add the route early).
      'client-hoplimit-1': [
        {
          on: 'server',
          script: background(`import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("", 5556)); l.listen(1)
a, _ = l.accept(); l.close()
while a.recv(100): pass
time.sleep(3); a.close(); time.sleep(600)`),
          at: '0s',
          exit: 0,
        },
        { on: 'client', script: 'echo hello | nc -q0 {{server.ip}} 5556', at: '1s' },
        { on: 'client', script: 'ip route add {{server.ip}}/32 via {{firewall.ip.front}} hoplimit 1', at: '2s', exit: 0 },
      ],
    });
    expectOnlyHonestPasses(by, ['client-hoplimit-1']);
  });

  it("Lab 8: a normal close first, then the client's own FIN rule, is not the server's rule", async () => {
    const talk: Entry[] = [
      { on: 'server', script: 'nc -l 5556', at: '5s', ctrlC: '10s' },
      { on: 'client', script: 'nc {{server.ip}} 5556', at: '6s', ctrlC: '8s' },
    ];
    const by = await grade('8', 'your-turn', {
      honest: [{ on: 'server', script: 'iptables -A INPUT -p tcp --dport 5556 --tcp-flags FIN FIN -j DROP', at: '0s', exit: 0 }, ...talk],
      // Both FINs of a normal close cross the wire first; the second connection's FIN never leaves the client.
      'normal-close-then-client-drops-own-fin': [
        { on: 'server', script: 'nc -l 5556', at: '0s' },
        { on: 'client', script: 'sleep 1; echo x | nc -q0 {{server.ip}} 5556; sleep 3', at: '1s', exit: 0 },
        { on: 'client', script: 'iptables -A OUTPUT -p tcp --dport 5556 --tcp-flags FIN FIN -j DROP', at: '4s', exit: 0 },
        ...talk,
      ],
    });
    expectOnlyHonestPasses(by, ['normal-close-then-client-drops-own-fin']);
  });

  it('Lab 9: a listener whose SYN|ACK is retransmitted, after a refused SYN, is not a simultaneous open', async () => {
    const synack = 'iptables -%s INPUT -p tcp --sport 7005 --tcp-flags SYN,ACK SYN,ACK -j DROP';
    const by = await grade('9', 'your-turn', {
      honest: LAB9_HONEST,
      'stray-syn-listener-retransmits': [
        { on: 'server', script: 'nc -p 7005 {{client.ip}} 7004', at: '0s', exit: 1 },
        { on: 'client', script: synack.replace('%s', 'A'), at: '1s', exit: 0 },
        {
          on: 'server',
          script: background(`import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("", 7005)); l.listen(1)
a, _ = l.accept(); l.close(); time.sleep(600)`),
          at: '1s',
          exit: 0,
        },
        { on: 'client', script: 'sleep 1; nc -p 7004 {{server.ip}} 7005', at: '2s' },
        { on: 'client', script: synack.replace('%s', 'D'), at: '6s', exit: 0 },
      ],
    });
    expectOnlyHonestPasses(by, ['stray-syn-listener-retransmits']);
  });

  it("Lab 10: the client's FINs of connections the server closed, then TIME_WAITs on its own loopback", async () => {
    const sink = { on: 'server', script: 'tcplab-sock sink 5557', at: '0s' };
    const by = await grade('10', 'your-turn', {
      honest: [sink, { on: 'client', script: 'sleep 1; tcplab-sock burst {{server.ip}} 5557 --count 60', at: '1s', exit: 0 }],
      'server-closes-first-then-self-connect': [
        {
          on: 'server',
          script: background(`import socket, time
l = socket.socket(); l.bind(("", 5557)); l.listen(64)
while True:
    a, _ = l.accept(); a.close()`),
          at: '0s',
          exit: 0,
        },
        {
          on: 'client',
          script: `sleep 1
python3 - <<'PY'
import socket, time
for i in range(60):
    s = socket.socket(); s.connect(("{{server.ip}}", 5557))
    while s.recv(100): pass
    s.close()
time.sleep(1)
PY
${LAB10_LOOPBACK_TIME_WAITS}`,
          at: '1s',
          exit: 0,
        },
      ],
    });
    expectOnlyHonestPasses(by, ['server-closes-first-then-self-connect']);
  });
});
