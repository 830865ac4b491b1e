// How an answer's timeline is replayed (src/engine/answer.ts), against a fake host on a virtual clock (no Docker):
// every command as the student in a shell of its own, in the order the student did things, across machines;
// what was still running keeps running; what had ended is waited for; a Ctrl-C comes in its place, as the end of
// the command's input (tcplab-agent student --interrupt-on-eof), after the student's pause (capped); the task's
// time limit counts from the first command; and the older per-machine form replays as it always did.
import { describe, expect, it } from 'vitest';
import { GAP_CAP_MS, mustEndBefore, replayOrder, reportAnswer, startAnswer, type AnswerHost } from '../../src/engine/answer.js';
import type { LabEvent } from '../../src/engine/events.js';
import type { AnswerScript } from '../../src/lab/answer-script.js';
import type { NodeName } from '../../src/lab/schema.js';
import type { ExecSession } from '../../src/runtime/runtime.js';

/** How a fake command behaves: it exits on its own after `exitsAfter` ms (never, without), and SIGINT ends it
 *  with 130 unless it ignores it. */
interface Behaviour {
  exitsAfter?: number;
  exit?: number;
  ignoresSigint?: boolean;
}

interface Happened {
  t: number;
  what: 'start' | 'ctrl-c' | 'exit';
  node: NodeName;
  command: string;
  argv?: string[];
}

/**
 * A host on a virtual clock: sleep() and a command's own end are timers, and time moves to the earliest timer
 * only once everything else has run (every promise settled that could), as a real host's would while waiting.
 */
function fakeHost(behaviours: Record<string, Behaviour>) {
  let now = 1_000_000;
  const t0 = now;
  const log: Happened[] = [];
  const events: LabEvent[] = [];
  const timers: { at: number; fire: () => void }[] = [];
  const after = (ms: number, fire: () => void) => timers.push({ at: now + Math.max(0, ms), fire });
  const host: AnswerHost = {
    vars: { 'server.ip': '198.18.231.3', 'variant.port': '5637' },
    emit: (e) => events.push(e),
    now: () => now,
    sleep: (ms) => new Promise<void>((resolve) => after(ms, resolve)),
    busy: () => Promise.resolve(0),
    startStudent: (node, argv) => {
      const command = argv.at(-1)!;
      const b = behaviours[command] ?? {};
      let onClose: (() => void)[] = [];
      let code: number | undefined;
      let closed = false;
      const close = (c: number) => {
        if (closed) return;
        closed = true;
        code = c;
        log.push({ t: now, what: 'exit', node, command });
        for (const f of onClose) f();
        onClose = [];
      };
      if (b.exitsAfter !== undefined) after(b.exitsAfter, () => close(b.exit ?? 0));
      log.push({ t: now, what: 'start', node, command, argv });
      const session: ExecSession = {
        write: () => {},
        end: () => {
          log.push({ t: now, what: 'ctrl-c', node, command });
          if (!b.ignoresSigint) close(130);
        },
        onStdout: () => {},
        onStderr: () => {},
        onClose: (f) => (closed ? f() : onClose.push(f)),
        exitCode: () => Promise.resolve(code),
        started: () => Promise.resolve(),
        close: () => {},
      };
      return Promise.resolve(session);
    },
  };
  /** Run the replay to its end on the virtual clock. */
  async function drive<T>(p: Promise<T>): Promise<T> {
    let settled = false;
    void p.finally(() => (settled = true)).catch(() => {});
    for (let n = 0; n < 100_000; n++) {
      await new Promise((r) => setImmediate(r));
      if (settled) return p;
      timers.sort((a, b) => a.at - b.at);
      const next = timers.shift();
      if (!next) throw new Error('the replay waits for something that never comes');
      now = Math.max(now, next.at);
      next.fire();
    }
    throw new Error('the replay never ended');
  }
  return { host, log, events, t0, drive };
}

const RULE = 'iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP';
const FILLED_RULE = RULE.replace('{{server.ip}}', '198.18.231.3');

/** Lab 7's task as a student did it: the rule, the listener, the client, then Ctrl-C on the server. */
const LAB7: AnswerScript[] = [
  { node: 'firewall', script: RULE, shell: 'bash', at: 0, end: { by: 'exit', exit: 0 } },
  { node: 'server', script: 'nc -l 5556', shell: 'bash', at: 6200, end: { by: 'ctrl-c', at: 19_800 } },
  { node: 'client', script: 'nc {{server.ip}} 5556', shell: 'bash', at: 12_500 },
];

