// The engine's end of one node's agent (images/node/tcplab-agent.c): one `docker exec --user tcplab
// tcplab-agent connect` per node and process, carrying frames (observe/wire.ts) both ways. Requests are
// answered in any order (a command that runs for seconds does not hold up a look) and matched by sequence
// number. Every reader (the walk, `lab check` from another terminal, `lab status`, `lab ui`, class grading)
// talks to the same agent, each through its own session.
//
// A session that breaks is opened again on the next request; an agent that does not answer at all is an
// AgentLost error, which callers turn into "can't tell" (never "met") or the end of the run.
import createDebug from 'debug';
import type { ExecSession, Runtime } from '../runtime/runtime.js';
import { InterruptedError, LabError } from '../errors.js';
import {
  AGENT_PROGRAM,
  AGENT_PROTOCOL,
  AGENT_USER,
  decodeAck,
  decodeHello,
  decodeLook,
  decodeRun,
  decodeSignal,
  helloFrame,
  lookFrame,
  runFrame,
  signalFrame,
  wakeFrame,
  writeFrame,
  type CommandStatus,
  type Hello,
  type Look,
  type LookRequest,
  type RunRequest,
} from '../observe/agent-protocol.js';
import { encodeFrame, FrameReader, KIND, type Frame } from '../observe/wire.js';
import { retryTransient } from './retry.js';

const log = createDebug('lab');
/** Every request to an agent, for developers (DEBUG=lab:agent): what ran where, when. */
const logAgent = createDebug('lab:agent');
/** Every look (DEBUG=lab:look): how often each reader asks, and for what. */
const logLook = createDebug('lab:look');
const OPEN_TIMEOUT_MS = 10_000;
/** Beyond its own wait, how long an answer may take (a loaded engine relays slowly). */
const ANSWER_SLACK_MS = 10_000;

/** The agent of a node cannot be reached: its container stopped or went, or the engine broke the session. */
export class AgentLost extends LabError {
  override name = 'AgentLost';
  constructor(
    readonly node: string,
    reason: string,
    /** No session could be opened at all (the engine refused or did not answer), as opposed to a session that
     *  broke while a request waited. */
    readonly opening = false,
  ) {
    super(`cannot reach the agent of ${node}: ${reason}`, undefined, 3);
  }
}

interface Pending {
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
}

interface AgentOptions {
  /** Called with every answer frame as it arrives, before it is decoded (scripts/capture-fixtures.mjs keeps
   *  them as test fixtures). */
  onAnswer?: (frame: Frame) => void;
  signal?: AbortSignal;
  openTimeoutMs?: number;
}

