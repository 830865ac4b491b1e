// The grader must never say yes wrongly (issue 9): each defect a review found is checked here through the CLI,
// where an instructor meets it (`lab grade FILE --json`, `lab validate FILE`), against real containers.
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { expectNoStack, LabRun, leftoversOf, tempDir, writeLab } from '../reliability/cli.js';

const dir = tempDir('grader');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface GradeJson {
  passed: boolean;
  labs: {
    passed: boolean;
    steps: { id: string; checks: { node: string; kind: string; passed: boolean; expected: string; seen: string[] }[] }[];
  }[];
}

const LAB = `id: 901
slug: grader-correctness
title: grader correctness
summary: each check below is met or not met for one reason
intro: probe
topology: direct
steps:
  - id: rules
    title: rules for 5555 and, with the server's address, 7000
    explain: x
    run:
      - { on: server, run: [iptables, -A, INPUT, -p, tcp, --dport, "5555", -j, DROP] }
      - { on: server, run: [iptables, -A, INPUT, -d, "{{server.ip}}", -p, tcp, --dport, "7000", -j, DROP] }
    expect:
      # a rule for 5555 is not a rule for 555: must NOT be met
      - { on: server, iptables: { chain: INPUT, rule: ["--dport 555", "-j DROP"], packets: 0 }, within: 1s }
      # nor for 55555
      - { on: server, iptables: { chain: INPUT, rule: ["--dport 55555"], packets: 0 }, within: 1s }
      # the same words, whole: met
      - { on: server, iptables: { chain: INPUT, rule: ["--dport 5555", "-j DROP"], packets: 0 }, within: 1s }
      # templates are filled in inside rule words, and a bare address means /32, as iptables prints it: met
      - { on: server, iptables: { chain: INPUT, rule: ["-d {{server.ip}}", "--dport 7000"], packets: 0 }, within: 1s }
      - { on: server, iptables: { chain: INPUT, rule: ["-d {{server.ip}}/32", "--dport 7000"], packets: 0 }, within: 1s }
      # the client's address is not the server's: must NOT be met
      - { on: server, iptables: { chain: INPUT, rule: ["-d {{client.ip}}", "--dport 7000"], packets: 0 }, within: 1s }
  # The listener first, in a step of its own: a check of the same step could look before nc has called listen(),
  # and "CLOSED within 1s" would be met, rightly, by that first look.
  - id: listen
    title: a listener on 5556
    explain: x
    run:
      - { on: server, run: [nc, -l, "5556"], name: listener, background: true }
    expect:
      - { on: server, socket: { state: LISTEN, local: "*:5556" } }
  - id: closed
    title: CLOSED is no socket
    explain: x
    expect:
      # nothing on 5557: CLOSED is met
      - { on: server, socket: { state: CLOSED, local: "*:5557" }, within: 1s }
      # 5556 listens: CLOSED must NOT be met
      - { on: server, socket: { state: CLOSED, local: "*:5556" }, within: 1s }
      # CLOSED or LISTEN: met by the listener
      - { on: server, socket: { state: [CLOSED, LISTEN], local: "*:5556" }, within: 1s }
  - id: failing-command
    title: a command that fails on the server
    explain: x
    run:
      - { on: server, run: [sh, -c, "echo no such thing >&2; exit 3"] }
    expect:
      - { on: client, absent: { peer: "*:5556" } }
`;

// Per check, in order: met or not.
const WANT: Record<string, boolean[]> = {
  rules: [false, false, true, true, true, false],
  listen: [true],
  closed: [true, false, true],
};

