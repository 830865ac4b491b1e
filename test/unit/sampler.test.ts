// The persistent observer's protocol against a scripted session: answers matched to requests by sequence
// number whatever the chunking, and a fallback (undefined) whenever the session cannot serve.
import { describe, expect, it } from 'vitest';
import { Sampler } from '../../src/engine/sampler.js';
import type { Clock } from '../../src/engine/clock.js';
import type { ExecSession, Runtime } from '../../src/runtime/runtime.js';

/** A clock that moves only when told: sleeps resolve when advance() passes their deadline, or on abort. */
class ManualClock implements Clock {
  t = 0;
  private sleepers: { at: number; wake: () => void }[] = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const s = {
        at: this.t + ms,
        wake: () => {
          this.sleepers = this.sleepers.filter((x) => x !== s);
          resolve();
        },
      };
      this.sleepers.push(s);
      signal?.addEventListener('abort', s.wake, { once: true });
    });
  }
  /** How long each pending sleep still has to go. */
  get waiting(): number[] {
    return this.sleepers.map((s) => s.at - this.t);
  }
  advance(ms: number): void {
    this.t += ms;
    for (const s of this.sleepers.filter((x) => x.at <= this.t)) s.wake();
  }
}

/** Let every pending promise callback run (the fake session answers on setImmediate). */
const settle = () => new Promise((r) => setImmediate(r));

/** Settle until cond holds; fails after 100 rounds (nothing here needs real time). */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await settle();
  expect(cond()).toBe(true);
}

type Behaviour = (line: string, send: (text: string) => void, end: () => void) => void;

function fakeRuntime(behaviour: Behaviour): { runtime: Runtime; opened: () => number; lines: string[] } {
  let opened = 0;
  const lines: string[] = [];
  const runtime = {
    async openExec(_container: string, argv: string[]): Promise<ExecSession> {
      expect(argv).toEqual(['tcplab-observe', '--serve']);
      opened++;
      let out: (chunk: string) => void = () => {};
      const closers: (() => void)[] = [];
      let closed = false;
      const end = () => {
        if (closed) return;
        closed = true;
        for (const c of closers) c();
      };
      return {
        write: (text) => {
          lines.push(text);
          setImmediate(() => behaviour(text.trimEnd(), (t) => !closed && out(t), end));
        },
        onStdout: (fn) => (out = fn),
        onClose: (fn) => closers.push(fn),
        close: end,
      };
    },
  } as unknown as Runtime;
  return { runtime, opened: () => opened, lines };
}

/** Answers like tcplab-observe --serve, one byte at a time to exercise reassembly. */
const serve: Behaviour = (line, send) => {
  const [seq, ...args] = line.split(' ');
  const text = `### ss\nLISTEN 0 1 0.0.0.0:${seq} 0.0.0.0:*\n${args.includes('--iptables') ? '### iptables\n*filter\n' : ''}### end ${seq} 0\n`;
  for (const ch of text) send(ch);
};

describe('Sampler', () => {
  it('matches each answer to its request, in order, across chunk boundaries', async () => {
    const f = fakeRuntime(serve);
    const s = new Sampler(f.runtime, 'c');
    const [a, b, c] = await Promise.all([
      s.sample([], { timeoutMs: 1000 }),
      s.sample(['--iptables'], { timeoutMs: 1000 }),
      s.sample(['--command', 'server'], { timeoutMs: 1000 }),
    ]);
    expect(a).toEqual({ text: '### ss\nLISTEN 0 1 0.0.0.0:1 0.0.0.0:*\n', exitCode: 0 });
    expect(b?.text).toContain('0.0.0.0:2');
    expect(b?.text).toContain('### iptables');
    expect(c?.text).toContain('0.0.0.0:3');
    expect(f.lines).toEqual(['1\n', '2 --iptables\n', '3 --command server\n']);
    expect(f.opened()).toBe(1);
  });

  it('passes on the exit code of ss', async () => {
    const f = fakeRuntime((line, send) => send(`### ss\n### end ${line.split(' ')[0]} 1\n`));
    expect(await new Sampler(f.runtime, 'c').sample([], { timeoutMs: 1000 })).toEqual({ text: '### ss\n', exitCode: 1 });
  });

  it('gives up a session that ends mid-answer (undefined: the caller execs once), and reopens next time', async () => {
    let n = 0;
    const f = fakeRuntime((line, send, end) => (n++ === 0 ? (send('### ss\n'), end()) : serve(line, send, end)));
    const s = new Sampler(f.runtime, 'c');
    expect(await s.sample([], { timeoutMs: 1000 })).toBeUndefined();
    expect((await s.sample([], { timeoutMs: 1000 }))?.exitCode).toBe(0);
    expect(f.opened()).toBe(2);
  });

  it('stops trying after repeated failures, and never tries without openExec', async () => {
    const f = fakeRuntime((_l, _s, end) => end());
    const s = new Sampler(f.runtime, 'c');
    for (let i = 0; i < 5; i++) expect(await s.sample([], { timeoutMs: 1000 })).toBeUndefined();
    expect(f.opened()).toBe(3);
    expect(await new Sampler({} as Runtime, 'c').sample([], { timeoutMs: 1000 })).toBeUndefined();
  });

  it('refuses arguments that are not plain words', async () => {
    const f = fakeRuntime(serve);
    await expect(new Sampler(f.runtime, 'c').sample(['--command', 'a b;rm'], { timeoutMs: 1000 })).rejects.toThrow(/bad observe argument/);
  });

  it('does nothing after close()', async () => {
    const f = fakeRuntime(serve);
    const s = new Sampler(f.runtime, 'c');
    s.close();
    expect(await s.sample([], { timeoutMs: 1000 })).toBeUndefined();
    expect(f.opened()).toBe(0);
  });
});

