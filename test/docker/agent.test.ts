// The agent of a real lab node (images/node/tcplab-agent.c), through the engine's client: its sockets agree
// with ss in every state, its commands report how they ended with bounded output, a waiting look answers on a
// change and not before, it reads counters when asked, a reader that sends garbage loses only its session, and a
// student's shell starts at its terminal's size.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import type { Instance } from '../../src/engine/instance.js';
import { createInstance } from '../../src/engine/provision.js';
import { AgentClient } from '../../src/engine/agent-client.js';
import { parseSs } from '../../src/observe/ss.js';
import { formatEndpoint, type Socket } from '../../src/observe/ss.js';
import { AGENT_USER, studentArgv, type Look } from '../../src/observe/agent-protocol.js';
import { realClock } from '../../src/engine/clock.js';
import { bareLab, until } from '../helpers/lab.js';

const dockerExec = promisify(execFile);

const lab = bareLab(993, 'agent-test');
const key = (s: Socket) => `${s.state} ${formatEndpoint(s.local)} ${formatEndpoint(s.peer)}`;

describeDocker('the agent of a lab node', (env) => {
  let inst: Instance;
  beforeAll(async () => {
    inst = await createInstance(env.runtime, lab, { image: env.image, instance: env.track(`agt${Date.now().toString(36).slice(-5)}`) });
  });
  afterAll(async () => {
    await inst?.down();
  });

  it('reads the same sockets as ss, in every state a loopback connection can show', async () => {
    const agent = inst.agent('server');
    const run = (argv: string[], name?: string) => inst.runAction({ on: 'server', run: argv, ...(name ? { name, background: true } : {}) });
    await run(['iptables', '-A', 'INPUT', '-i', 'lo', '-p', 'tcp', '--dport', '5557', '--tcp-flags', 'SYN', 'SYN', '-j', 'DROP']);
    await run(['nc', '-l', '127.0.0.1', '5555'], 'l1');
    await run(['nc', '127.0.0.1', '5555'], 'c1');
    await run(['nc', '127.0.0.1', '5557'], 'c2');
    await run(['nc', '-l', '127.0.0.1', '5556'], 'l2');
    await run(['nc', '127.0.0.1', '5556'], 'c3');
    const want = ['LISTEN', 'ESTABLISHED', 'SYN_SENT', 'TIME_WAIT', 'FIN_WAIT_2', 'CLOSE_WAIT'];
    const seen = new Set<string>();
    let stopped = false;
    let agreed = 0;
    const deadline = realClock.now() + 20_000;
    while (realClock.now() < deadline && !want.every((s) => seen.has(s))) {
      // ss between two looks: when the two looks agree, nothing changed meanwhile and ss must say the same.
      const a = (await agent.look({})).sockets.map(key).sort();
      const ss = parseSs((await inst.exec('server', ['ss', '-tanoH'])).stdout)
        .map(key)
        .sort();
      const b = (await agent.look({})).sockets.map(key).sort();
      if (JSON.stringify(a) === JSON.stringify(b)) {
        expect(ss).toEqual(a);
        agreed++;
      }
      for (const k of b) seen.add(k.split(' ')[0]!);
      if (!stopped && seen.has('ESTABLISHED')) {
        await inst.runAction({ on: 'server', stop: 'c1' }); // the client closes first: TIME_WAIT on its side
        await inst.runAction({ on: 'server', stop: 'l2' }); // the server closes first: FIN_WAIT_2 / CLOSE_WAIT
        stopped = true;
      }
    }
    expect([...seen].sort()).toEqual(expect.arrayContaining(want));
    // Once the states settle, every comparison in which nothing moved must agree.
    for (let i = 0; i < 20 && agreed < 3; i++) {
      const a = (await agent.look({})).sockets.map(key).sort();
      const ss = parseSs((await inst.exec('server', ['ss', '-tanoH'])).stdout)
        .map(key)
        .sort();
      const b = (await agent.look({})).sockets.map(key).sort();
      if (JSON.stringify(a) !== JSON.stringify(b)) continue;
      expect(ss).toEqual(a);
      agreed++;
    }
    expect(agreed).toBe(3);
    // The counters, when asked: the rule that dropped the SYNs to 5557.
    const look = await agent.look({ iptables: true });
    expect(look.counters!.find((r) => r.chain === 'INPUT' && r.spec.includes('--dport 5557'))!.packets).toBeGreaterThanOrEqual(1);
    // The SYN_SENT's timer, as ss -o shows it: a retransmission timer with its count.
    const synSent = look.sockets.find((s) => s.state === 'SYN_SENT')!;
    expect(synSent.timer?.name).toBe('on');
    expect(synSent.info?.retrans?.total).toBeGreaterThanOrEqual(0);
  });

  it('runs commands as its own user and says how each ended, with output bounded to its head and tail', async () => {
    const agent = inst.agent('client');
    const fg = (argv: string[], extra: { timeoutMs?: number; stdin?: string } = {}) => agent.run({ argv, ...extra }).then((r) => r.status!);
    expect(await fg(['sh', '-c', 'echo out; echo err >&2; id -u; exit 3'])).toMatchObject({
      running: false,
      exit: 3,
      output: 'out\nerr\n990\n',
    });
    expect(await fg(['no-such-program'])).toMatchObject({ exit: 127, startError: 'no-such-program: command not found' });
    expect(await fg(['sleep', '30'], { timeoutMs: 300 })).toMatchObject({ exit: 124, timedOut: true, signal: 15 });
    expect(await fg(['cat'], { stdin: 'typed\n' })).toMatchObject({ exit: 0, output: 'typed\n' });
    // 1 MB of output: the first and the last 32 KiB are kept, and what lies between is counted.
    const big = await fg(['sh', '-c', 'head -c 1000000 /dev/zero | tr "\\0" x; echo; echo the-end']);
    expect(big.cutBytes).toBe(1000009 - 65536);
    expect(big.output).toMatch(/^x{32768}\n\[\.\.\. 934473 bytes cut \.\.\.\]\nx+\nthe-end\n$/);
    // A background command: running, typed into, interrupted like Ctrl-C, its output kept.
    expect(
      (await agent.run({ name: 'bg', argv: ['sh', '-c', 'read line; echo got $line; sleep 60'], background: true })).pid,
    ).toBeGreaterThan(0);
    await agent.write('bg', 'hello\n');
    await until('the line to be read', async () =>
      (await agent.look({ commands: ['bg'] })).commands.bg?.output === 'got hello\n' ? true : undefined,
    );
    expect((await agent.look({ commands: ['bg'] })).commands.bg?.running).toBe(true);
    await agent.signal('bg', 2);
    const ended = await until('Ctrl-C to end it', async () => {
      const st = (await agent.look({ commands: ['bg'] })).commands.bg;
      return st && !st.running ? st : undefined;
    });
    expect(ended).toMatchObject({ exit: 130, signal: 2, output: 'got hello\n' });
    // A name nobody started is "not started", not an error of the look.
    expect((await agent.look({ commands: ['never'] })).commands.never).toBeUndefined();
    // Refusals are answers, not broken sessions.
    await expect(agent.signal('never', 2)).rejects.toThrow(/no command named never/);
  });

  it('a waiting look answers when something changes, and at its deadline when nothing does', async () => {
    // The client should be idle, but something real may still change in a window (a late segment, the end of an
    // earlier test's command): a look that answers early must then carry a new token. At least one window in
    // which nothing changed must last until its deadline, with the token it was given.
    const agent = inst.agent('client');
    const windows: { waited: number; changed: boolean }[] = [];
    for (let i = 0; i < 5 && !windows.some((w) => !w.changed); i++) {
      const first = await agent.look({});
      const t = realClock.now();
      const idle = await agent.look({ waitMs: 600, token: first.token });
      const w = { waited: realClock.now() - t, changed: idle.token !== first.token };
      windows.push(w);
      if (!w.changed) expect(w.waited).toBeGreaterThanOrEqual(550);
    }
    expect(windows.filter((w) => !w.changed).length, JSON.stringify(windows)).toBe(1);
    // A connection made while a look waits ends the wait long before its deadline.
    await inst.runAction({ on: 'client', run: ['nc', '-l', '5590'], name: 'wl', background: true });
    // The look to wait from is taken once the listener listens: its LISTEN is a change too.
    const before = await until('the listener on 5590', async () => {
      const l = await agent.look({});
      return l.sockets.some((s) => s.state === 'LISTEN' && s.local.port === 5590) ? l : undefined;
    });
    const t0 = realClock.now();
    const woke = agent.look({ waitMs: 10_000, token: before.token });
    // Another reader (as `lab check` in another terminal would be) connects from the server.
    const server = new AgentClient(env.runtime, inst.container('server'), 'server');
    await server.run({ name: 'wc', argv: ['nc', inst.vars['client.ip']!, '5590'], background: true });
    const answer = await woke;
    server.close();
    expect(realClock.now() - t0).toBeLessThan(5_000);
    expect(answer.token).not.toBe(before.token);
    expect(answer.sockets.some((s) => s.state === 'ESTABLISHED' && s.local.port === 5590)).toBe(true);
  });

  it('reads counters when a look is answered: one iptables-save while nothing changes, a new one when a packet counts', async () => {
    // The raw text of each look's counters: iptables-save stamps it with the second it ran ("# Generated by ...
    // on <time>"), so the same stamp seconds later is the kept text, and a new stamp is a new fork.
    const texts: string[] = [];
    const agent = new AgentClient(env.runtime, inst.container('client'), 'client', {
      onAnswer: (f) => {
        const i = f.fields.find((x) => x.tag === 'i'.charCodeAt(0));
        if (i) texts.push(i.value.toString('utf8'));
      },
    });
    const rule = (l: Awaited<ReturnType<AgentClient['look']>>) =>
      l.counters!.find((r) => r.chain === 'OUTPUT' && r.spec.includes('--dport 5599'));
    await inst.runAction({ on: 'client', run: ['iptables', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '5599', '-j', 'DROP'] });
    const first = await agent.look({ iptables: true });
    expect(rule(first)?.packets).toBe(0);
    // A look that waits out 1.2 s in which nothing changes, then counters again: the same text, stamp and all.
    const idle = await agent.look({ iptables: true, waitMs: 1200, token: first.token });
    expect(idle.token).toBe(first.token);
    expect(texts).toHaveLength(2);
    expect(texts[1]).toBe(texts[0]);
    // A SYN the rule drops: the very next look counts it (a waiting look reads its counters when it answers,
    // not when it was asked).
    const waiting = agent.look({ iptables: true, waitMs: 10_000, token: idle.token });
    await inst.runAction({ on: 'client', run: ['nc', '-w', '1', inst.vars['server.ip']!, '5599'], name: 'c5599', background: true });
    const seen = await until('the dropped SYN counted', async () => {
      const l = texts.length === 2 ? await waiting : await agent.look({ iptables: true });
      return (rule(l)?.packets ?? 0) >= 1 ? l : undefined;
    });
    expect(rule(seen)!.packets).toBeGreaterThanOrEqual(1);
    // A rule added or removed is a change too, with no packet at all.
    await inst.runAction({ on: 'client', run: ['iptables', '-I', 'INPUT', '-p', 'udp', '--dport', '9', '-j', 'DROP'] });
    const added = await agent.look({ iptables: true });
    expect(added.counters!.some((r) => r.chain === 'INPUT' && r.spec.includes('--dport 9'))).toBe(true);
    await inst.runAction({ on: 'client', run: ['iptables', '-D', 'INPUT', '-p', 'udp', '--dport', '9', '-j', 'DROP'] });
    expect((await agent.look({ iptables: true })).counters!.some((r) => r.spec.includes('--dport 9'))).toBe(false);
    // A packet that no TCP socket sent (UDP, dropped in OUTPUT before any interface could see it) moves a
    // counter too, and is read at once.
    await inst.runAction({ on: 'client', run: ['iptables', '-A', 'OUTPUT', '-p', 'udp', '--dport', '9', '-j', 'DROP'] });
    await inst.runAction({ on: 'client', run: ['sh', '-c', `echo x | nc -u -w 1 ${inst.vars['server.ip']!} 9; true`] });
    const udp = (await agent.look({ iptables: true })).counters!.find((r) => r.chain === 'OUTPUT' && r.spec.includes('-p udp'));
    expect(udp?.packets).toBeGreaterThanOrEqual(1);
    agent.close();
  });

  it('a look that waits and asks for counters answers when a rule is added, with no packet and no socket moving', async () => {
    const agent = new AgentClient(env.runtime, inst.container('server'), 'server');
    try {
      const first = await agent.look({ iptables: true });
      const t0 = realClock.now();
      const waiting = agent.look({ iptables: true, waitMs: 30_000, token: first.token });
      // The rule goes in as a student's shell would put it (docker exec, not a command of the agent's, whose end
      // would be a change of its own).
      await dockerExec('docker', ['exec', inst.container('server'), 'iptables', '-A', 'INPUT', '-p', 'udp', '--dport', '7', '-j', 'DROP']);
      // Something else may change first: a counter that moved (a chain's policy counts every packet the node
      // gets) or a socket of an earlier test's closing. A waiting look answers for any change, so the reader waits
      // again from the answer's token, as every reader does (CI once saw the first answer come 133 ms in,
      // without the rule). Each wait is 30 s long: an agent deaf to rules makes a wait without the rule last
      // 30 s, and the check of the time below fails.
      const hasRule = (l: Look): boolean => l.counters!.some((r) => r.chain === 'INPUT' && r.spec.includes('--dport 7'));
      let answer = await waiting;
      expect(answer.token).not.toBe(first.token);
      while (!hasRule(answer) && realClock.now() - t0 < 15_000) {
        answer = await agent.look({ iptables: true, waitMs: 30_000, token: answer.token });
      }
      // Answered for the rule (the agent looks at nf_tables' dump at most a second apart while it waits), not
      // at a 30 s deadline; the rule is in its counters.
      expect(realClock.now() - t0).toBeLessThan(15_000);
      expect(hasRule(answer)).toBe(true);
    } finally {
      await dockerExec('docker', ['exec', inst.container('server'), 'iptables', '-D', 'INPUT', '-p', 'udp', '--dport', '7', '-j', 'DROP']);
      agent.close();
    }
  });

  it('a reader that sends garbage loses its own session; the agent and every other reader go on', async () => {
    const other = new AgentClient(env.runtime, inst.container('server'), 'server');
    await other.open();
    const raw = await env.runtime.openExec(inst.container('server'), ['tcplab-agent', 'connect'], { user: AGENT_USER });
    const closed = new Promise<void>((r) => raw.onClose(() => r()));
    // A length far beyond what a request may be: the agent drops this reader.
    raw.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    await closed;
    expect((await other.look({})).sockets).toBeDefined();
    other.close();
  });

  it("a student's shell in a terminal starts at the terminal's size, when the size comes only after the start", async () => {
    // The engine makes the terminal with no size and sets the client's size after the process started; a shell
    // that read 0x0 took 80 columns and wrapped a long command line over its own prompt.
    const t = await env.runtime.openTerminal!(inst.container('client'), studentArgv(['stty', 'size']), { cols: 0, rows: 0 });
    let out = '';
    t.onData((b) => (out += b.toString()));
    const closed = new Promise<void>((r) => t.onClose(() => r()));
    // The client's size, late: as a slow client's resize would land.
    const late = setTimeout(() => void t.resize(123, 45), 300);
    await closed;
    clearTimeout(late);
    expect(out.trim()).toBe('45 123');
  });

  it("the relay runs only as the agent's user, and tells why when it cannot", async () => {
    const r = await inst.exec('server', ['tcplab-agent', 'connect']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/connect runs as uid 990/);
  });
});
