// A persistent observer in one container: a single long-running `tcplab-observe --serve` exec answers every
// poll over its stdin/stdout. A look then costs one `ss` inside the container (a few ms) instead of a new
// `docker exec` each time (60-80 ms: create, attach, start, inspect), which is what bounds how fast a state
// can be seen. Samples are taken only when the grader asks, so idle labs cost nothing.
// If the session cannot be opened or breaks, sample() returns undefined and the caller uses a one-shot exec.
import createDebug from 'debug';
import type { ExecSession, Runtime } from '../runtime/runtime.js';
import { EngineError, InterruptedError } from '../errors.js';
import { findAnswerEnd, OBSERVE_PROGRAM, serveRequest } from '../observe/observation.js';
import { realClock, type Clock } from './clock.js';

// In the engine's namespace (DEBUG=lab): a sampler giving up is how a dropped connection shows while observing.
const log = createDebug('lab');
/** After this many broken sessions in one container, stop trying and stay on one-shot execs. */
const MAX_FAILURES = 3;
const OPEN_TIMEOUT_MS = 5_000;
/** The most one answer may hold. Answers are ss lines, iptables counters and command output that tcplab-run
 *  already bounds: a longer one means something is wrong in the container, and waiting for its end marker
 *  would hold any amount of memory. The look then goes through a one-shot exec, whose output is bounded too. */
export const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

interface SamplerOptions {
  /** Deadlines are measured and waited on this clock (tests pass a manual one). */
  clock?: Clock;
  /** How long to wait for the engine to start the session. */
  openTimeoutMs?: number;
  /** The most one answer may hold, in UTF-16 units as received. */
  maxAnswer?: number;
}

interface SampleResult {
  /** The sections, as `tcplab-observe` prints them. */
  text: string;
  /** Exit code of ss. */
  exitCode: number;
}

export class Sampler {
  private session: ExecSession | undefined;
  private opening: Promise<ExecSession | undefined> | undefined;
  private failures = 0;
  private seq = 0;
  private buffer = '';
  /** Where the next search for the end marker starts: the text before it holds no complete line that matches. */
  private scanned = 0;
  private pending: { seq: number; resolve: (r: SampleResult) => void; reject: (e: Error) => void } | undefined;
  /** One request at a time per container: answers come back in order on one stream. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Aborted by close(): a session still being opened is given up at once. */
  private readonly closing = new AbortController();
  private readonly clock: Clock;
  private readonly openTimeoutMs: number;
  private readonly maxAnswer: number;

  constructor(
    private readonly runtime: Runtime,
    private readonly container: string,
    opts: SamplerOptions = {},
  ) {
    this.clock = opts.clock ?? realClock;
    this.openTimeoutMs = opts.openTimeoutMs ?? OPEN_TIMEOUT_MS;
    this.maxAnswer = opts.maxAnswer ?? MAX_ANSWER_BYTES;
  }

  /** Arguments as observeArgs() makes them (--iptables, --command NAME); undefined when no session is available. */
  sample(args: string[], opts: { timeoutMs: number; signal?: AbortSignal }): Promise<SampleResult | undefined> {
    const next = this.queue.then(() => this.request(args, opts));
    this.queue = next.catch(() => {});
    return next;
  }