describe('Sampler, an engine that never starts the session', () => {
  it('gives up opening after the open timeout of its clock, not before, and closes a session that turns up late', async () => {
    const clock = new ManualClock();
    let late: ((s: ExecSession) => void) | undefined;
    const runtime = { openExec: () => new Promise<ExecSession>((r) => (late = r)) } as unknown as Runtime;
    const s = new Sampler(runtime, 'c', { clock, openTimeoutMs: 5000 });
    let result: unknown = 'pending';
    const done = s.sample([], { timeoutMs: 1000 }).then((r) => (result = r));
    await until(() => clock.waiting.includes(5000));
    clock.advance(4999);
    await settle();
    expect(result).toBe('pending');
    clock.advance(1);
    await done;
    expect(result).toBeUndefined();
    // The session the engine starts after all is closed, not leaked.
    let closed = false;
    late!({ write() {}, onStdout() {}, onClose() {}, close: () => (closed = true) });
    await until(() => closed);
  });

  it('close() while opening gives up at once, whatever the timeout', async () => {
    const clock = new ManualClock();
    const runtime = { openExec: () => new Promise(() => {}) } as unknown as Runtime;
    const s = new Sampler(runtime, 'c', { clock, openTimeoutMs: 60_000 });
    const opened = s.open();
    await until(() => clock.waiting.length === 1);
    s.close();
    expect(await opened).toBeUndefined();
    expect(clock.waiting).toEqual([]);
  });

  it('leaves no wait behind once the session is open (nothing holds the process)', async () => {
    const clock = new ManualClock();
    const f = fakeRuntime(serve);
    const s = new Sampler(f.runtime, 'c', { clock });
    expect((await s.sample([], { timeoutMs: 1000 }))?.exitCode).toBe(0);
    expect(clock.waiting).toEqual([]);
  });
});

describe('Sampler, answers on its clock and within a bound', () => {
  it('gives up a request whose answer does not come by the deadline of its clock, not before', async () => {
    const clock = new ManualClock();
    const f = fakeRuntime(() => {});
    const s = new Sampler(f.runtime, 'c', { clock });
    let result: unknown = 'pending';
    const done = s.sample([], { timeoutMs: 2000 }).then((r) => (result = r));
    await until(() => clock.waiting.includes(2000));
    clock.advance(1999);
    await settle();
    expect(result).toBe('pending');
    clock.advance(1);
    await done;
    expect(result).toBeUndefined();
  });

  it('an answer that never ends is given up at the bound instead of growing without end', async () => {
    let sent = 0;
    const f = fakeRuntime((_line, send) => {
      // 1000 chunks of 1 KiB and no end marker.
      for (let i = 0; i < 1000; i++, sent += 1024) send(`${'x'.repeat(1023)}\n`);
    });
    // A clock that never moves: the deadline cannot be what ends the request.
    const s = new Sampler(f.runtime, 'c', { maxAnswer: 64 * 1024, clock: new ManualClock() });
    expect(await s.sample([], { timeoutMs: 5000 })).toBeUndefined();
    expect(sent).toBe(1000 * 1024);
    // The session was dropped as broken: the next look opens a new one.
    expect(f.opened()).toBe(1);
    expect(await s.sample([], { timeoutMs: 5000 })).toBeUndefined();
    expect(f.opened()).toBe(2);
  });

  it('an answer just under the bound, in many chunks, is whole', async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `ESTAB 0 0 10.0.0.1:${i} 10.0.0.2:80`);
    const f = fakeRuntime((line, send) => {
      const seq = line.split(' ')[0];
      const text = `### ss\n${lines.join('\n')}\n### end ${seq} 0\n`;
      for (let at = 0; at < text.length; at += 997) send(text.slice(at, at + 997));
    });
    const r = await new Sampler(f.runtime, 'c', { maxAnswer: 128 * 1024 }).sample([], { timeoutMs: 5000 });
    expect(r?.text).toBe(`### ss\n${lines.join('\n')}\n`);
  });
});
