// Submissions written by a test, as a student's `lab submit` would (the timed form: each entry a machine's
// command, when it started, how it ended), graded as a class by the real CLI. For the red-team tests: each
// attack is graded beside honest answers that must pass.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { resolveLab } from '../../src/lab/catalogue.js';
import { variantValues } from '../../src/lab/variants.js';
import { cantTellLasted } from '../../src/grade/grade.js';

const run = promisify(execFile);
/** TCPLAB_RED_TEAM_BIN points these tests at another build's bin/lab.js (to try an attack on an older one). */
const bin = process.env.TCPLAB_RED_TEAM_BIN ?? new URL('../../bin/lab.js', import.meta.url).pathname;

/** Python run in the background of an answer's shell, so that its sockets outlive the entry. */
export const background = (code: string) => `python3 - <<'PY' &\n${code}\nPY`;

export interface Entry {
  on: string;
  script: string;
  at?: string;
  exit?: number;
  /** When Ctrl-C ended it. */
  ctrlC?: string;
}

interface Graded {
  student: string;
  passed: boolean;
  score: number;
  gradable: boolean;
  tasks?: { step: string; items: { checks: { passed: boolean; expected?: string; name: string; seen?: string[] }[] }[] }[];
}

/** What each task's checks saw, first: a report cut short (CI shows the start of a message) still says why. */
function why(name: string, g: Graded | undefined): string {
  if (!g) return `${name}: not graded`;
  const checks = (g.tasks ?? []).flatMap((t) =>
    (t.items[0]?.checks ?? []).map(
      (c) => `${c.passed ? 'met' : 'NOT met'}: ${c.expected ?? c.name} / seen ${JSON.stringify(c.seen ?? [])}`,
    ),
  );
  return `${name}: score ${g.score}; ${checks.join('; ')}; ${JSON.stringify(g)}`;
}

const indent = (text: string, n: number) =>
  text
    .split('\n')
    .map((l) => `${' '.repeat(n)}${l}\n`)
    .join('');

function submissionText(student: string, lab: string, step: string, entries: Entry[]): string {
  return (
    `student: ${student}\nlab: ${lab}\nanswers:\n  ${step}:\n` +
    entries
      .map(
        (e) =>
          `    - ${e.on}: |\n${indent(e.script, 8)}` +
          (e.at ? `      at: ${e.at}\n` : '') +
          (e.exit !== undefined ? `      exit: ${e.exit}\n` : '') +
          (e.ctrlC ? `      ctrl-c: ${e.ctrlC}\n` : ''),
      )
      .join('')
  );
}

/**
 * Write one file per student under dir/lab<N> and grade them as a class (no retries): results by student.
 *
 * An honest answer (honest, honest-...) that missed only because the host was too busy to tell whether a state
 * lasted ("can't tell whether it lasted": the lab's own commands were kept waiting for a CPU while two test
 * files share two cores) is graded again, up to twice: that miss says nothing about the attack beside it. An
 * attack is never graded again: a host too busy to tell only lowers what it scores.
 */
export async function gradeAnswers(
  dir: string,
  lab: string,
  step: string,
  files: Record<string, Entry[]>,
  parallel = 4,
): Promise<Record<string, Graded>> {
  let by = await gradeBatch(join(dir, `lab${lab}`), lab, step, files, parallel);
  for (let n = 1; n <= 2; n++) {
    const again = Object.keys(files).filter((s) => /^honest(-|$)/.test(s) && by[s] && onlyStarved(by[s]!));
    if (!again.length) break;
    const regraded = await gradeBatch(
      join(dir, `lab${lab}-again${n}`),
      lab,
      step,
      Object.fromEntries(again.map((s) => [s, files[s]!])),
      parallel,
    );
    by = { ...by, ...regraded };
  }
  return by;
}

async function gradeBatch(
  subs: string,
  lab: string,
  step: string,
  files: Record<string, Entry[]>,
  parallel: number,
): Promise<Record<string, Graded>> {
  mkdirSync(subs, { recursive: true });
  for (const [student, entries] of Object.entries(files))
    writeFileSync(join(subs, `${student}.yaml`), submissionText(student, lab, step, entries));
  const r = await run(
    process.execPath,
    [bin, 'grade', lab, '--submissions', subs, '--parallel', String(parallel), '--retries', '0', '--json'],
    { maxBuffer: 64 << 20 },
  ).catch((e: { stdout: string }) => e);
  return Object.fromEntries((JSON.parse(r.stdout) as { submissions: Graded[] }).submissions.map((x) => [x.student, x]));
}

/** It did not pass, and every check it missed could not tell whether a state lasted. */
function onlyStarved(g: Graded): boolean {
  if (g.passed || !g.gradable) return false;
  const missed = (g.tasks ?? []).flatMap((t) => t.items.flatMap((i) => i.checks)).filter((c) => !c.passed);
  return missed.length > 0 && missed.every((c) => (c.seen ?? []).some(cantTellLasted));
}

