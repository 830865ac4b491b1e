// One worker pool for everything tcplab runs several of at once (`lab grade`'s labs, a class's submissions):
// at most N at a time, started in order, and nothing new started once the run is interrupted or has failed.

/**
 * Run `work` on every item, at most `parallel` at a time, starting them in the items' order. Once `signal` is
 * aborted or a run has thrown, no further item starts. Rejects with the first error as soon as it happens (as
 * Promise.all does: runs already in flight are not waited for); the caller keeps its own results by index.
 */
export async function eachInPool<T>(
  items: readonly T[],
  parallel: number,
  work: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed && !signal?.aborted) {
      const i = next++;
      try {
        await work(items[i]!, i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, parallel), items.length) }, worker));
}
