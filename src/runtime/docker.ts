// The Docker implementation of Runtime: the only module that imports dockerode.
// Every call is logged (DEBUG=lab:docker), and errors are rethrown with what we were doing and what to do.
import Docker from 'dockerode';
import createDebug from 'debug';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PassThrough } from 'node:stream';
import { EngineError, InterruptedError } from '../errors.js';
import { BoundedOutput } from './bounded-output.js';
import {
  markTransient,
  SubnetTakenError,
  type BuildOptions,
  type ContainerSpec,
  type EngineInfo,
  type ExecOptions,
  type ExecResult,
  type ExecSession,
  type NetworkSpec,
  type Resource,
  type Runtime,
} from './runtime.js';

const log = createDebug('lab:docker');
const logExec = createDebug('lab:exec');

interface DockerodeError extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string };
  reason?: string;
}

function engineAddress(): string {
  return process.env.DOCKER_HOST ?? '/var/run/docker.sock';
}

/** Turn a dockerode failure into an error that says what to do. */
export function explain(e: unknown, doing: string): Error {
  const err = e as DockerodeError;
  const message = err.json?.message ?? err.message ?? String(e);
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
    return new EngineError(
      `cannot reach the Docker engine at ${engineAddress()} (${err.code}) while trying to ${doing}`,
      'start Docker (Linux: `sudo systemctl start docker`; macOS/Windows: start Docker Desktop) or set DOCKER_HOST, then run `lab doctor`; `lab clean --stale` then removes what a lab left',
      3,
    );
  }
  if (err.code === 'EACCES' || err.code === 'EPERM') {
    return new EngineError(
      `permission denied on the Docker socket ${engineAddress()} while trying to ${doing}`,
      'add yourself to the docker group (`sudo usermod -aG docker $USER`, then log in again) or run with sudo',
      3,
    );
  }
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ETIMEDOUT') {
    return markTransient(
      new EngineError(
        `the Docker engine dropped the connection while trying to ${doing} (${err.code})`,
        'is the engine still running? `lab doctor` checks',
        3,
      ),
    );
  }
  const failed = new EngineError(`Docker could not ${doing}: ${message.trim()}`, undefined, 3);
  // A 5xx may be a passing hiccup of the engine; callers retry only calls that are safe to repeat.
  return (err.statusCode ?? 0) >= 500 ? markTransient(failed) : failed;
}

function isStatus(e: unknown, ...codes: number[]): boolean {
  return codes.includes((e as DockerodeError).statusCode ?? -1);
}

function labelFilter(labels: Record<string, string>): string {
  return JSON.stringify({ label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) });
}

export class DockerRuntime implements Runtime {
  readonly docker: Docker;

  constructor(docker?: Docker) {
    this.docker = docker ?? new Docker();
  }

  private async call<T>(doing: string, fn: () => Promise<T>, idempotent: number[] = []): Promise<T | undefined> {
    log('%s', doing);
    try {
      const r = await fn();
      log('%s: ok', doing);
      return r;
    } catch (e) {
      if (idempotent.length && isStatus(e, ...idempotent)) {
        log('%s: already done (%d)', doing, (e as DockerodeError).statusCode);
        return undefined;
      }
      log('%s: failed: %s', doing, (e as Error).message);
      if (e instanceof EngineError) throw e;
      throw explain(e, doing);
    }
  }

  async info(): Promise<EngineInfo> {
    const v = (await this.call('ask the engine for its version', () => this.docker.version()))!;
    const i = (await this.call('ask the engine for its info', () => this.docker.info())) as { CgroupVersion?: string };
    return {
      version: v.Version,
      apiVersion: v.ApiVersion,
      os: `${v.Os}/${v.Arch}`,
      kernel: v.KernelVersion,
      cgroupVersion: i.CgroupVersion,
    };
  }

  async imageExists(tag: string): Promise<boolean> {
    try {
      await this.docker.getImage(tag).inspect();
      return true;
    } catch (e) {
      if (isStatus(e, 404)) return false;
      throw explain(e, `look for image ${tag}`);
    }
  }