  /** Open the session if it is not open yet; never throws. */
  async open(): Promise<ExecSession | undefined> {
    if (this.session) return this.session;
    // TCPLAB_SAMPLER=0: one exec per look, as before the persistent observer (a switch for diagnosis).
    if (this.closed || this.failures >= MAX_FAILURES || !this.runtime.openExec || process.env.TCPLAB_SAMPLER === '0') return undefined;
    this.opening ??= (async () => {
      try {
        // Never wait long for the engine to start the session (a container being removed can leave the call
        // hanging): give up after the open timeout (or at once on close()), and close the session if it turns up
        // later. The wait is cancelled as soon as the session opens, so it never holds the process.
        let timedOut = false;
        const settled = new AbortController();
        const until = AbortSignal.any([settled.signal, this.closing.signal]);
        const opening = this.runtime.openExec!(this.container, [OBSERVE_PROGRAM, '--serve']);
        const s = await Promise.race([
          opening,
          this.clock.sleep(this.openTimeoutMs, until).then(() => {
            if (settled.signal.aborted) return new Promise<never>(() => {});
            timedOut = true;
            throw new Error(this.closed ? 'closed while opening' : `no session within ${this.openTimeoutMs / 1000} s`);
          }),
        ])
          .catch((e: unknown) => {
            if (timedOut)
              void opening.then(
                (late) => late.close(),
                () => {},
              );
            throw e;
          })
          .finally(() => settled.abort());
        if (this.closed) {
          s.close();
          return undefined;
        }
        s.onStdout((chunk) => this.onData(chunk));
        s.onClose((err) => this.onClose(s, err));
        this.session = s;
        return s;
      } catch (e) {
        this.failures++;
        log('sampler in %s: cannot open (%s); looks go through one-shot execs until it opens', this.container, (e as Error).message);
        return undefined;
      } finally {
        this.opening = undefined;
      }
    })();
    return this.opening;
  }

  private async request(args: string[], opts: { timeoutMs: number; signal?: AbortSignal }): Promise<SampleResult | undefined> {
    const session = await this.open();
    if (!session) return undefined;
    const seq = ++this.seq;
    const line = serveRequest(seq, args);
    this.buffer = '';
    this.scanned = 0;
    try {
      return await new Promise<SampleResult>((resolve, reject) => {
        // The deadline keeps the process alive while an answer is awaited (the session's socket does not), and
        // like the abort listener it goes as soon as the request settles, whichever way.
        const answered = new AbortController();
        void this.clock.sleep(opts.timeoutMs, answered.signal).then(() => {
          if (!answered.signal.aborted)
            this.pending?.reject(new EngineError(`no answer from the sampler in ${this.container} within ${opts.timeoutMs / 1000} s`));
        });
        const onAbort = () => this.pending?.reject(new InterruptedError(String(opts.signal?.reason ?? 'SIGINT')));
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        const settle = () => {
          answered.abort();
          opts.signal?.removeEventListener('abort', onAbort);
        };
        this.pending = {
          seq,
          resolve: (r) => {
            settle();
            resolve(r);
          },
          reject: (e) => {
            settle();
            reject(e);
          },
        };
        session.write(line);
      });
    } catch (e) {
      this.pending = undefined;
      if (e instanceof InterruptedError) throw e;
      // A broken or stuck session: drop it; this look and later ones go through one-shot execs until reopened.
      log('sampler in %s: failed (%s); this look goes through a one-shot exec', this.container, (e as Error).message);
      this.failures++;
      this.drop();
      return undefined;
    }
  }

  private onData(chunk: string): void {
    const p = this.pending;
    // Nothing is asked: whatever comes is not an answer to keep (a request clears the buffer anyway).
    if (!p) return;
    this.buffer += chunk;
    // Search only from the start of the last line already searched (the text before it holds no end line): a
    // long answer is scanned once, not again at every chunk.
    const answer = findAnswerEnd(this.buffer.slice(this.scanned), p.seq);
    if (!answer) {
      if (this.buffer.length > this.maxAnswer) {
        this.buffer = '';
        this.scanned = 0;
        p.reject(new EngineError(`the sampler in ${this.container} sent more than ${this.maxAnswer} characters without ending its answer`));
        return;
      }
      this.scanned = Math.max(this.scanned, this.buffer.lastIndexOf('\n') + 1);
      return;
    }
    const text = this.buffer.slice(0, this.scanned) + answer.text;
    this.buffer = answer.rest;
    this.scanned = 0;
    this.pending = undefined;
    p.resolve({ text, exitCode: answer.exitCode });
  }

  private onClose(s: ExecSession, err?: Error): void {
    if (this.session !== s) return;
    this.session = undefined;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(new EngineError(`the sampler in ${this.container} ended${err ? `: ${err.message}` : ''}`));
  }

  private drop(): void {
    const s = this.session;
    this.session = undefined;
    s?.close();
  }

  close(): void {
    this.closed = true;
    this.closing.abort();
    this.drop();
  }
}
