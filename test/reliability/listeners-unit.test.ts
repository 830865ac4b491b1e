// `lab grade --parallel N` runs every lab on the one AbortSignal of the run (Ctrl-C). Listeners that stay on it
// pile up with each instance, and past 10 Node prints a MaxListenersExceededWarning on the user's terminal.
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runLab } from '../../src/engine/run-lab.js';
import { parseLab } from '../../src/lab/load.js';
import { FakeClock, FakeRuntime } from './fake-runtime.js';

const lab = parseLab(`id: 902
slug: listener-probe
title: listener probe
summary: s
intro: i
steps:
  - id: one
    title: one
    explain: e
    run:
      - { on: server, run: [nc, -l, "5555"], name: srv, background: true }
    expect:
      - { on: server, absent: { local: "*:6000" }, within: 2s }
      - { on: client, absent: { local: "*:6000" }, within: 2s }
`);

let warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);
beforeEach(() => {
  warnings = [];
  process.on('warning', onWarning);
});
afterEach(() => {
  process.off('warning', onWarning);
});

/** Warnings are emitted on the next tick: let them arrive before looking. */
const drained = () => new Promise((r) => setImmediate(r));

describe('listeners on the run signal', () => {
  it('24 labs, 12 at a time, on one signal: every lab passes, no MaxListenersExceededWarning, no listener left', async () => {
    const run = new AbortController();
    let peak = 0;
    const rt = () => {
      const r = new FakeRuntime();
      // Count the run signal's listeners at every engine call, while the instances are alive.
      r.before = () => void (peak = Math.max(peak, getEventListeners(run.signal, 'abort').length));
      return r;
    };
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, k) =>
          runLab(rt(), lab, { image: 'x', instance: `cccc${round}${k.toString(16)}00`, clock: new FakeClock(), signal: run.signal }),
        ),
      );
      expect(results.map((r) => r.passed)).toEqual(Array(12).fill(true));
    }
    await drained();
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([]);
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(0);
    expect(peak).toBeLessThanOrEqual(1);
  });

  it('a kept lab (lab start --keep) leaves no listener on the run signal either', async () => {
    const run = new AbortController();
    for (let i = 0; i < 12; i++)
      await runLab(new FakeRuntime(), lab, {
        image: 'x',
        instance: `dddd00${i.toString(16)}0`,
        clock: new FakeClock(),
        signal: run.signal,
        keep: true,
      });
    await drained();
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(0);
  });
});
