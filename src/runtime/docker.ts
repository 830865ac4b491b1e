// The Docker implementation of Runtime: the only module that uses dockerode (loaded by ./dockerode.ts).
// Every call is logged (DEBUG=lab:docker), and errors are rethrown with what we were doing and what to do.
import type { DockerOptions } from 'dockerode';
import { Docker } from './dockerode.js';
import createDebug from 'debug';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EngineError, InterruptedError, LabError } from '../errors.js';
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
  type ImageInfo,
  type NetworkSpec,
  type OpenExecOptions,
  type Resource,
  type Runtime,
  type TerminalOptions,
  type TerminalSession,
} from './runtime.js';
import { NODE_SECURITY } from '../plan/plan.js';
import { describeEndpoint, resolveEndpoint, sshArgv, type Endpoint } from './endpoint.js';
import { SshError, sshAgent } from './ssh-agent.js';

const log = createDebug('lab:docker');
const logExec = createDebug('lab:exec');

interface DockerodeError extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string };
  reason?: string;
}

/** The endpoint the environment names, for messages when no runtime says which it used. */
function engineAddress(): string {
  try {
    return describeEndpoint(resolveEndpoint());
  } catch {
    return process.env.DOCKER_HOST ?? '/var/run/docker.sock';
  }
}

