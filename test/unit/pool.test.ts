// The worker pool `lab grade` and class grading share: a bound on how many run at once, every item once, in
// order of starting, and nothing new started after an interrupt or a failure.
import { describe, expect, it } from 'vitest';
import { eachInPool } from '../../src/pool.js';

const tick = (ms = 1) => new Promise((r) => setTimeout(r, ms));

describe('eachInPool', () => {
  it('runs every item once, never more than `parallel` at a time, starting them in order', async () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const started: number[] = [];
    let running = 0;
    let most = 0;
    await eachInPool(items, 3, async (item, i) => {
      expect(item).toBe(i);
      started.push(i);
      most = Math.max(most, ++running);
      await tick((i * 7) % 5);
      running--;
    });
    expect(started).toEqual(items);
    expect(most).toBe(3);
  });

  it('with more workers than items, or none asked for, still runs each item once', async () => {
    const seen: string[] = [];
    await eachInPool(['a', 'b'], 8, async (x) => void seen.push(x));
    await eachInPool(['c'], 0, async (x) => void seen.push(x));
    await eachInPool([], 4, async () => void seen.push('never'));
    expect(seen.sort()).toEqual(['a', 'b', 'c']);
  });

  it('starts nothing once the signal is aborted', async () => {
    const ac = new AbortController();
    const started: number[] = [];
    await eachInPool(
      [0, 1, 2, 3, 4, 5],
      2,
      async (i) => {
        started.push(i);
        if (i === 2) ac.abort();
        await tick();
      },
      ac.signal,
    );
    expect(started).toEqual([0, 1, 2]);
  });

  it('rejects with the first error and starts nothing after it', async () => {
    const started: number[] = [];
    const run = eachInPool([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      await tick();
      if (i === 1) throw new Error('boom');
    });
    await expect(run).rejects.toThrow('boom');
    await tick(20);
    expect(started).toEqual([0, 1, 2]);
  });
});
