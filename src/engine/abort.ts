import createDebug from 'debug';
import { InterruptedError } from '../errors.js';

const log = createDebug('lab');

/** Stop here if the run was interrupted (Ctrl-C, SIGTERM, a closed terminal). */
export function throwIfAborted(signal: AbortSignal | undefined, where: string): void {
  if (signal?.aborted) {
    log('aborted during %s', where);
    throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
  }
}