describeDocker('the grader never says yes wrongly', () => {
  it('lab grade FILE: whole words in rules, templates in rules, CLOSED as no socket, a failing command on its own node', async () => {
    const file = writeLab(dir, 'correctness.yaml', LAB);
    const run = new LabRun(['grade', file, '--json']);
    const r = await run.exited;
    expectNoStack(r.stderr);
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as GradeJson;
    const steps = doc.labs[0]!.steps;
    for (const [id, want] of Object.entries(WANT)) {
      const checks = steps.find((s) => s.id === id)!.checks;
      expect(
        checks.map((c) => c.passed),
        `${id}: ${JSON.stringify(
          checks.map((c) => [c.expected, c.seen]),
          null,
          1,
        )}`,
      ).toEqual(want);
    }
    // Templates shown filled in, so the person reading the report sees the address that was looked for.
    expect(steps[0]!.checks[3]!.expected).toMatch(/-d 198\.1[89]\.\d+\.3 --dport 7000/);
    // A failed rule check says what is in the chain instead.
    expect(steps[0]!.checks[0]!.seen.join('\n')).toMatch(/in filter\/INPUT: .*--dport 5555 -j DROP/);
    const failing = steps.find((s) => s.id === 'failing-command')!.checks;
    expect(failing).toHaveLength(1);
    expect(failing[0]).toMatchObject({ node: 'server', kind: 'command-failed', passed: false });
    expect(failing[0]!.seen.join('\n')).toMatch(/exit 3.*no such thing/s);
    expect(await leftoversOf(run.owner)).toEqual([]);
  });
});

describe('lab validate', () => {
  const validate = async (text: string, ...extra: string[]) => {
    const file = writeLab(dir, `v${Math.random().toString(36).slice(2)}.yaml`, text);
    const r = await new LabRun(['validate', file, ...extra]).exited;
    expectNoStack(r.stderr + r.stdout);
    return { ...r, file };
  };
  const base = (steps: string) => `id: 902\nslug: v\ntitle: v\nsummary: s\nintro: i\nsteps:\n${steps}`;

  it('a lab that checks nothing is refused (exit 2) with a reason; a step without expectations is a warning', async () => {
    const none = await validate(base('  - { id: one, title: One, explain: e, run: [{ on: server, run: ["true"] }] }\n'));
    expect(none.code).toBe(2);
    expect(none.stdout).toMatch(/:6:1: steps: this lab expects nothing in any step/);
    const some = await validate(
      base(
        '  - { id: one, title: One, explain: e, run: [{ on: server, run: ["true"] }] }\n' +
          '  - { id: two, title: Two, explain: e, expect: [{ on: server, absent: { local: "*:1" } }] }\n',
      ),
    );
    expect(some.code).toBe(0);
    expect(some.stdout).toMatch(/^ok /m);
    expect(some.stdout).toMatch(/warning: .*:7:5: steps\[0\]: step 'one' has no expectations/);
  });

  it('every problem of every kind in one run, exit 2 as for any bad lab file', async () => {
    const r = await validate(
      base(
        '  - id: one\n    title: One\n    explain: e\n    colour: blue\n' +
          '    run: [{ on: server, run: [nc, "{{host.ip}}", "1"] }]\n' +
          '    expect: [{ on: server, absent: { state: CLOSED } }]\n',
      ),
      '--json',
    );
    expect(r.code).toBe(2);
    const [report] = JSON.parse(r.stdout) as { ok: boolean; problems: { line: number; message: string }[] }[];
    expect(report!.ok).toBe(false);
    const messages = report!.problems.map((p) => `${p.line}: ${p.message}`);
    // The schema's problem (an unknown key) and the template problem, together.
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^10: unknown key 'colour'/),
        expect.stringMatching(/^11: unknown template \{\{host\.ip\}\}/),
      ]),
    );
  });

  it('CLOSED with absent, or with a count, is refused: it could never mean anything', async () => {
    const r = await validate(
      base(
        '  - id: one\n    title: One\n    explain: e\n' +
          '    expect:\n      - { on: server, absent: { state: CLOSED } }\n      - { on: server, socket: { state: CLOSED, count: 2 } }\n',
      ),
    );
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/:11:.*absent with CLOSED always holds/);
    expect(r.stdout).toMatch(/:12:.*a count cannot go with CLOSED/);
  });
});
