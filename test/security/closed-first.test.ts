// Red team: a TIME_WAIT that is not the one the task asks for. Labs 1 and 10 ask for the client's TIME_WAIT, the
// state of the side that closed first. Their checks saw that the client's connection and its close reached the
// server, and (Lab 10) that the server, which closed second, keeps no TIME_WAIT. Both were met without the client
// ever closing first on the network:
//
// - Lab 1: the server closes first (so the client's SYN and FIN did reach the server's port); then the client
//   makes its TIME_WAIT with a connection to itself, from its own address to the server's address added to its
//   loopback: nothing of it crossed the network.
// - Lab 5: the same the other way round: the client closes first from 6668 (so both FINs crossed), removes its
//   own TIME_WAIT with `ss -K`, and the server makes its TIME_WAIT with a connection to itself from the client's
//   address and port, added to its loopback.
// - Lab 10: sixty connections the server closes first, then fifty TIME_WAITs on the client's loopback (the fifth
//   round's attack), and the server's own TIME_WAITs destroyed with `ss -K`, which takes a TIME_WAIT socket away
//   on the lab's kernel and sends nothing.
//
// Each must score 0 while the honest answer beside it passes.
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
  lab1Honest,
  lab1Port,
} from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-closedfirst-'));

/** The server accepts and closes at once: it closes first, and the client second. Every time, or (`once`) for
 *  one connection, after which it listens no more. */
const serverClosesFirst = (port: number | string, once = false): Entry => ({
  on: 'server',
  script: background(`import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("", ${port})); l.listen(64)
while True:
    a, _ = l.accept(); a.close()
    if ${once ? 'True' : 'False'}: l.close(); time.sleep(600)`),
  at: '0s',
  exit: 0,
});

/** The client connects `n` times and closes each connection once the server has closed it. */
const clientClosesSecond = (port: number | string, n: number) => `sleep 1
python3 - <<'PY'
import socket, time
for i in range(${n}):
    s = socket.socket(); s.connect(("{{server.ip}}", ${port}))
    while s.recv(100): pass
    s.close()
time.sleep(1)
PY`;

describeDocker('red team: a TIME_WAIT made on the loopback is not the client closing first', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("Lab 1: the server's close, then the client's TIME_WAIT with itself, is not the client closing first", async () => {
    const student = 'server-closes-then-self';
    const port = lab1Port(student);
    const by = await gradeAnswers(dir, '1', 'your-turn', {
      honest: lab1Honest(),
      [student]: [
        serverClosesFirst(port, true),
        { on: 'client', script: clientClosesSecond(port, 1), at: '1s', exit: 0 },
        {
          on: 'client',
          script: `ip addr add {{server.ip}}/32 dev lo
python3 - <<'PY'
import socket
l = socket.socket(); l.bind(("{{server.ip}}", ${port})); l.listen(1)
s = socket.socket(); s.bind(("{{client.ip}}", 0)); s.connect(("{{server.ip}}", ${port}))
a, _ = l.accept(); s.close(); a.close(); l.close()
PY`,
          at: '3s',
          exit: 0,
        },
      ],
    });
    console.log('DBG', JSON.stringify(by[student]!.tasks?.[0]?.items[0]?.checks.map((c) => [c.passed, c.name, c.seen])));
    expectOnlyHonestPasses(by, [student]);
  });

  it("Lab 5: the client's close from 6668, its TIME_WAIT removed, then the server's TIME_WAIT with itself", async () => {
    const by = await gradeAnswers(dir, '5', 'your-turn', {
      honest: LAB5_HONEST,
      'client-closes-kill-then-server-self': [
        { on: 'server', script: 'nc -l 5557', at: '0s' },
        { on: 'client', script: 'echo x | nc -q0 -p 6668 {{server.ip}} 5557', at: '1s', exit: 0 },
        { on: 'client', script: "ss -K state time-wait '( sport = :6668 )' >/dev/null", at: '2s', exit: 0 },
        { on: 'server', script: LAB5_SERVER_WITH_ITSELF, at: '3s', exit: 0 },
      ],
    });
    expectOnlyHonestPasses(by, ['client-closes-kill-then-server-self']);
  });

  it("Lab 10: connections the server closed, its TIME_WAITs destroyed, and TIME_WAITs on the client's loopback", async () => {
    const by = await gradeAnswers(
      dir,
      '10',
      'your-turn',
      {
        honest: [
          { on: 'server', script: 'tcplab-sock sink 5557', at: '0s' },
          { on: 'client', script: 'sleep 1; tcplab-sock burst {{server.ip}} 5557 --count 60', at: '1s', exit: 0 },
        ],
        'server-closes-first-kill-then-self': [
          serverClosesFirst(5557),
          { on: 'client', script: `${clientClosesSecond(5557, 60)}\n${LAB10_LOOPBACK_TIME_WAITS}`, at: '1s', exit: 0 },
          {
            on: 'server',
            script: "ss -K state time-wait '( sport = :5557 )' >/dev/null; ss -tan | grep -c TIME-WAIT || true",
            at: '2s',
            exit: 0,
          },
        ],
      },
      2,
    );
    expectOnlyHonestPasses(by, ['server-closes-first-kill-then-self']);
  });
});