interface CallOptions {
  /** How long the answer may take, beyond any wait the request itself asks for. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export class AgentClient {
  private session: ExecSession | undefined;
  private opening: Promise<ExecSession> | undefined;
  private reader = new FrameReader();
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private stderr = '';
  hello: Hello | undefined;

  constructor(
    private readonly runtime: Runtime,
    /** The container's name. */
    readonly container: string,
    /** The node's name, for messages. */
    readonly node: string,
    private readonly opts: AgentOptions = {},
  ) {}

  /** Open the session now (it opens on first use otherwise). */
  async open(): Promise<void> {
    await this.ensure();
  }

  async look(req: LookRequest, opts: CallOptions = {}): Promise<Look> {
    logLook('%s: look%s%s', this.node, req.iptables ? ' +counters' : '', req.waitMs ? ` wait ${req.waitMs}` : '');
    const f = await this.call((seq) => lookFrame(seq, req), {
      ...opts,
      timeoutMs: (opts.timeoutMs ?? ANSWER_SLACK_MS) + (req.waitMs ?? 0),
    });
    return decodeLook(this.node as never, f, req.segmentsFrom);
  }

  /** A foreground command's status when it ends, or a background command's pid once started. */
  async run(req: RunRequest, opts: CallOptions = {}): Promise<{ pid?: number; status?: CommandStatus }> {
    logAgent('%s: run %s%s', this.node, req.argv.join(' '), req.background ? ' &' : '');
    const wait = req.background ? 0 : (req.timeoutMs ?? 10_000) + 2_000;
    return decodeRun(await this.call((seq) => runFrame(seq, req), { ...opts, timeoutMs: (opts.timeoutMs ?? ANSWER_SLACK_MS) + wait }));
  }

  async signal(name: string, signal: number, opts: CallOptions = {}): Promise<{ running: boolean }> {
    logAgent('%s: signal %d to %s', this.node, signal, name);
    return decodeSignal(await this.call((seq) => signalFrame(seq, name, signal), opts));
  }

  async write(name: string, data: string, close = false, opts: CallOptions = {}): Promise<void> {
    decodeAck(await this.call((seq) => writeFrame(seq, name, data, close), opts), close ? KIND.close : KIND.write);
  }

  /** Every waiting look of this session answers now. Nothing to do when no session is open. */
  async wake(opts: CallOptions = {}): Promise<void> {
    if (!this.session) return;
    decodeAck(await this.call((seq) => wakeFrame(seq), opts), KIND.wake);
  }

  close(): void {
    this.closed = true;
    this.drop(new AgentLost(this.node, 'closed'));
  }

  private async call(make: (seq: number) => Frame, opts: CallOptions): Promise<Frame> {
    const signal = opts.signal ?? this.opts.signal;
    if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
    const session = await this.ensure();
    const seq = (this.seq = (this.seq + 1) >>> 0 || 1);
    const frame = make(seq);
    return new Promise<Frame>((resolve, reject) => {
      const settled = new AbortController();
      const cleanup = () => {
        settled.abort();
        signal?.removeEventListener('abort', onAbort);
        this.pending.delete(seq);
      };
      const onAbort = () => {
        cleanup();
        reject(new InterruptedError(String(signal?.reason ?? 'SIGINT')));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const timeoutMs = opts.timeoutMs ?? ANSWER_SLACK_MS;
      // A real timer, not the lab's clock: it guards against an engine that never answers, and it keeps the
      // process alive while an answer is awaited (the session's socket does not).
      const timer = setTimeout(() => {
        if (settled.signal.aborted) return;
        cleanup();
        // A stuck session is no use to the next request either.
        this.drop(new AgentLost(this.node, `no answer within ${Math.round(timeoutMs / 1000)} s`));
        reject(new AgentLost(this.node, `no answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      settled.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
      this.pending.set(seq, {
        resolve: (f) => {
          cleanup();
          resolve(f);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      });
      session.write(encodeFrame(frame));
    });
  }

  private async ensure(): Promise<ExecSession> {
    if (this.closed) throw new AgentLost(this.node, 'closed');
    if (this.session) return this.session;
    this.opening ??= this.openSession().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async openSession(): Promise<ExecSession> {
    const timeoutMs = this.opts.openTimeoutMs ?? OPEN_TIMEOUT_MS;
    let s: ExecSession;
    try {
      // A dropped connection or a 5xx from the engine: opening is safe to repeat.
      s = await retryTransient(
        () => withTimeout(this.runtime.openExec(this.container, [AGENT_PROGRAM, 'connect'], { user: AGENT_USER }), timeoutMs),
        {
          ...(this.opts.signal ? { signal: this.opts.signal } : {}),
          onRetry: (e, n) => log('agent of %s: opening the session again (%d) after %s', this.node, n, e.message),
        },
      );
    } catch (e) {
      throw new AgentLost(this.node, (e as Error).message, true);
    }
    if (this.closed) {
      s.close();
      throw new AgentLost(this.node, 'closed');
    }
    this.reader = new FrameReader();
    this.stderr = '';
    s.onStdout((chunk) => this.onData(s, chunk));
    s.onStderr((chunk) => {
      if (this.stderr.length < 2000) this.stderr += chunk.toString('utf8');
    });
    s.onClose((err) => {
      if (this.session !== s) return;
      this.session = undefined;
      const why = this.stderr.replace(/^tcplab-agent: /, '').trim() || err?.message || 'the session ended';
      log('agent of %s: session closed (%s)', this.node, why);
      this.failAll(new AgentLost(this.node, why));
    });
    this.session = s;
    // The first exchange says which agent this is; an image from another tcplab would speak another protocol.
    const seq = (this.seq = (this.seq + 1) >>> 0 || 1);
    let timer: NodeJS.Timeout | undefined;
    const hello = await new Promise<Frame>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      s.write(encodeFrame(helloFrame(seq)));
      timer = setTimeout(() => {
        if (this.pending.delete(seq)) reject(new AgentLost(this.node, `no hello within ${timeoutMs / 1000} s`));
      }, timeoutMs);
    })
      .finally(() => clearTimeout(timer))
      .catch((e: unknown) => {
        this.drop(e as Error);
        throw e;
      });
    this.pending.delete(seq);
    this.hello = decodeHello(hello);
    if (this.hello.protocol !== AGENT_PROTOCOL) {
      const e = new AgentLost(
        this.node,
        `its agent speaks protocol ${this.hello.protocol}, this tcplab ${AGENT_PROTOCOL}: rebuild the image`,
      );
      this.drop(e);
      throw e;
    }
    return s;
  }

  private onData(s: ExecSession, chunk: Buffer): void {
    if (this.session !== s) return;
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (e) {
      // Bytes that are not frames: nothing after them can be trusted to start a frame. Every request waiting
      // on this session fails (its look says "can't tell"), and the next one opens a new session.
      log('agent of %s: %s', this.node, (e as Error).message);
      this.drop(new AgentLost(this.node, `its answer did not parse: ${(e as Error).message}`));
      return;
    }
    for (const f of frames) {
      this.opts.onAnswer?.(f);
      const p = this.pending.get(f.seq);
      if (p) p.resolve(f);
      else log('agent of %s: an answer to %d, which nobody waits for', this.node, f.seq);
    }
  }

  private failAll(e: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(e);
  }

  private drop(e: Error): void {
    const s = this.session;
    this.session = undefined;
    s?.close();
    this.failAll(e);
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // A session that turns up after all is closed at once.
          void p.then(
            (late) => (late as unknown as ExecSession | undefined)?.close?.(),
            () => {},
          );
          reject(new Error(`the engine did not start it within ${ms / 1000} s`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
