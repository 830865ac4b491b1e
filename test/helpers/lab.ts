// What the Docker tests of the engine's parts share: a lab with one empty step (a direct client and server to
// run commands in), and a wait on a condition with a deadline (TCP and processes take their own time).
import type { Lab } from '../../src/lab/schema.js';
import { realClock } from '../../src/engine/clock.js';

/** A direct lab with one step and no checks, for tests that drive an instance themselves. */
export function bareLab(id: number, slug: string): Lab {
  return { id, slug, title: 't', summary: '', intro: '', topology: 'direct', steps: [{ id: 's', title: 's', explain: '' }] };
}

/** Poll until check() returns a value or the deadline passes. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000, every = 100): Promise<T> {
  const deadline = realClock.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (realClock.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await realClock.sleep(every);
  }
}
