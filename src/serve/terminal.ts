// A terminal in the browser that outlives its WebSocket (as Coder's reconnecting PTY does): one shell per
// student and machine, kept while the lab runs; a socket that drops, a tab closed and opened again, attach to
// the same shell and get its recent screen replayed from a ring buffer. The student's socket types and sets the
// size; the instructor's sockets only watch.
import createDebug from 'debug';
import { studentArgv } from '../observe/agent-protocol.js';
import type { Runtime, TerminalSession } from '../runtime/runtime.js';

const log = createDebug('lab:serve');

/** Bytes of a terminal's recent output kept for a page that attaches: a few screens of a busy shell. */
const RING_BYTES = 128 * 1024;

/**
 * What a student's terminal runs in their machine: the same as `lab shell` (src/cli/live.ts), a login bash as
 * the student (root with only the network's capabilities, out of the agent's reach: docs/agent.md), so the
 * machine's tcplab-bashrc records the commands of each task.
 */
function terminalArgv(): string[] {
  return studentArgv(['bash', '-l']);
}

/** The last `max` bytes written, and how many went before them. */
export class RingBuffer {
  private chunks: Uint8Array[] = [];
  private size = 0;
  dropped = 0;

  constructor(private readonly max = RING_BYTES) {}

  push(chunk: Uint8Array): void {
    if (chunk.length >= this.max) {
      this.dropped += this.size + chunk.length - this.max;
      this.chunks = [chunk.subarray(chunk.length - this.max)];
      this.size = this.max;
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.max) {
      const first = this.chunks[0]!;
      const over = this.size - this.max;
      if (first.length <= over) {
        this.chunks.shift();
        this.size -= first.length;
        this.dropped += first.length;
      } else {
        this.chunks[0] = first.subarray(over);
        this.size -= over;
        this.dropped += over;
      }
    }
  }

  contents(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

/** A page attached to a terminal. */
export interface TerminalPeer {
  readOnly: boolean;
  output(data: Uint8Array): void;
  /** A control message: the shell ended, the lab went away. */
  control(msg: { type: 'exit' | 'gone' | 'open' | 'reset'; message?: string }): void;
}

export class Terminal {
  private session: TerminalSession | undefined;
  private opening: Promise<TerminalSession> | undefined;
  private readonly ring = new RingBuffer();
  private readonly peers = new Set<TerminalPeer>();
  private cols = 100;
  private rows = 30;
  private ended = false;
  /** Bytes written in all (tests, the benchmark). */
  written = 0;

  constructor(
    private readonly runtime: Runtime,
    readonly container: string,
    readonly node: string,
    private readonly argv: string[] = terminalArgv(),
  ) {}

  get attached(): number {
    return this.peers.size;
  }

  /** A page attaches: it gets the screen so far, then everything new. A writer opens the shell if none runs. */
  async attach(peer: TerminalPeer, size?: { cols: number; rows: number }): Promise<void> {
    this.peers.add(peer);
    if (size && !peer.readOnly) this.setSize(size.cols, size.rows);
    peer.control({ type: 'reset' });
    const screen = this.ring.contents();
    if (screen.length) peer.output(screen);
    if (!peer.readOnly && !this.ended) await this.open().catch(() => undefined);
  }

  detach(peer: TerminalPeer): void {
    this.peers.delete(peer);
  }

  private open(): Promise<TerminalSession> {
    if (this.session) return Promise.resolve(this.session);
    if (!this.runtime.openTerminal) return Promise.reject(new Error('this engine has no terminals'));
    this.opening ??= this.runtime
      .openTerminal(this.container, this.argv, { cols: this.cols, rows: this.rows, env: { TERM: 'xterm-256color' } })
      .then((s) => {
        this.session = s;
        s.onData((chunk) => {
          this.written += chunk.length;
          this.ring.push(chunk);
          for (const p of this.peers) p.output(chunk);
        });
        s.onClose(() => {
          this.session = undefined;
          if (this.ended) return;
          const note = '\r\n[the shell ended: press Enter for a new one]\r\n';
          this.ring.push(Buffer.from(note));
          for (const p of this.peers) p.control({ type: 'exit', message: note });
        });
        for (const p of this.peers) p.control({ type: 'open' });
        return s;
      })
      .catch((e: unknown) => {
        log('terminal on %s: %s', this.container, (e as Error).message);
        for (const p of this.peers)
          p.control({ type: 'gone', message: `cannot open a shell on the ${this.node}: ${(e as Error).message}` });
        throw e;
      })
      .finally(() => {
        this.opening = undefined;
      });
    return this.opening;
  }

  /** Keys from the student's page; after the shell ended, the first key opens a new one. */
  input(peer: TerminalPeer, data: string | Uint8Array): void {
    if (peer.readOnly || this.ended) return;
    if (this.session) this.session.write(data);
    // Keys typed while the shell is being opened go to it once it is there; a key after the shell ended opens
    // a new one (and is not typed into it: it was meant for the old one).
    else if (this.opening) void this.opening.then((s) => s.write(data)).catch(() => undefined);
    else void this.open().catch(() => undefined);
  }

  resize(peer: TerminalPeer, cols: number, rows: number): void {
    if (peer.readOnly) return;
    this.setSize(cols, rows);
  }

  private setSize(cols: number, rows: number): void {
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 2 || rows < 2 || cols > 1000 || rows > 500) return;
    if (cols === this.cols && rows === this.rows) return;
    this.cols = cols;
    this.rows = rows;
    void this.session?.resize(cols, rows);
  }

  /** The lab is going: hang up, and tell every page why. */
  end(message: string): void {
    this.ended = true;
    this.session?.close();
    this.session = undefined;
    for (const p of this.peers) p.control({ type: 'gone', message });
    this.peers.clear();
  }
}