/** Turn a dockerode failure into an error that says what to do. where: the endpoint used, for the message. */
export function explain(e: unknown, doing: string, where = engineAddress()): Error {
  // Already explained (a bad DOCKER_HOST or context found when the client was made).
  if (e instanceof LabError) return e;
  const err = e as DockerodeError;
  const message = err.json?.message ?? err.message ?? String(e);
  if (err instanceof SshError) {
    return new EngineError(
      `cannot reach the Docker engine at ${where} while trying to ${doing}: ${err.message}`,
      /not found/.test(err.message) && !err.stderr
        ? 'install an ssh client (Debian/Ubuntu: `apt-get install openssh-client`)'
        : '`ssh <user@host> docker version` must work without a prompt: a key in ssh-agent or ~/.ssh (ssh-copy-id), the host in known_hosts (ssh to it once), and docker installed there',
      3,
    );
  }
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ENOTFOUND') {
    return new EngineError(
      `cannot reach the Docker engine at ${where} (${err.code}) while trying to ${doing}`,
      'start Docker (Linux: `sudo systemctl start docker`; macOS/Windows: start Docker Desktop) or set DOCKER_HOST (or `docker context use`), then run `lab doctor`; `lab clean --stale` then removes what a lab left',
      3,
    );
  }
  if (/certificate|self[- ]signed|SSL|TLS|EPROTO/i.test(`${err.code ?? ''} ${message}`) && !err.statusCode) {
    return new EngineError(
      `TLS with the Docker engine at ${where} failed while trying to ${doing}: ${message}`,
      "DOCKER_CERT_PATH (or the context's TLS files) must hold ca.pem, cert.pem and key.pem for this engine; DOCKER_TLS_VERIFY checks the engine against ca.pem",
      3,
    );
  }
  if (err.code === 'EACCES' || err.code === 'EPERM') {
    return new EngineError(
      `permission denied on the Docker socket ${where} while trying to ${doing}`,
      'add yourself to the docker group (`sudo usermod -aG docker $USER`, then log in again) or run with sudo',
      3,
    );
  }
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ETIMEDOUT') {
    return markTransient(
      new EngineError(
        `the Docker engine at ${where} dropped the connection while trying to ${doing} (${err.code})`,
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

/** dockerode options for an endpoint: sockets and tcp as they are; ssh through the user's ssh binary. */
function dockerOptions(e: Endpoint): DockerOptions & { agent?: Agent } {
  switch (e.kind) {
    case 'unix':
    case 'npipe':
      return { socketPath: e.socketPath };
    case 'tcp':
      if (!e.tls) return { host: e.host, port: e.port, protocol: 'http' };
      // The TLS settings travel in an https Agent: dockerode passes ca/cert/key on but has no "do not verify"
      // (DOCKER_TLS without DOCKER_TLS_VERIFY: encrypted, the engine's certificate unchecked, as `docker --tls`).
      return {
        host: e.host,
        port: e.port,
        protocol: 'https',
        agent: new HttpsAgent({
          keepAlive: true,
          rejectUnauthorized: e.tls.verify,
          ...(e.tls.ca ? { ca: e.tls.ca } : {}),
          ...(e.tls.cert ? { cert: e.tls.cert } : {}),
          ...(e.tls.key ? { key: e.tls.key } : {}),
        }),
      };
    case 'ssh':
      // The host and port here are never dialled: the agent's connections are ssh processes.
      return { host: 'docker', port: 80, protocol: 'http', agent: sshAgent(sshArgv(e)) };
  }
}

export class DockerRuntime implements Runtime {
  private client?: Docker;
  private resolved?: Endpoint;

  /** docker: a client to use as it is (tests); otherwise the endpoint is resolved on first use, as the docker
   *  CLI would, so commands that never touch the engine (list, plan) do not fail on a bad DOCKER_HOST. */
  constructor(docker?: Docker) {
    this.client = docker;
  }

  get endpoint(): Endpoint {
    this.resolved ??= resolveEndpoint();
    return this.resolved;
  }

  /** Where this runtime talks to, for messages. */
  get where(): string {
    return this.client && !this.resolved ? engineAddress() : describeEndpoint(this.endpoint);
  }

  get docker(): Docker {
    this.client ??= new Docker(dockerOptions(this.endpoint));
    return this.client;
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
      throw explain(e, doing, this.where);
    }
  }

  async info(): Promise<EngineInfo> {
    const v = (await this.call('ask the engine for its version', () => this.docker.version()))!;
    const i = (await this.call('ask the engine for its info', () => this.docker.info())) as {
      NCPU?: number;
      CgroupVersion?: string;
      ID?: string;
      Name?: string;
    };
    // Podman's compatible API names itself among the version's components.
    const podman = (v as { Components?: { Name?: string }[] }).Components?.some((c) => /podman/i.test(c.Name ?? ''));
    return {
      product: podman ? 'Podman' : 'Docker',
      version: v.Version,
      apiVersion: v.ApiVersion,
      os: `${v.Os}/${v.Arch}`,
      kernel: v.KernelVersion,
      cgroupVersion: i.CgroupVersion,
      ...(i.ID ? { id: i.ID } : {}),
      ...(i.Name ? { name: i.Name } : {}),
      endpoint: this.where,
      ...(typeof i.NCPU === 'number' && i.NCPU > 0 ? { cpus: i.NCPU } : {}),
    };
  }

  async imageExists(tag: string): Promise<boolean> {
    return (await this.inspectImage(tag)) !== undefined;
  }

  async inspectImage(tag: string): Promise<ImageInfo | undefined> {
    try {
      log('inspect image %s', tag);
      const i = await this.docker.getImage(tag).inspect();
      return {
        id: i.Id,
        tags: i.RepoTags ?? [],
        labels: i.Config?.Labels ?? {},
        created: i.Created,
        sizeBytes: i.Size,
      };
    } catch (e) {
      if (isStatus(e, 404)) return undefined;
      throw explain(e, `look for image ${tag}`, this.where);
    }
  }

  async saveImage(tags: string[], out: NodeJS.WritableStream, signal?: AbortSignal): Promise<void> {
    const doing = `save image ${tags.join(', ')}`;
    // GET /images/get?names=a&names=b: one archive that gives the image every one of those names (dockerode's
    // types do not list getImages).
    const docker = this.docker as unknown as { getImages(o: { names: string[] }): Promise<NodeJS.ReadableStream> };
    const stream = (await this.call(doing, () => docker.getImages({ names: tags })))!;
    const abort = () => (stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
    signal?.addEventListener('abort', abort, { once: true });
    try {
      // A Ctrl-C while the request was on its way fired before the listener: act on it now (a pipeline of an
      // already destroyed stream would never settle).
      if (signal?.aborted) {
        abort();
        throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
      }
      await pipeline(stream, out);
    } catch (e) {
      if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
      throw explain(e, doing, this.where);
    } finally {
      signal?.removeEventListener('abort', abort);
    }
    if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
  }

  async loadImage(input: NodeJS.ReadableStream, file: string, signal?: AbortSignal): Promise<string[]> {
    const doing = `load images from ${file}`;
    const stream = (await this.call(doing, () => this.docker.loadImage(input, { quiet: true }) as Promise<NodeJS.ReadableStream>))!;
    const abort = () => {
      (input as NodeJS.ReadableStream & { destroy(): void }).destroy();
      (stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
    };
    signal?.addEventListener('abort', abort, { once: true });
    try {
      if (signal?.aborted) {
        abort();
        throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
      }
      return await new Promise<string[]>((resolve, reject) => {
        this.docker.modem.followProgress(
          stream,
          (err: Error | null, output: { stream?: string; error?: string; errorDetail?: { message?: string } }[]) => {
            if (err)
              return reject(signal?.aborted ? new InterruptedError(String(signal.reason ?? 'SIGINT')) : explain(err, doing, this.where));
            const failed = output.find((o) => o.error || o.errorDetail);
            // The engine refused the archive: that is the file's fault, not the engine's (exit 2).
            if (failed)
              return reject(
                new LabError(
                  `the engine could not load ${file}: ${(failed.error ?? failed.errorDetail?.message ?? '').trim()}`,
                  'make the archive again with `lab image save FILE`',
                  2,
                ),
              );
            const loaded = output.flatMap((o) => {
              const m = /Loaded image(?: ID)?: (\S+)/.exec(o.stream ?? '');
              return m ? [m[1]!] : [];
            });
            resolve(loaded);
          },
        );
      });
    } finally {
      signal?.removeEventListener('abort', abort);
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
            if (err) return reject(explain(err, `build image ${opts.tag}`, this.where));
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
      // Docker: "Pool overlaps with other one on this address space"; Podman: "subnet ... is already used".
      if (/overlap|subnet .* already used/i.test(msg)) throw new SubnetTakenError(msg);
      throw explain(e, `create network ${spec.name} (${spec.subnet})`, this.where);
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
        // No init of the engine's: the image's command (tcplab-agent) is pid 1 and reaps every orphan itself. An
        // init running as root would forward the signals a student sends it to its child and, unable to (the
        // agent is another user), exit: the machine would stop (docker-init does exactly that).
        HostConfig: {
          Init: false,
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
          Ulimits: (spec.ulimits ?? NODE_SECURITY.ulimits).map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
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
        ...(opts.user ? { User: opts.user } : {}),
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
      throw explain(e, doing, this.where);
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

  async openExec(container: string, argv: string[], opts: OpenExecOptions = {}): Promise<ExecSession> {
    logExec('%s: open %o', container, argv);
    try {
      const ex = await this.docker.getContainer(container).exec({
        Cmd: argv,
        Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
        ...(opts.user ? { User: opts.user } : {}),
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      const stream = (await ex.start({ hijack: true, stdin: true })) as NodeJS.ReadWriteStream & {
        destroy(): void;
        unref?(): void;
        end(): void;
      };
      if (!opts.ref) {
        // A session left open (an observer of lab start --keep) must not keep the CLI from exiting.
        stream.unref?.();
        (stream as unknown as { socket?: { unref?(): void } }).socket?.unref?.();
      }
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      this.docker.modem.demuxStream(stream, stdout, stderr);
      let closed = false;
      let ended = false;
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
        write: (data) => {
          if (!closed && !ended) stream.write(data);
        },
        end: () => {
          if (closed || ended) return;
          ended = true;
          // Half-close: the engine ends the command's input and keeps sending its output.
          stream.end();
        },
        onStdout: (fn) => stdout.on('data', (b: Buffer) => fn(b)),
        onStderr: (fn) => stderr.on('data', (b: Buffer) => fn(b)),
        onClose: (fn) => {
          if (closed) fn();
          else closers.push(fn);
        },
        started: async () => {
          // The engine says Running before it asks containerd for the process (Docker 20.10 sets it first);
          // only a Pid means the process exists. An inspect that fails is asked again: under load the engine
          // can be slow to answer, and a started() that gave up early would let the machine look settled
          // before the command ran.
          for (const until = performance.now() + 30_000; performance.now() < until;) {
            const info = await ex.inspect().catch(() => null);
            if (info && (info.Pid || info.ExitCode !== null)) return;
            if (closed) return;
            await new Promise((r) => setTimeout(r, 10));
          }
        },
        exitCode: async () => {
          // The stream can end a moment before the engine records the exit code.
          for (let i = 0; i < 100; i++) {
            const info = await ex.inspect().catch(() => undefined);
            if (!info) return undefined;
            if (!info.Running) return info.ExitCode ?? undefined;
            await new Promise((r) => setTimeout(r, 10));
          }
          return undefined;
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
      throw explain(e, `start ${argv[0]} in ${container}`, this.where);
    }
  }

  async openTerminal(container: string, argv: string[], opts: TerminalOptions): Promise<TerminalSession> {
    logExec('%s: terminal %o (%dx%d)', container, argv, opts.cols, opts.rows);
    try {
      const ex = await this.docker.getContainer(container).exec({
        Cmd: argv,
        Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: true,
      });
      // With a TTY the engine sends the terminal's bytes as they are: no stream headers to take apart.
      const stream = (await ex.start({ hijack: true, stdin: true, Tty: true } as object)) as NodeJS.ReadWriteStream & {
        destroy(): void;
        end(): void;
      };
      let closed = false;
      const closers: (() => void)[] = [];
      const finish = () => {
        if (closed) return;
        closed = true;
        logExec('%s: terminal %s closed', container, argv[0]);
        for (const f of closers) f();
      };
      stream.on('end', finish);
      stream.on('close', finish);
      stream.on('error', (e: Error) => {
        logExec('%s: terminal error: %s', container, e.message);
        finish();
      });
      const resize = async (cols: number, rows: number) => {
        if (closed) return;
        // The exec may not have started its process yet (a resize right after start): not worth an error.
        await ex.resize({ h: rows, w: cols }).catch((e: Error) => logExec('%s: resize: %s', container, e.message));
      };
      await resize(opts.cols, opts.rows);
      return {
        write: (data) => {
          if (!closed) stream.write(typeof data === 'string' ? data : Buffer.from(data));
        },
        resize,
        onData: (fn) => stream.on('data', (b: Buffer) => fn(b)),
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
      throw explain(e, `open a terminal (${argv[0]}) in ${container}`, this.where);
    }
  }
}

function listFiles(dir: string, root = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? listFiles(full, root) : [relative(root, full)];
  });
}
