// Red team, third and fourth rounds: a lost segment must be lost (or refused) where the task says. Lab 6's task asks for the client's
// last ACK to be dropped by the firewall (its FORWARD chain); a rule on the server's own INPUT chain, or on the
// client's OUTPUT chain, leaves the same two states (LAST_ACK and TIME_WAIT) without the firewall doing
// anything. Only the wire tells them apart: the client's ACKs must reach the firewall and never the server.
// A student who tried nc before writing the rule put such ACKs on the server's wire too; they must not fail a
// right answer made afterwards, so the checks look at what is happening now (the last seconds), not at the
// whole step.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { expectOnlyHonestPasses, gradeAnswers, type Entry } from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-dropped-'));
const grade = (lab: string, step: string, files: Record<string, Entry[]>) => gradeAnswers(dir, lab, step, files);

const PURE_ACK = '-p tcp --dport 5556 --tcp-flags SYN,ACK,FIN,RST,PSH ACK -j DROP';
/** One connection to the server's port 5556 that the client closes first, after a line of data. */
const connection = (at: number): Entry[] => [
  { on: 'server', script: 'nc -l 5556', at: `${at}s` },
  {
    on: 'client',
    script: 'for i in $(seq 50); do echo hello | nc -q0 {{server.ip}} 5556 && exit 0; sleep 0.1; done; exit 1',
    at: `${at + 1}s`,
    exit: 0,
  },
];

describeDocker('red team: a segment lost somewhere else, or otherwise, than the task says', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("Lab 6: the last ACK dropped by the server's or the client's own rules is not the firewall's", async () => {
    const files: Record<string, Entry[]> = {
      honest: [{ on: 'firewall', script: `iptables -A FORWARD -s {{client.ip}} ${PURE_ACK}`, at: '0s', exit: 0 }, ...connection(0)],
      // A whole connection without any rule first (its ACKs reach the server), then the right rule.
      'honest-after-a-try': [
        ...connection(0),
        { on: 'firewall', script: `iptables -A FORWARD -s {{client.ip}} ${PURE_ACK}`, at: '3s', exit: 0 },
        ...connection(3),
      ],
      'server-input': [{ on: 'server', script: `iptables -A INPUT -s {{client.ip}} ${PURE_ACK}`, at: '0s', exit: 0 }, ...connection(0)],
      'client-output': [{ on: 'client', script: `iptables -A OUTPUT ${PURE_ACK}`, at: '0s', exit: 0 }, ...connection(0)],
    };
    expectOnlyHonestPasses(await grade('6', 'your-turn', files), ['server-input', 'client-output']);
  });

  // Lab 2's 6 points for "the SYN never reached the server" are for a rule that keeps it from the server (a
  // REJECT is half right). A client cut off from the network keeps every SYN from the server too, and is no
  // rule at all: the task's check first asks the client for its way to the server (ip route get).
  it("Lab 2: a client with no interface or no route is not a firewall's drop, and earns nothing", async () => {
    const by = await grade('2', 'drop-syn', {
      honest: [{ on: 'client', script: 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP', at: '0s', exit: 0 }],
      'no-interface': [{ on: 'client', script: 'ip link del eth0', at: '0s', exit: 0 }],
      'no-route': [{ on: 'client', script: 'ip route flush table main', at: '0s', exit: 0 }],
    });
    expectOnlyHonestPasses(by, ['no-interface', 'no-route']);
  });
  it("Lab 4: the probe's SYN refused by the client itself, beside SYNs of its own that the firewall drops", async () => {
    const REJECT = 'iptables -R FORWARD 1 -p tcp --dport 5555 -j REJECT';
    /** The client refuses only the lab's own commands (uid 990, the probe), while a loop of its own puts SYNs on
     *  the wire for the firewall's untouched DROP to swallow. */
    const probeOnly = (reject: string): Entry[] => [
      { on: 'client', script: `iptables -I OUTPUT -m owner --uid-owner 990 -p tcp --dport 5555 -j REJECT ${reject}`, at: '0s', exit: 0 },
      { on: 'client', script: 'while :; do nc -w 1 {{server.ip}} 5555; sleep 0.2; done', at: '0s' },
    ];
    const by = await grade('4', 'your-turn', {
      honest: [{ on: 'firewall', script: `${REJECT} --reject-with tcp-reset`, at: '0s', exit: 0 }],
      // REJECT's default answer is an ICMP port unreachable: nc says "Connection refused" too.
      'honest-icmp': [{ on: 'firewall', script: REJECT, at: '0s', exit: 0 }],
      'honest-after-a-try': [
        { on: 'client', script: 'nc -v -w 1 {{server.ip}} 5555', at: '0s', exit: 1 },
        { on: 'firewall', script: `${REJECT} --reject-with tcp-reset`, at: '2s', exit: 0 },
      ],
      'probe-refused-by-client': probeOnly('--reject-with tcp-reset'),
      'probe-refused-by-client-icmp': probeOnly(''),
      // The first SYN of each connection goes out (and reaches the firewall); the client refuses its retransmission.
      'retransmission-refused-by-client': [
        {
          on: 'client',
          script:
            'iptables -I OUTPUT -p tcp --dport 5555 --syn -m recent --name syn --set\n' +
            'iptables -I OUTPUT -p tcp --dport 5555 --syn -m recent --name syn --rcheck -j REJECT --reject-with tcp-reset',
          at: '0s',
          exit: 0,
        },
      ],
    });
    expectOnlyHonestPasses(by, ['probe-refused-by-client', 'probe-refused-by-client-icmp', 'retransmission-refused-by-client']);
  });
});
