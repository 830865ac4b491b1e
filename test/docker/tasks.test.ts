// Tasks are graded on the effect the student was asked for, in real containers: a correct answer written in
// other words than the lab's solution passes, also after the student tested it (which changes counters); a
// wrong one fails, and says what was there instead. The check runs as `lab check` does (Instance.checkTask:
// probe, expectations, probe stopped) and leaves no trace of its own behind for the next check.
import { expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { until } from '../helpers/lab.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { createInstance, newInstanceId } from '../../src/engine/provision.js';
import type { Instance } from '../../src/engine/instance.js';
import type { Lab, NodeName } from '../../src/lab/schema.js';
import { studentArgv } from '../../src/observe/agent-protocol.js';

describeDocker('tasks graded on their effect', (env) => {
  /** An instance of a lab with the steps before its task done (headless, as lab grade runs them). */
  async function atTask(slug: string): Promise<{ instance: Instance; lab: Lab; task: number }> {
    const lab = resolveLab(slug).lab;
    const instance = await createInstance(env.runtime, lab, { image: env.image, instance: env.track(newInstanceId()) });
    const task = lab.steps.findIndex((s) => s.task);
    for (let i = 0; i < task; i++) {
      const r = await instance.runStep(lab.steps[i]!, i);
      expect(r.passed, `step ${lab.steps[i]!.id} before the task`).toBe(true);
    }
    const step = lab.steps[task]!;
    expect(await instance.runActions(step.id, step.run ?? [])).toBeUndefined();
    return { instance, lab, task };
  }

  async function sh(instance: Instance, node: NodeName, script: string): Promise<string> {
    const r = await instance.exec(node, ['sh', '-c', script], { timeoutMs: 20_000 });
    expect(r.exitCode, `${node}$ ${script}: ${r.stderr}`).toBe(0);
    return r.stdout;
  }

  async function check(instance: Instance, lab: Lab, task: number) {
    const step = lab.steps[task]!;
    const checks = await instance.checkTask(step.id, step.task!);
    return { passed: checks.every((c) => c.passed), seen: checks.flatMap((c) => c.seen).join('\n'), checks };
  }

  it("Lab 2: a REJECT fails and says nc was refused; the article's rule passes after the student's own nc test", async () => {
    const { instance, lab, task } = await atTask('incomplete-handshake');
    const server = instance.vars['server.ip']!;
    await sh(instance, 'client', 'iptables -I OUTPUT -p tcp --dport 5555 -j REJECT');
    let r = await check(instance, lab, task);
    expect(r.passed).toBe(false);
    expect(r.seen).toMatch(/Connection refused/);
    // The check's own listener and client are gone again: nothing of it is left to the student or the next step.
    expect(await sh(instance, 'server', 'ss -tanH')).not.toMatch(/:5555/);
    // Nor a legacy iptables table, made by reading it: every iptables the student typed then warned
    // "iptables-legacy tables present", as if their rule had gone there.
    expect(await sh(instance, 'client', 'cat /proc/net/ip_tables_names; iptables -S 2>&1')).not.toMatch(/^nat$|legacy/m);
    await sh(instance, 'client', 'iptables -D OUTPUT -p tcp --dport 5555 -j REJECT');
    await sh(instance, 'client', 'iptables -I OUTPUT -p tcp --dport 5555 --tcp-flags SYN SYN -j DROP');
    // The student tries it: nc times out, and the rule's counter is no longer 0 (which the old task required).
    await instance.exec('client', ['nc', '-v', '-w', '2', server, '5555'], { timeoutMs: 10_000 });
    expect(await sh(instance, 'client', 'iptables -L OUTPUT -vn -x')).toMatch(/^\s+[1-9]\d*\s+\d+\s+DROP/m);
    r = await check(instance, lab, task);
    expect(r.passed, r.seen).toBe(true);
    // The check reads the legacy nat table only once it exists: a student (root, reading our source) who sends
    // the SYNs to nobody with a rewrite there makes it exist, and the check still finds the rewrite.
    const dnat = `iptables-legacy -t nat -A OUTPUT -p tcp --dport 5555 -j DNAT --to-destination ${server.replace(/\.\d+$/, '.250')}`;
    expect((await instance.exec('client', studentArgv(['sh', '-c', dnat]))).exitCode).toBe(0);
    r = await check(instance, lab, task);
    expect(r.passed).toBe(false);
    expect(r.seen).toMatch(/an address rewrite \(-A OUTPUT .*-j DNAT/);
    await instance.down();
  });

  it('Lab 2: a student who tried nc before writing the rule (its SYN reached the server) passes once the rule is in', async () => {
    // The task's segments check ("no SYN reached the server") looks at the check's own window, from its probe
    // on: what the student sent while finding out counts neither for nor against them.
    const { instance, lab, task } = await atTask('incomplete-handshake');
    const server = instance.vars['server.ip']!;
    await instance.exec('client', ['nc', '-v', '-w', '2', server, '5555'], { timeoutMs: 10_000 });
    let r = await check(instance, lab, task);
    expect(r.passed).toBe(false);
    await sh(instance, 'client', 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP');
    r = await check(instance, lab, task);
    expect(r.passed, r.seen).toBe(true);
    await instance.down();
  });

  it('Lab 2: a rule in other words (every segment to the server dropped) has the same effect, and passes', async () => {
    const { instance, lab, task } = await atTask('incomplete-handshake');
    await sh(instance, 'client', `iptables -A OUTPUT -d ${instance.vars['server.ip']} -j DROP`);
    const r = await check(instance, lab, task);
    expect(r.passed, r.seen).toBe(true);
    await instance.down();
  });

  it("Lab 2: a client with no route to the server fails lab check's own command, which says why", async () => {
    const { instance, lab, task } = await atTask('incomplete-handshake');
    await sh(instance, 'client', 'ip route flush table main');
    const r = await check(instance, lab, task);
    expect(r.passed).toBe(false);
    expect(r.checks).toHaveLength(1);
    expect(r.checks[0]!.expected).toBe("lab check's own commands (the task's probe) succeed");
    expect(r.seen).toMatch(/no direct way to [0-9.]+: the task is a firewall rule, not a broken network/);
    await instance.down();
  });

  // Lab 6's task looks at the last 3 seconds of the wire (segments: last), where the client in TIME_WAIT answers
  // each FIN the server retransmits: a student who checks long after closing must still pass, and one whose
  // rule is on the server must still fail.
  it("Lab 6: checked long after the close, the firewall's drop still passes; the server's own drop does not", async () => {
    const { instance, lab, task } = await atTask('half-close-last-ack');
    const step = lab.steps[task]!;
    const retransmitted = (n: number) =>
      until(`the server's FIN retransmitted ${n} times`, async () => {
        const m = /LAST-ACK.*timer:\(on,[^,]+,(\d+)\)/.exec(await sh(instance, 'server', 'ss -tanoH "( sport = :5556 )"'));
        return m && Number(m[1]) >= n ? true : undefined;
      });
    expect(await instance.runActions(step.id, step.task!.solution!)).toBeUndefined();
    await retransmitted(8);
    let r = await check(instance, lab, task);
    expect(r.passed, r.seen).toBe(true);
    // The same states with the rule on the server: the client's ACKs reach the server's wire.
    await sh(instance, 'firewall', 'iptables -F FORWARD');
    await until('the LAST_ACK gone', async () =>
      (await sh(instance, 'server', 'ss -tanH "( sport = :5556 )"')).trim() ? undefined : true,
    );
    await sh(
      instance,
      'server',
      `iptables -A INPUT -s ${instance.vars['client.ip']} -p tcp --dport 5556 --tcp-flags SYN,ACK,FIN,RST,PSH ACK -j DROP`,
    );
    expect(
      await instance.runActions(
        step.id,
        step.task!.solution!.filter((a) => a.on !== 'firewall'),
      ),
    ).toBeUndefined();
    await retransmitted(3);
    r = await check(instance, lab, task);
    expect(r.passed).toBe(false);
    expect(r.checks.find((c) => !c.passed)?.expected).toMatch(/^server: no ACK segments .* in the last 3s/);
    await instance.down();
  });

  it('Lab 4: the default REJECT passes (nc is refused), a DROP left in front of it fails', async () => {
    const { instance, lab, task } = await atTask('reject-vs-drop');
    // Appended after the DROP, the REJECT never sees a SYN: still a hang.
    await sh(instance, 'firewall', 'iptables -A FORWARD -p tcp --dport 5555 -j REJECT');
    let r = await check(instance, lab, task);
    expect(r.passed).toBe(false);
    expect(r.seen).toMatch(/check-refused: exited 124/);
    await sh(instance, 'firewall', 'iptables -D FORWARD 1');
    r = await check(instance, lab, task);
    expect(r.passed, r.seen).toBe(true);
    await instance.down();
  });

  it('Lab 11: the backlog decides, 4 gives 5 half-open connections (not met, and shown), 8 gives 9', async () => {
    const { instance, lab, task } = await atTask('syn-backlog');
    const server = instance.vars['server.ip']!;
    await sh(instance, 'firewall', `iptables -A FORWARD -s ${server} -p tcp --sport 5556 --tcp-flags SYN,ACK SYN,ACK -j DROP`);
    await instance.runActions('probe', [
      { on: 'server', run: ['tcplab-sock', 'listen', '5556', '--backlog', '4'], name: 'mine', background: true },
    ]);
    await sh(instance, 'server', 'for i in $(seq 100); do ss -tlnH "( sport = :5556 )" | grep -q . && exit 0; sleep 0.05; done; exit 1');
    await instance.runActions('flood', [
      { on: 'client', run: ['tcplab-sock', 'flood', server, '5556', '--count', '20'], name: 'f1', background: true },
    ]);
    let r = await check(instance, lab, task);
    expect(r.passed).toBe(false);
    expect(r.seen.split('\n').filter((l) => /^SYN-RECV .*:5556/.test(l))).toHaveLength(5);
    await instance.runActions('again', [
      { on: 'server', stop: 'mine', signal: 'KILL' },
      { on: 'client', stop: 'f1', signal: 'KILL' },
    ]);
    await sh(instance, 'server', 'for i in $(seq 100); do ss -tanH "( sport = :5556 )" | grep -q . || exit 0; sleep 0.05; done; exit 1');
    await instance.runActions('again', [
      { on: 'server', run: ['tcplab-sock', 'listen', '5556', '--backlog', '8'], name: 'mine2', background: true },
    ]);
    await sh(instance, 'server', 'for i in $(seq 100); do ss -tlnH "( sport = :5556 )" | grep -q . && exit 0; sleep 0.05; done; exit 1');
    await instance.runActions('flood', [
      { on: 'client', run: ['tcplab-sock', 'flood', server, '5556', '--count', '20'], name: 'f2', background: true },
    ]);
    r = await check(instance, lab, task);
    expect(r.passed, r.seen).toBe(true);
    await instance.down();
  });
});
