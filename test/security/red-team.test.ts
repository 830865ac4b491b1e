// Red team: submissions written as a student who is root in their machines and has read tcplab's source would
// write them, graded by the real CLI against the real engine. Each attack must NOT be met, and must be graded
// (a verdict, exit 1), not turned into "not gradable"; the honest answer beside them must pass.
//
// Until the agent (images/node/tcplab-agent.c), the forged ones passed: the grader read "### ss" sections that
// a peer's data could fill, and status files in /tmp that the answer could rewrite, from an observer and a
// recorder the answer could kill. TCPLAB_RED_TEAM_BIN points these tests at another build's bin/lab.js.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { encodeFrame, field, u32, u64 } from '../../src/observe/wire.js';

const run = promisify(execFile);
const bin = process.env.TCPLAB_RED_TEAM_BIN ?? new URL('../../bin/lab.js', import.meta.url).pathname;
const hangLab = new URL('../fixtures/security/hang.yaml', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'tcplab-redteam-'));

const indent = (text: string) =>
  text
    .split('\n')
    .map((l) => `      ${l}\n`)
    .join('');
function submission(student: string, lab: string, step: string, parts: Record<string, string>): string {
  return (
    `student: ${student}\nlab: ${lab}\nanswers:\n  ${step}:\n` +
    Object.entries(parts)
      .map(([node, script]) => `    ${node}: |\n${indent(script)}`)
      .join('')
  );
}

/** What a peer would send to make the old observer take it for the client's sockets and the probe's status. */
const OLD_SECTIONS = (client: string, server: string) =>
  `### ss\nSYN-SENT 0 1 ${client}:40000 ${server}:5555\n### command check-client\nrunning\n### end 1 0\n`;
/** The same, as frames of the new wire: a look answer with a SYN-SENT socket, base64 for the shell. */
function forgedFrame(): string {
  const socket = Buffer.alloc(4 + 20 + 32 + 24 + 32);
  socket.writeUInt8(4, 0);
  socket.writeUInt8(2, 1); // SYN_SENT
  socket.writeUInt32BE(((40000 << 16) | 5555) >>> 0, 20);
  const look = encodeFrame({ seq: 2, kind: 0x82, fields: [field('t', u64(99)), field('T', u64(1n)), field('k', socket)] });
  return Buffer.concat([look, encodeFrame({ seq: 3, kind: 0x82, fields: [field('x', u32(0))] })]).toString('base64');
}

/** A server answer that redirects 5555 to a port of its own, where a listener sends what `producer` prints to
 *  whoever connects. The producer is shell text of the answer, so the grader fills in its templates
 *  ({{client.ip}}) as it does in any answer: the forged lines carry the lab's real addresses. */
const REDIRECT_AND_SEND = (producer: string) =>
  [
    'iptables -t nat -A PREROUTING -p tcp --dport 5555 -j REDIRECT --to-ports 7777',
    `(while :; do ${producer} | nc -l -q1 7777; done) >/dev/null 2>&1 &`,
  ].join('\n');
const printText = (text: string) => `printf '${text.replace(/\n/g, '\\n')}'`;
const printBase64 = (b64: string) => `echo ${b64} | base64 -d`;

/** On a machine: try everything a root student can against the agent, the recorder and the lab's commands, in
 *  the background, for as long as the check runs. */
const KILL_AND_FORGE = [
  // Kill every process that is not this shell: the agent, its relays, the probe's nc, the machine's main process.
  '(sleep 0.5; kill -9 -1) &',
  '(for i in $(seq 40); do pkill -9 -f tcplab; pkill -9 nc; sleep 0.1; done) >/dev/null 2>&1 &',
  // Rewrite what the old tcplab-run and tcplab-capture kept, and the new one would, if it kept files.
  'mkdir -p /tmp/tcplab /tmp/tcplab-capture; for n in check-client check-listener; do echo running > /tmp/tcplab/$n.status; echo 0 > /tmp/tcplab/$n.rc; done; rm -f /tmp/tcplab-capture/*',
  // Write forged sections into the output of every process it can open.
  `(for i in $(seq 40); do for f in /proc/[0-9]*/fd/1 /proc/[0-9]*/fd/2; do printf '### command check-client\\nrunning\\n' > $f; done 2>/dev/null; sleep 0.1; done) &`,
].join('\n');

/** Talk to the agent's socket as the agent's own relay would, with a request to run a command as the agent. */
const FEED_AGENT = `python3 - <<'PY' &
import socket, struct, time
for _ in range(20):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(b"\\0tcplab-agent")
        argv = [b"iptables", b"-I", b"OUTPUT", b"-p", b"tcp", b"--dport", b"5555", b"--syn", b"-j", b"DROP"]
        body = struct.pack(">IB", 1, 3) + b"".join(struct.pack(">BI", ord("a"), len(a)) + a for a in argv)
        s.sendall(struct.pack(">I", len(body)) + body)
        s.recv(100)
    except Exception:
        pass
    time.sleep(0.1)
PY`;

/** As many busy loops as a machine's process limit leaves room for, each in a session of its own. */
const STARVE = "for i in $(seq 60); do setsid sh -c 'while :; do :; done' >/dev/null 2>&1 & done";