/** "honest" passes, and so does every "honest-..." (a right answer after a try without the rule); each attack
 *  is graded and scores 0. */
export function expectOnlyHonestPasses(by: Record<string, Graded>, attacks: string[]): void {
  expect(by.honest?.passed, why('honest', by.honest)).toBe(true);
  for (const name of Object.keys(by).filter((n) => n.startsWith('honest-'))) expect(by[name]!.passed, why(name, by[name])).toBe(true);
  for (const name of attacks) {
    expect(by[name], `${name} was graded`).toBeDefined();
    expect.soft(by[name]!.gradable, why(name, by[name])).toBe(true);
    expect.soft(by[name]!.score, why(name, by[name])).toBe(0);
  }
}

/** Lab 1's port for this student (a variant: each student has their own). */
export function lab1Port(student: string): string {
  return variantValues(resolveLab('1').lab, student)['variant.port']!;
}

/** Lab 1's right answer for the student called "honest": a listener on their port, a client that closes first. */
export function lab1Honest(): Entry[] {
  const port = lab1Port('honest');
  return [
    { on: 'server', script: `nc -l ${port}`, at: '0s' },
    {
      on: 'client',
      script: `for i in $(seq 50); do echo hi | nc -q0 {{server.ip}} ${port} && exit 0; sleep 0.2; done; exit 1`,
      at: '1s',
      exit: 0,
    },
  ];
}

/** Two SYNs from a raw socket (their answers' resets dropped): the server holds two half-open connections
 *  that no real client made. */
export const RAW_SYNS = `iptables -A OUTPUT -p tcp -d {{server.ip}} --dport 5556 --tcp-flags RST RST -j DROP
python3 - <<'PY'
import socket, struct
src, dst = "{{client.ip}}", "{{server.ip}}"
def csum(b):
    if len(b) % 2: b += b"\\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for sport in (41001, 41002):
    hdr = struct.pack("!HHIIBBHHH", sport, 5556, 12345, 0, 5 << 4, 0x02, 64240, 0, 0)
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr))
    hdr = hdr[:16] + struct.pack("!H", csum(ph + hdr)) + hdr[18:]
    r.sendto(hdr, (dst, 0))
PY`;

/** Lab 7's rule: the firewall drops the server's FINs. */
export const LAB7_FIN_FIREWALL_DROP = 'iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP';

/** Lab 7 done right: the rule, then a connection the server closes. */
export const LAB7_HONEST: Entry[] = [
  { on: 'firewall', script: LAB7_FIN_FIREWALL_DROP, at: '0s', exit: 0 },
  { on: 'server', script: 'nc -l 5556', at: '1s', ctrlC: '4s' },
  { on: 'client', script: 'nc {{server.ip}} 5556', at: '2s' },
];

/** Lab 7 done right after a close tried with no rule first (its FIN left the firewall then). */
export const LAB7_HONEST_AFTER_A_TRY: Entry[] = [
  { on: 'server', script: 'nc -l 5556', at: '0s', ctrlC: '3s' },
  { on: 'client', script: 'nc {{server.ip}} 5556', at: '1s', ctrlC: '4s' },
  { on: 'firewall', script: LAB7_FIN_FIREWALL_DROP, at: '5s', exit: 0 },
  { on: 'server', script: 'nc -l 5556', at: '6s', ctrlC: '9s' },
  { on: 'client', script: 'nc {{server.ip}} 5556', at: '7s' },
];

/** Lab 13's rule: the firewall drops the server's data. */
export const LAB13_DATA_FIREWALL_DROP = 'iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags PSH PSH -j DROP';

/** Lab 13 done right after a line sent with no rule first (it went through the firewall then). */
export const LAB13_HONEST_AFTER_A_TRY: Entry[] = [
  { on: 'server', script: 'echo first try | nc -l 5556', at: '0s', ctrlC: '3s' },
  { on: 'client', script: 'nc {{server.ip}} 5556', at: '1s', ctrlC: '3s' },
  { on: 'firewall', script: LAB13_DATA_FIREWALL_DROP, at: '4s', exit: 0 },
  { on: 'server', script: '(sleep 3; echo hello from the server; sleep 100) | nc -l 5556', at: '5s' },
  { on: 'client', script: 'nc {{server.ip}} 5556', at: '6s' },
];

export const SYNACK_FIREWALL_DROP = 'iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags SYN,ACK SYN,ACK -j DROP';

/** Labs 11 and 12: a listener of this backlog and a flood of this many SYNs, with the firewall's drop of the
 *  SYN|ACKs (honest), also after a flood tried with no rule, whose SYN|ACKs left the firewall then
 *  (honest-after-a-try). `instead(on, script)`: the same listener and flood with another answer between them. */
