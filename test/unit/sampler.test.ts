// The persistent observer's protocol against a scripted session: answers matched to requests by sequence
// number whatever the chunking, and a fallback (undefined) whenever the session cannot serve.
import { describe, expect, it } from 'vitest';
import { Sampler } from '../../src/engine/sampler.js';
import type { ExecSession, Runtime } from '../../src/runtime/runtime.js';

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

  it('gives up a session that does not answer in time', async () => {
    const f = fakeRuntime(() => {});
    const t0 = performance.now();
    expect(await new Sampler(f.runtime, 'c').sample([], { timeoutMs: 50 })).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(1000);
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
  it('gives up opening after a bound instead of hanging the lab', async () => {
    const runtime = { openExec: () => new Promise(() => {}) } as unknown as Runtime;
    const t0 = performance.now();
    expect(await new Sampler(runtime, 'c').sample([], { timeoutMs: 1000 })).toBeUndefined();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(4900);
  }, 15_000);
});