  async buildImage(opts: BuildOptions): Promise<void> {
    const files = listFiles(opts.contextDir);
    const stream = (await this.call(`build image ${opts.tag}`, () =>
      this.docker
        .buildImage(
          { context: opts.contextDir, src: files },
          { t: opts.tag, buildargs: opts.buildArgs, labels: opts.labels, rm: true, forcerm: true },
        )
        .catch((e: DockerodeError) => {
          // The engine answered, and refused the build (a Dockerfile it cannot parse): a build failure, exit 4.
          if (e.statusCode && e.statusCode < 500)
            throw new EngineError(
              `the image build failed: ${(e.json?.message ?? e.message).trim()}`,
              `check the Dockerfile in ${opts.contextDir}`,
              4,
            );
          throw e;
        }),
    ))!;
    const abort = () => (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    opts.signal?.addEventListener('abort', abort, { once: true });
    // Interrupted while the build request was on its way: stop reading (the engine then cancels the build).
    if (opts.signal?.aborted) abort();
    try {
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(
          stream,
          (err: Error | null, output: { error?: string; errorDetail?: { message?: string } }[]) => {
            if (err) return reject(explain(err, `build image ${opts.tag}`));
            const failed = output.find((o) => o.error || o.errorDetail);
            if (failed)
              return reject(
                new EngineError(
                  `the image build failed: ${(failed.error ?? failed.errorDetail?.message ?? '').trim()}`,
                  'see the build output above; `lab doctor` checks the engine',
                  4,
                ),
              );
            resolve();
          },
          (event: { stream?: string; status?: string; error?: string }) => {
            const text = event.stream ?? event.status ?? event.error;
            if (text) for (const line of text.split('\n')) if (line.trim()) opts.onLine?.(line.trimEnd());
          },
        );
      });
    } catch (e) {
      // Destroying the stream on Ctrl-C makes the engine cancel the build; report the interrupt, not that.
      if (!opts.signal?.aborted) throw e;
    } finally {
      opts.signal?.removeEventListener('abort', abort);
    }
    if (opts.signal?.aborted) throw new InterruptedError(String(opts.signal.reason ?? 'SIGINT'));
  }

  async removeImage(tag: string): Promise<void> {
    await this.call(`remove image ${tag}`, () => this.docker.getImage(tag).remove({ force: true }), [404, 409]);
  }

  async tagImage(source: string, target: string): Promise<void> {
    const i = target.lastIndexOf(':');
    await this.call(`tag image ${source} as ${target}`, () =>
      this.docker.getImage(source).tag({ repo: target.slice(0, i), tag: target.slice(i + 1) }),
    );
  }

  async listImages(labels: Record<string, string>): Promise<Resource[]> {
    const list = (await this.call('list images', () => this.docker.listImages({ filters: labelFilter(labels) } as object)))!;
    return list.map((i) => ({ id: i.Id, name: i.RepoTags?.[0] ?? i.Id, labels: i.Labels ?? {} }));
  }

  async usedSubnets(): Promise<string[]> {
    const nets = (await this.call('list networks', () => this.docker.listNetworks()))!;
    return nets.flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter((s): s is string => !!s));
  }

  async createNetwork(spec: NetworkSpec): Promise<void> {
    log('create network %s %s', spec.name, spec.subnet);
    try {
      await this.docker.createNetwork({
        Name: spec.name,
        Driver: 'bridge',
        Internal: spec.internal,
        CheckDuplicate: true,
        IPAM: { Driver: 'default', Config: [{ Subnet: spec.subnet, Gateway: spec.gateway }] },
        Labels: spec.labels,
        ...(spec.options ? { Options: spec.options } : {}),
      });
    } catch (e) {
      const msg = (e as DockerodeError).json?.message ?? (e as Error).message;
      if (/overlap/i.test(msg)) throw new SubnetTakenError(msg);
      throw explain(e, `create network ${spec.name} (${spec.subnet})`);
    }
  }

  async removeNetwork(name: string): Promise<void> {
    await this.call(`remove network ${name}`, () => this.docker.getNetwork(name).remove(), [404]);
  }

  async listNetworks(labels: Record<string, string>): Promise<Resource[]> {
    const nets = (await this.call('list networks', () => this.docker.listNetworks({ filters: labelFilter(labels) } as object)))!;
    return nets.map((n) => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} }));
  }

  async createContainer(spec: ContainerSpec): Promise<void> {
    await this.call(`create container ${spec.name}`, () =>
      this.docker.createContainer({
        name: spec.name,
        Hostname: spec.hostname,
        Image: spec.image,
        Cmd: spec.cmd,
        Labels: spec.labels,
        // The engine's own tiny init reaps the processes that labs start and stop.
        HostConfig: {
          Init: true,
          NetworkMode: spec.network.name,
          Sysctls: spec.sysctls,
          CapAdd: spec.capAdd,
          CapDrop: spec.capDrop,
          SecurityOpt: spec.securityOpt,
          ReadonlyRootfs: spec.readOnlyRootfs,
          Tmpfs: spec.tmpfs,
          Memory: spec.memoryBytes,
          MemorySwap: spec.memoryBytes,
          PidsLimit: spec.pidsLimit,
          Privileged: false,
          AutoRemove: false,
          RestartPolicy: { Name: 'no' },
        },
        NetworkingConfig: { EndpointsConfig: { [spec.network.name]: { IPAMConfig: { IPv4Address: spec.network.ip } } } },
      }),
    );
  }

  async connectNetwork(container: string, network: string, ip: string): Promise<void> {
    await this.call(`connect ${container} to ${network}`, () =>
      this.docker.getNetwork(network).connect({ Container: container, EndpointConfig: { IPAMConfig: { IPv4Address: ip } } }),
    );
  }

  async startContainer(name: string): Promise<void> {
    await this.call(`start container ${name}`, () => this.docker.getContainer(name).start(), [304]);
  }

  async removeContainer(name: string): Promise<void> {
    await this.call(`remove container ${name}`, () => this.docker.getContainer(name).remove({ force: true, v: true }), [404, 409]);
  }

  async listContainers(labels: Record<string, string>): Promise<Resource[]> {
    const list = (await this.call('list containers', () => this.docker.listContainers({ all: true, filters: labelFilter(labels) })))!;
    return list.map((c) => ({ id: c.Id, name: (c.Names[0] ?? c.Id).replace(/^\//, ''), labels: c.Labels ?? {}, state: c.State }));
  }

  async inspectContainer(name: string): Promise<unknown> {
    return this.call(`inspect container ${name}`, () => this.docker.getContainer(name).inspect());
  }

  async exec(container: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const started = performance.now();
    const doing = `run ${argv[0]} in ${container}`;
    logExec('%s: %o', container, argv);
    let stream: NodeJS.ReadWriteStream | undefined;
    try {
      const ex = await this.docker.getContainer(container).exec({
        Cmd: argv,
        Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
        AttachStdout: true,
        AttachStderr: true,
        AttachStdin: false,
      });
      stream = await ex.start({ hijack: true, stdin: false });
      // A head and a tail of each stream, never all of it: a command can print without end.
      const half = opts.maxOutputBytes === undefined ? undefined : Math.floor(opts.maxOutputBytes / 2);
      const out = half === undefined ? new BoundedOutput() : new BoundedOutput(half, half);
      const err = half === undefined ? new BoundedOutput() : new BoundedOutput(half, half);
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      stdout.on('data', (b: Buffer) => out.push(b));
      stderr.on('data', (b: Buffer) => err.push(b));
      this.docker.modem.demuxStream(stream, stdout, stderr);
      const s = stream;
      await new Promise<void>((resolve, reject) => {
        const limit =
          opts.timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                opts.signal?.removeEventListener('abort', onAbort);
                s.removeAllListeners('end');
                (s as unknown as { destroy(): void }).destroy();
                reject(new EngineError(`${argv.join(' ')} did not return within ${Math.round(opts.timeoutMs! / 1000)} s in ${container}`));
              }, opts.timeoutMs + 5000);
        const onAbort = () => {
          if (limit) clearTimeout(limit);
          (s as unknown as { destroy(): void }).destroy();
          reject(new EngineError('interrupted'));
        };
        // A Ctrl-C that came while the exec was being created fired no event for us: act on it now, or the call
        // would wait for a stream that a removed container may never close (until the timeout above).
        if (opts.signal?.aborted) return onAbort();
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        const done = (e?: Error) => {
          if (limit) clearTimeout(limit);
          opts.signal?.removeEventListener('abort', onAbort);
          if (e) reject(e);
          else resolve();
        };
        s.on('end', () => done());
        s.on('close', () => done());
        s.on('error', (e: Error) => done(e));
      });
      // The stream can end a moment before the engine records the exit code.
      let info = await ex.inspect().catch(async (e: unknown) => {
        // The exec is gone with its container: say that the container is gone, not that the exec is.
        await this.containerGone(container, doing);
        throw e;
      });
      for (let i = 0; info.Running && i < 50; i++) {
        await new Promise((r) => setTimeout(r, 10));
        info = await ex.inspect();
      }
      // Killed by a signal, or not started (126, 127): the command, or its whole container (removed or stopped by
      // hand)? The second is not the command's result, and callers must be able to tell. A container's end kills
      // its processes with SIGKILL (137), or fails an exec being started (126, "OCI runtime exec failed"), a
      // moment before the engine marks it stopped: after those, look again for up to a second.
      const code = info.ExitCode ?? -1;
      if (code === -1 || code === 126 || code === 127 || code >= 128)
        await this.containerGone(container, doing, code === 137 || code === 126 ? 1000 : 0);
      const kept = { stdout: out.read(), stderr: err.read() };
      const result: ExecResult = {
        argv,
        exitCode: info.ExitCode ?? -1,
        stdout: kept.stdout.text,
        stderr: kept.stderr.text,
        durationMs: performance.now() - started,
        cutBytes: { stdout: kept.stdout.cut, stderr: kept.stderr.cut },
      };
      logExec('%s: exit %d in %d ms', container, result.exitCode, Math.round(result.durationMs));
      if (kept.stdout.cut + kept.stderr.cut)
        logExec('%s: %d bytes of output, %d cut', container, out.total + err.total, kept.stdout.cut + kept.stderr.cut);
      return result;
    } catch (e) {
      if (e instanceof EngineError) throw e;
      throw explain(e, doing);
    }
  }

  /** Throws (as the engine says it: "No such container", "is not running") when the container has gone or
   *  goes within `settleMs`. */
  private async containerGone(container: string, doing: string, settleMs = 0): Promise<void> {
    const until = performance.now() + settleMs;
    for (;;) {
      let state: { Running?: boolean; Status?: string } | undefined;
      try {
        state = (await this.docker.getContainer(container).inspect()).State;
      } catch (e) {
        if (isStatus(e, 404)) throw explain(e, doing);
        return;
      }
      if (state && (!state.Running || state.Status === 'removing'))
        throw new EngineError(`Docker could not ${doing}: container ${container} is not running`, undefined, 3);
      if (performance.now() >= until) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async openExec(container: string, argv: string[]): Promise<ExecSession> {
    logExec('%s: open %o', container, argv);
    try {
      const ex = await this.docker
        .getContainer(container)
        .exec({ Cmd: argv, AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false });
      const stream = (await ex.start({ hijack: true, stdin: true })) as NodeJS.ReadWriteStream & {
        destroy(): void;
        unref?(): void;
        end(): void;
      };
      // A sampler left open (lab start --keep) must not keep the CLI from exiting.
      stream.unref?.();
      (stream as unknown as { socket?: { unref?(): void } }).socket?.unref?.();
      const stdout = new PassThrough();
      this.docker.modem.demuxStream(stream, stdout, new PassThrough().resume());
      let closed = false;
      const closers: ((err?: Error) => void)[] = [];
      const finish = (err?: Error) => {
        if (closed) return;
        closed = true;
        logExec('%s: session %s closed%s', container, argv[0], err ? `: ${err.message}` : '');
        for (const f of closers) f(err);
      };
      stream.on('end', () => finish());
      stream.on('close', () => finish());
      stream.on('error', (e: Error) => finish(e));
      return {
        write: (text) => {
          if (!closed) stream.write(text);
        },
        onStdout: (fn) => stdout.on('data', (b: Buffer) => fn(b.toString('utf8'))),
        onClose: (fn) => {
          if (closed) fn();
          else closers.push(fn);
        },
        close: () => {
          if (closed) return;
          try {
            stream.end();
          } finally {
            stream.destroy();
            finish();
          }
        },
      };
    } catch (e) {
      throw explain(e, `start ${argv[0]} in ${container}`);
    }
  }
}

function listFiles(dir: string, root = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? listFiles(full, root) : [relative(root, full)];
  });
}