describe('replaying a timeline', () => {
  it("Lab 7: the listener keeps running while the client connects, then gets the student's Ctrl-C", async () => {
    const { host, log, events, t0, drive } = fakeHost({ [FILLED_RULE]: { exitsAfter: 15 } });
    const { running, failed } = await drive(startAnswer(host, LAB7, 30_000));
    expect(failed).toBeUndefined();
    expect(log.map((h) => `${h.what} ${h.node}`)).toEqual([
      'start firewall',
      'exit firewall',
      'start server',
      'start client',
      'ctrl-c server',
      'exit server',
    ]);
    const at = (what: string, node: string) => log.find((h) => h.what === what && h.node === node)!.t - t0;
    // The rule had ended before the student started the listener: it is waited for.
    expect(at('start', 'server')).toBeGreaterThanOrEqual(at('exit', 'firewall'));
    // The student's pauses (6.2 s, 6.3 s, 7.3 s) are kept up to the cap: never shorter, never much longer.
    expect(at('start', 'server')).toBeGreaterThanOrEqual(GAP_CAP_MS);
    expect(at('start', 'client') - at('start', 'server')).toBeGreaterThanOrEqual(GAP_CAP_MS);
    expect(at('ctrl-c', 'server') - at('start', 'client')).toBeGreaterThanOrEqual(GAP_CAP_MS);
    expect(at('ctrl-c', 'server')).toBeLessThan(3 * GAP_CAP_MS + 1000);
    // Each command as the student, in bash, its input a pipe whose end is a Ctrl-C; addresses filled in; the
    // time limit is what is left of the task's, counted from the first command.
    const argv = (node: string) => log.find((h) => h.what === 'start' && h.node === node)!.argv!;
    expect(argv('client')).toEqual([
      'tcplab-agent',
      'student',
      '--interrupt-on-eof',
      '--',
      'timeout',
      '-k',
      '2',
      expect.stringMatching(/^2\d\.\d{3}$/),
      'nice',
      '-n',
      '10',
      'bash',
      '-c',
      'nc 198.18.231.3 5556',
    ]);
    expect(argv('firewall')[7]).toBe('30.000');
    // The client is still running when the checks begin, as it was for the student.
    expect(running.map((r) => [r.node, r.done, r.interrupted ?? false])).toEqual([
      ['firewall', true, false],
      ['server', true, true],
      ['client', false, false],
    ]);
    reportAnswer(host, { id: 'your-turn' }, running);
    expect(events.filter((e) => e.type === 'answer')).toEqual([
      { type: 'answer', step: 'your-turn', node: 'firewall', command: RULE, running: false, exit: 0, output: '' },
      {
        type: 'answer',
        step: 'your-turn',
        node: 'server',
        command: 'nc -l 5556',
        running: false,
        exit: 130,
        interrupted: true,
        output: '',
      },
      { type: 'answer', step: 'your-turn', node: 'client', command: 'nc {{server.ip}} 5556', running: true, output: '' },
    ]);
  });

  it('a command that ended on its own after the next one started is not waited for; one that ended before is', async () => {
    const scripts: AnswerScript[] = [
      // The listener ends by itself when the client's one-shot connection closes: after the client started.
      { node: 'server', script: 'nc -l 5600', shell: 'bash', at: 0, end: { by: 'exit', exit: 0, at: 3100 } },
      { node: 'client', script: 'echo hi | nc -q0 {{server.ip}} 5600', shell: 'bash', at: 3000, end: { by: 'exit', exit: 0, at: 3100 } },
      // Three seconds of sleep the student waited out before typing the next line.
      { node: 'client', script: 'sleep 3', shell: 'bash', at: 5000, end: { by: 'exit', exit: 0, at: 8000 } },
      { node: 'server', script: 'echo done', shell: 'bash', at: 9000, end: { by: 'exit', exit: 0 } },
    ];
    const { host, log, drive } = fakeHost({
      'echo hi | nc -q0 198.18.231.3 5600': { exitsAfter: 10 },
      'sleep 3': { exitsAfter: 3000 },
      'echo done': { exitsAfter: 1 },
    });
    await drive(startAnswer(host, scripts, 30_000));
    const t = (what: string, command: string) => log.find((h) => h.what === what && h.command === command)?.t;
    expect(t('start', 'echo hi | nc -q0 198.18.231.3 5600')).toBeDefined();
    // The listener never ended in this replay (nothing connected to it here), and that did not hold the client up.
    expect(t('exit', 'nc -l 5600')).toBeUndefined();
    expect(t('start', 'echo done')!).toBeGreaterThanOrEqual(t('exit', 'sleep 3')!);
  });

  it('goes on when a command that had ended for the student does not end in the replay, a few seconds after its time', async () => {
    const scripts: AnswerScript[] = [
      { node: 'client', script: 'nc -w 1 {{server.ip}} 5555', shell: 'bash', at: 0, end: { by: 'exit', exit: 1, at: 1000 } },
      { node: 'client', script: 'echo next', shell: 'bash', at: 1500 },
    ];
    const { host, log, t0, drive } = fakeHost({});
    await drive(startAnswer(host, scripts, 30_000));
    const next = log.find((h) => h.command === 'echo next')!.t - t0;
    expect(next).toBeGreaterThanOrEqual(1000);
    expect(next).toBeLessThanOrEqual(1000 + 3000 + 100);
  });

  it("waits for a command whose end the file does not time (exit without ended) up to the next command's time and the slack", async () => {
    // `lab submit` writes no `ended` for a command that ended before the next started: it took at most the 5.5 s
    // until then, not nothing; the 4 s sleep must end before the next command (a `kill -9 -1`) starts.
    const scripts: AnswerScript[] = [
      { node: 'client', script: 'sleep 4', shell: 'bash', at: 500, end: { by: 'exit', exit: 0 } },
      { node: 'client', script: 'kill -9 -1', shell: 'bash', at: 6000 },
    ];
    const { host, log, drive } = fakeHost({ 'sleep 4': { exitsAfter: 4000 }, 'kill -9 -1': { exitsAfter: 1 } });
    await drive(startAnswer(host, scripts, 30_000));
    const t = (what: string, command: string) => log.find((h) => h.what === what && h.command === command)?.t;
    expect(t('start', 'kill -9 -1')!).toBeGreaterThanOrEqual(t('exit', 'sleep 4')!);
    // One that never ends is given up on: its 5.5 s and the slack after its start.
    const never = fakeHost({});
    await never.drive(startAnswer(never.host, scripts, 30_000));
    const next = never.log.find((h) => h.command === 'kill -9 -1')!.t - never.t0;
    expect(next).toBeGreaterThanOrEqual(5500);
    expect(next).toBeLessThanOrEqual(5500 + 3000 + 100);
  });

  it('a Ctrl-C to a command that ignores it waits a little, then the replay goes on', async () => {
    const { host, log, drive } = fakeHost({ 'nc -l 5556': { ignoresSigint: true } });
    await drive(startAnswer(host, LAB7, 30_000));
    expect(log.filter((h) => h.what === 'ctrl-c').map((h) => h.node)).toEqual(['server']);
    expect(log.some((h) => h.what === 'exit' && h.node === 'server')).toBe(false);
  });

  it('nothing starts once the time limit has run out, and what did not start is reported', async () => {
    const scripts: AnswerScript[] = [
      { node: 'client', script: 'sleep 9', shell: 'bash', at: 0, end: { by: 'exit', exit: 0, at: 9000 } },
      { node: 'client', script: 'echo late', shell: 'bash', at: 9500 },
    ];
    const { host, log, events, drive } = fakeHost({ 'sleep 9': { exitsAfter: 9000 } });
    const { running } = await drive(startAnswer(host, scripts, 5000));
    expect(log.filter((h) => h.what === 'start').map((h) => h.command)).toEqual(['sleep 9']);
    reportAnswer(host, { id: 't' }, running);
    expect(events.filter((e) => e.type === 'answer').at(-1)).toMatchObject({
      command: 'echo late',
      running: false,
      output: expect.stringMatching(/not started: the task's time limit of 5 s had run out/),
    });
  });

  it('the per-machine form: each machine with sh, in the order written, each once the one before has settled', async () => {
    const scripts: AnswerScript[] = [
      { node: 'server', script: 'nc -l 5637\n' },
      { node: 'client', script: 'echo hi | nc -q0 {{server.ip}} {{variant.port}}\n' },
    ];
    const { host, log, t0, drive } = fakeHost({});
    await drive(startAnswer(host, scripts, 30_000));
    const starts = log.filter((h) => h.what === 'start');
    expect(starts.map((h) => [h.node, h.argv!.at(-3), h.command])).toEqual([
      ['server', 'sh', 'nc -l 5637\n'],
      // Variants are never filled in: an answer is graded as written.
      ['client', 'sh', 'echo hi | nc -q0 198.18.231.3 {{variant.port}}\n'],
    ]);
    // No pauses of the student's to keep: only the settling (three idle looks).
    expect(starts[1]!.t - t0).toBeLessThan(500);
  });
});

describe('the order of a timeline', () => {
  it('by time, in the order written at the same time; an entry without a time right after the one above', () => {
    const scripts: AnswerScript[] = [
      { node: 'server', script: 'nc -l 5556', at: 1000, end: { by: 'ctrl-c', at: 5000 } },
      { node: 'client', script: 'nc x 5556' },
      { node: 'client', script: 'ss -tn', at: 5000 },
      { node: 'firewall', script: 'iptables -S', at: 7000, end: { by: 'exit', exit: 0 } },
      { node: 'firewall', script: 'iptables -Z', at: 8000 },
    ];
    const order = replayOrder(scripts);
    expect(order.map((s) => `${s.kind} ${s.i}`)).toEqual(['start 0', 'start 1', 'ctrl-c 0', 'start 2', 'start 3', 'start 4']);
    expect(order[1]).toMatchObject({ t: 1000, timed: false });
    // The rule listing had ended before the next command: it must have ended before that command starts.
    expect(mustEndBefore(scripts, order)).toEqual([undefined, undefined, undefined, 5, undefined]);
  });

  it('a Ctrl-C never comes before its command started, even when a hand-written entry has no time of its own', () => {
    const scripts: AnswerScript[] = [
      { node: 'server', script: 'sleep 1', at: 4000 },
      { node: 'server', script: 'nc -l 5556', end: { by: 'ctrl-c', at: 2000 } },
    ];
    expect(replayOrder(scripts).map((s) => `${s.kind} ${s.i} ${s.t}`)).toEqual(['start 0 4000', 'start 1 4000', 'ctrl-c 1 4000']);
  });
});
