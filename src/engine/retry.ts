// Retrying engine calls that failed for a passing reason (a dropped connection, a 5xx), only where the call is
// safe to repeat (observations read; they change nothing). Waits go through the injectable clock.
import { realClock, type Clock } from './clock.js';
import { isTransient } from '../runtime/runtime.js';

interface RetryOptions {
  /** Tries after the first one (default 2). */
  retries?: number;
  /** Wait before the first retry; doubles each time (default 100 ms). */
  backoffMs?: number;
  clock?: Clock;
  signal?: AbortSignal;
  onRetry?: (e: Error, attempt: number) => void;
}

export async function retryTransient<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const retries = opts.retries ?? 2;
  const clock = opts.clock ?? realClock;
  let wait = opts.backoffMs ?? 100;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= retries || !isTransient(e) || opts.signal?.aborted) throw e;
      opts.onRetry?.(e as Error, attempt + 1);
      await clock.sleep(wait, opts.signal);
      wait *= 2;
    }
  }
}
