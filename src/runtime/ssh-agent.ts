// An http.Agent whose connections are `ssh ... docker system dial-stdio` processes: the way the docker CLI
// reaches an ssh:// engine. Going through the user's own ssh binary (not a JavaScript ssh client) means
// ~/.ssh/config, keys, ssh-agent, known_hosts, ProxyJump and ControlMaster all work as they do for `docker`.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Agent } from 'node:http';
import { Duplex } from 'node:stream';
import createDebug from 'debug';

const log = createDebug('lab:docker');

/** What an ssh process that ended before the engine answered said: explain() turns this into a clear error. */
export class SshError extends Error {
  override name = 'SshError';
  readonly code = 'ESSH';
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

/** The child's stdin and stdout as one socket-like stream, which node:http is content to speak HTTP over. */
class SshStdio extends Duplex {
  private stderr = '';
  private ended = false;

  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    super({ allowHalfOpen: true });
    child.stdout.on('data', (b: Buffer) => {
      if (!this.push(b)) child.stdout.pause();
    });
    // No push(null) at the end of stdout: ssh's exit status comes after, and a failed login must reach the
    // HTTP request as ssh's own words, not as a connection that merely hung up. 'close' decides.
    child.stderr.on('data', (b: Buffer) => {
      // Keep the tail: ssh's last lines say why it gave up.
      this.stderr = (this.stderr + b.toString('utf8')).slice(-2000);
    });
    child.on('error', (e: NodeJS.ErrnoException) =>
      this.destroy(e.code === 'ENOENT' ? new SshError('the ssh program was not found (ssh:// engines need an ssh client)', '') : e),
    );
    child.on('close', (code, signal) => {
      this.ended = true;
      if (code && code !== 0 && !this.destroyed) {
        const said = this.stderr.trim().split('\n').filter(Boolean).slice(-2).join('; ');
        this.destroy(new SshError(`ssh exited with ${code}${said ? `: ${said}` : ''}`, this.stderr));
      } else if (!this.destroyed) {
        log('ssh connection closed (%s)', signal ?? code);
        this.push(null);
      }
    });
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.ended) return cb();
    this.child.stdin.write(chunk, cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    // The HTTP side is done writing (an exec's stdin closed): ssh passes EOF on, dial-stdio half-closes.
    this.child.stdin.end(cb);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (!this.ended) this.child.kill('SIGTERM');
    cb(err);
  }

  // What node:http and its Agent call on a net.Socket.
  setKeepAlive(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setTimeout(ms: number, fn?: () => void): this {
    if (fn && ms > 0) setTimeout(fn, ms).unref();
    return this;
  }
  /** An idle or left-open connection must not keep the CLI alive (the Agent unrefs idle sockets). */
  unref(): this {
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as unknown as { unref?(): void }).unref?.();
    return this;
  }
  ref(): this {
    this.child.ref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as unknown as { ref?(): void }).ref?.();
    return this;
  }
}

/** An Agent that opens each connection by running `ssh <argv>`. keepAlive reuses an open ssh between calls,
 *  so a lab does not pay an ssh handshake for every API call. */
export function sshAgent(argv: string[], sshBinary = 'ssh'): Agent {
  const agent = new Agent({ keepAlive: true, maxFreeSockets: 4 });
  (agent as unknown as { createConnection: () => Duplex }).createConnection = () => {
    log('spawn %s %o', sshBinary, argv);
    const child = spawn(sshBinary, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    return new SshStdio(child);
  };
  return agent;
}