export function synQueueAnswers(backlog: number, count: number) {
  const listen = `tcplab-sock listen 5556 --backlog ${backlog}`;
  const flood = `tcplab-sock flood {{server.ip}} 5556 --count ${count}`;
  const instead = (on: string, script: string): Entry[] => [
    { on: 'server', script: listen, at: '0s' },
    { on, script, at: '1s', exit: 0 },
    { on: 'client', script: flood, at: '2s' },
  ];
  const honest: Record<string, Entry[]> = {
    honest: instead('firewall', SYNACK_FIREWALL_DROP),
    'honest-after-a-try': [
      { on: 'server', script: listen, at: '0s', ctrlC: '4s' },
      { on: 'client', script: flood, at: '1s', ctrlC: '3s' },
      { on: 'firewall', script: SYNACK_FIREWALL_DROP, at: '5s', exit: 0 },
      { on: 'server', script: listen, at: '6s' },
      { on: 'client', script: flood, at: '7s' },
    ],
  };
  return { honest, instead };
}

/** Lab 5: the server's TIME_WAIT from a connection it makes with itself from the client's address and port 6668,
 *  on its own loopback (red team, third and fifth rounds). */
export const LAB5_SERVER_WITH_ITSELF = `ip addr add {{client.ip}}/32 dev lo
python3 -c '
import socket, time
l = socket.socket(); l.bind(("{{server.ip}}", 5557)); l.listen(1)
c = socket.socket(); c.bind(("{{client.ip}}", 6668)); c.connect(("{{server.ip}}", 5557))
a, _ = l.accept(); l.close()
a.close(); time.sleep(0.3); c.close(); time.sleep(0.3)'
ip addr del {{client.ip}}/32 dev lo`;

/** Lab 10: fifty TIME_WAITs on the client from its own address to the server's, made with a listener on the
 *  client's loopback, so nothing crosses the network (red team, third and fifth rounds). */
export const LAB10_LOOPBACK_TIME_WAITS = `ip addr add {{server.ip}}/32 dev lo
python3 - <<'PY'
import socket
l = socket.socket(); l.bind(("{{server.ip}}", 5557)); l.listen(64)
for i in range(50):
    s = socket.socket(); s.setsockopt(socket.SOL_IP, 24, 1); s.bind(("{{client.ip}}", 0)); s.connect(("{{server.ip}}", 5557))
    a, _ = l.accept(); s.close(); a.close()
PY`;

/** Lab 5's task done: the server closes first, so the TIME_WAIT is its own and the client's 6668 is free. */
export const LAB5_HONEST: Entry[] = [
  { on: 'server', script: 'echo bye | nc -q0 -l 5557', at: '0s' },
  { on: 'client', script: 'nc -p 6668 {{server.ip}} 5557', at: '1s', ctrlC: '3s' },
];

const lab9Rule = (op: 'A' | 'D') => `iptables -${op} INPUT -p tcp --tcp-flags SYN,ACK SYN -j DROP`;
/** Lab 9's task done: each side drops the other's SYN on arrival until both have sent their own, then the rules
 *  go and the retransmitted SYNs cross: a simultaneous open. */
export const LAB9_HONEST: Entry[] = [
  { on: 'client', script: lab9Rule('A'), at: '0s', exit: 0 },
  { on: 'server', script: lab9Rule('A'), at: '1s', exit: 0 },
  { on: 'client', script: 'nc -p 7004 {{server.ip}} 7005', at: '2s' },
  { on: 'server', script: 'nc -p 7005 {{client.ip}} 7004', at: '3s' },
  { on: 'client', script: lab9Rule('D'), at: '5s', exit: 0 },
  { on: 'server', script: lab9Rule('D'), at: '6s', exit: 0 },
];

// The fourth round's broken networks (other-ways-4*.test.ts).
/** A MAC address no machine of the lab has. */
export const NOBODY = '02:00:00:00:00:01';
/** The server's frames to the firewall (its only way to the client) addressed to nobody. */
export const serverMisaddresses = `ip neigh replace {{firewall.ip.back}} lladdr ${NOBODY} nud permanent dev back`;
/** The server's segments from its port 5556 alone sent to nobody (a policy route to a gateway that no machine
 *  is): the firewall's ping still gets through, and the frames still reach the firewall's tunnel, addressed to
 *  another machine. */
export const serverMisdirectsPort = [
  'ip rule add ipproto tcp sport 5556 table 100',
  'ip route add default via 198.18.255.254 dev back onlink table 100',
  `ip neigh replace 198.18.255.254 lladdr ${NOBODY} nud permanent dev back`,
].join(' && ');
/** Ways the firewall stops forwarding everything, not one kind of segment. */
export const BREAKS: Record<string, string> = {
  'firewall-link-down': 'ip link set front down',
  'firewall-policy-drop': 'iptables -P FORWARD DROP',
  'firewall-no-route': 'ip route del {{net.front}} dev front',
};