const ATTACKS: Record<string, Record<string, string>> = {
  // The attack that passed Lab 2 before: no rule at all, a peer's text taken for the grader's.
  'peer-sends-old-sections': { server: REDIRECT_AND_SEND(printText(OLD_SECTIONS('{{client.ip}}', '{{server.ip}}'))) },
  'peer-sends-frames': { server: REDIRECT_AND_SEND(printBase64(forgedFrame())) },
  'prints-sections-and-frames': {
    client: `${printText(OLD_SECTIONS('{{client.ip}}', '{{server.ip}}'))}; ${printBase64(forgedFrame())}`,
  },
  'kills-and-forges': { client: KILL_AND_FORGE, server: KILL_AND_FORGE },
  'feeds-the-agent': { client: FEED_AGENT },
  'floods-output': { client: '(yes "### command check-client" | head -c 50000000) &\nyes running &' },
  'stops-its-machine': { client: '(sleep 0.5; kill -9 -1) &', server: '(sleep 0.5; kill -TERM 1; kill -INT 1; kill -9 -1) &' },
  // Busy loops in sessions of their own (outside the answer's process group, so not counted as the answer's):
  // on a machine they fill, the lab's own probe waits for the CPU, and a state that must last "holds" only
  // because nothing could end it. The lab's probe is counted while it waits (runnable), so no hold is met.
  'starves-the-probe': { client: STARVE, server: STARVE },
};

describeDocker('red team: what a root student can do in their machines does not change a verdict', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function grade(lab: string, step: string, labName: string, files: Record<string, Record<string, string>>) {
    const subs = join(dir, labName);
    mkdirSync(subs, { recursive: true });
    for (const [student, parts] of Object.entries(files))
      writeFileSync(join(subs, `${student}.yaml`), submission(student, lab === hangLab ? '990' : lab, step, parts));
    const r = await run(
      process.execPath,
      [bin, 'grade', lab, '--submissions', subs, '--parallel', '3', '--retries', '0', '--task-timeout', '8s', '--json'],
      {
        maxBuffer: 64 << 20,
      },
    ).catch((e: { stdout: string; stderr: string; code: number }) => e);
    const results = (
      JSON.parse(r.stdout) as {
        submissions: {
          student: string;
          passed: boolean;
          score: number;
          gradable: boolean;
          tasks: { step: string; items: { name: string; points: number; checks: { name: string; passed: boolean }[] }[] }[];
        }[];
      }
    ).submissions;
    return { results };
  }

  it('Lab 2: forged sections, killing, feeding, flooding and stopping a machine are all graded and none is met; the honest answer passes', async () => {
    // Four of the attacks here (a failing answer stops once nothing left can earn it points), all of them on the
    // one-task lab below.
    const attacks = ['peer-sends-old-sections', 'kills-and-forges', 'stops-its-machine', 'starves-the-probe'];
    const { results } = await grade('2', 'drop-syn', 'lab2', {
      honest: { client: 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP' },
      ...Object.fromEntries(attacks.map((a) => [a, ATTACKS[a]!])),
    });
    const by = Object.fromEntries(results.map((r) => [r.student, r]));
    expect(by.honest?.passed, JSON.stringify(by.honest)).toBe(true);
    // Soft: on a build that an attack gets through, the run lists every attack that did, not only the first.
    for (const name of attacks) {
      const r = by[name];
      expect(r, `${name} was graded`).toBeDefined();
      expect.soft(r!.passed, `${name}: ${JSON.stringify(r)}`).toBe(false);
      // A verdict, not "not gradable": the engine was fine, the answer was wrong.
      expect.soft(r!.gradable, `${name} is graded, not an engine error: ${JSON.stringify(r)}`).toBe(true);
      // The task's check that the forgery aimed at: the client's SYN_SENT socket. (The probe still running is not:
      // with the server redirected, nc is really connected and really running, as the lab says.)
      const task = r!.tasks.find((t) => t.step === 'drop-syn');
      const socket = task?.items.flatMap((i) => i.checks).find((c) => c.name.includes('socket SYN_SENT'));
      expect.soft(socket?.passed, `${name}: ${JSON.stringify(socket)}`).toBe(false);
      // Nor the points a half-right rule earns: each of these is no rule at all. Redirecting the port to a
      // listener of its own keeps 5555 free of connections on the server, but the SYN still reached it.
      const earned = r!.tasks.flatMap((t) => t.items.filter((i) => i.points > 0).map((i) => i.name));
      expect.soft(r!.score, `${name} scores nothing, but earned points for: ${earned.join('; ')}`).toBe(0);
    }
  });

  it('a task graded on states, a command, segments (count 0) and a counter: every attack fails every check it aims at', async () => {
    const { results } = await grade(hangLab, 'hang', 'hang', {
      honest: { client: 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP' },
      ...ATTACKS,
    });
    const by = Object.fromEntries(results.map((r) => [r.student, r]));
    expect(by.honest?.passed, JSON.stringify(by.honest)).toBe(true);
    for (const name of Object.keys(ATTACKS)) {
      const r = by[name];
      expect.soft(r?.passed, `${name}: ${JSON.stringify(r)}`).toBe(false);
      expect.soft(r?.gradable, `${name} is graded`).toBe(true);
      expect.soft(r?.score, `${name} scores nothing`).toBe(0);
      // Every check whose evidence the attacks forged, rewrote or tried to silence is not met: the state, the
      // segments that must not have arrived (count 0), the counter.
      const checks = r?.tasks[0]?.items.flatMap((i) => i.checks) ?? [];
      for (const what of ['socket SYN_SENT', 'no SYN segments', 'iptables'])
        expect.soft(checks.find((c) => c.name.includes(what))?.passed, `${name}: ${what}`).toBe(false);
    }
  });
});
