// The one interface between tcplab and a container engine, in our own types. Only runtime/docker.ts imports
// dockerode; another backend (Podman's Docker API, a remote host) is a new implementation of this.

export interface EngineInfo {
  /** "Docker", or "Podman" when its Docker-compatible API answers. */
  product?: string;
  version: string;
  apiVersion: string;
  os: string;
  kernel: string;
  cgroupVersion?: string;
  /** The engine's own id (Docker's daemon ID), stable across restarts; empty where an engine has none. */
  id?: string;
  /** The engine's host name. */
  name?: string;
  /** Where tcplab reached it, for people: "unix:///var/run/docker.sock (default)", "ssh://root@host (DOCKER_HOST)". */
  endpoint?: string;
  /** How many CPUs the engine's host has (GET /info NCPU): where the labs run, which may not be this machine. */
  cpus?: number;
}

export interface Ulimit {
  name: string;
  soft: number;
  hard: number;
}

export interface ImageInfo {
  id: string;
  tags: string[];
  labels: Record<string, string>;
  /** ISO time the image was built (kept by save/load). */
  created: string;
  sizeBytes: number;
}

export interface NetworkSpec {
  name: string;
  subnet: string;
  gateway: string;
  internal: boolean;
  labels: Record<string, string>;
  /** Driver options (bridge: com.docker.network.bridge.*). */
  options?: Record<string, string>;
}

export interface ContainerSpec {
  name: string;
  hostname: string;
  image: string;
  cmd: string[];
  labels: Record<string, string>;
  /** First network, given at create time, with its fixed address. */
  network: { name: string; ip: string };
  sysctls: Record<string, string>;
  capAdd: string[];
  capDrop: string[];
  securityOpt: string[];
  readOnlyRootfs: boolean;
  tmpfs: Record<string, string>;
  memoryBytes: number;
  pidsLimit: number;
  /** Explicit resource limits. Engines differ in their defaults (rootful Podman cannot raise NOFILE to its own
   *  default in a container), so the Docker runtime gives NODE_SECURITY.ulimits when this is left out. */
  ulimits?: readonly Ulimit[];
}

export interface ExecOptions {
  /** Kill the command in the container after this long (ms); the call fails a little later if it still hangs. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Environment for the command. */
  env?: Record<string, string>;
  /** Run as this user (uid[:gid], or a name the image knows) instead of the image's default (root). */
  user?: string;
  /** Bytes kept of each of stdout and stderr, half from the start and half from the end (default 64 KiB);
   *  what lies between is dropped and counted (ExecResult.cutBytes). */
  maxOutputBytes?: number;
}

export interface ExecResult {
  argv: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** Bytes of each stream left out of stdout/stderr above, where a "[... N bytes cut ...]" line stands instead. */
  cutBytes?: { stdout: number; stderr: number };
}

/** A command that keeps running in a container, with its standard input open; see Runtime.openExec. */
export interface ExecSession {
  /** Write to the command's standard input. */
  write(data: string | Buffer): void;
  /** End its standard input (the command sees EOF); its output still comes, and exitCode() tells how it ended. */
  end(): void;
  /** Standard output as it arrives, bytes as sent. */
  onStdout(fn: (chunk: Buffer) => void): void;
  /** Standard error as it arrives. */
  onStderr(fn: (chunk: Buffer) => void): void;
  /** Called once when the session ends: the command exited, the container went away, or close() was called. */
  onClose(fn: (err?: Error) => void): void;
  /** Once the session has ended: the command's exit code as the engine recorded it (undefined if it cannot
   *  tell: the container is gone). */
  exitCode(): Promise<number | undefined>;
  /** Settles once the engine says the command's process exists (or has already ended): a session is open
   *  before its process has started. */
  started(): Promise<void>;
  /** Drop the connection (the command sees EOF on its input and goes on, or ends, as it will). */
  close(): void;
}

export interface OpenExecOptions {
  user?: string;
  env?: Record<string, string>;
  /** Keep the process alive while the session is open (a command whose end is awaited); default: the session
   *  never keeps the process alive on its own (an observer left open by lab start --keep). */
  ref?: boolean;
}

/** An interactive program on a terminal (a shell in a lab machine), for a browser's terminal: raw bytes both ways,
 *  since a TTY merges stdout and stderr, and a size that follows the browser's window. See Runtime.openTerminal. */
export interface TerminalSession {
  /** Keystrokes, pasted text, escape sequences: to the program's terminal. */
  write(data: string | Uint8Array): void;
  /** The terminal's size in characters (the program sees SIGWINCH). */
  resize(cols: number, rows: number): Promise<void>;
  /** What the program writes to its terminal, as it arrives. */
  onData(fn: (chunk: Uint8Array) => void): void;
  /** Called once when the program exits, its container goes away, or close() was called. */
  onClose(fn: () => void): void;
  /** Hang up: drop the connection (the program sees its terminal go). */
  close(): void;
}

export interface TerminalOptions {
  cols: number;
  rows: number;
  env?: Record<string, string>;
}

export interface Resource {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** Containers: running, exited, created ... */
  state?: string;
}

export interface BuildOptions {
  contextDir: string;
  tag: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  onLine?: (line: string) => void;
  signal?: AbortSignal;
}

export interface Runtime {
  info(): Promise<EngineInfo>;
  imageExists(tag: string): Promise<boolean>;
  buildImage(opts: BuildOptions): Promise<void>;
  removeImage(tag: string): Promise<void>;
  /** Give an existing image another tag (the stable tag Compose files use). Optional for other backends. */
  tagImage?(source: string, target: string): Promise<void>;
  listImages(labels: Record<string, string>): Promise<Resource[]>;
  /** An image's id, tags, labels and creation time; undefined when there is none of that name. */
  inspectImage?(tag: string): Promise<ImageInfo | undefined>;
  /** Write one image, under every name in tags, as a `docker save` archive to out (the caller owns the file). */
  saveImage?(tags: string[], out: NodeJS.WritableStream, signal?: AbortSignal): Promise<void>;
  /** `docker load` an uncompressed archive (file names it in messages); returns what the engine says it loaded
   *  ("tcplab/node:abc", or an image id). */
  loadImage?(archive: NodeJS.ReadableStream, file: string, signal?: AbortSignal): Promise<string[]>;
  /** Subnets of every network the engine has, to pick ones that do not collide. */
  usedSubnets(): Promise<string[]>;
  createNetwork(spec: NetworkSpec): Promise<void>;
  removeNetwork(name: string): Promise<void>;
  listNetworks(labels: Record<string, string>): Promise<Resource[]>;
  createContainer(spec: ContainerSpec): Promise<void>;
  connectNetwork(container: string, network: string, ip: string): Promise<void>;
  startContainer(name: string): Promise<void>;
  removeContainer(name: string): Promise<void>;
  listContainers(labels: Record<string, string>): Promise<Resource[]>;
  inspectContainer(name: string): Promise<unknown>;
  exec(container: string, argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Start a long-running command with stdin attached: the agent's relay, a student's answer. */
  openExec(container: string, argv: string[], opts?: OpenExecOptions): Promise<ExecSession>;
  /** Start a program on a terminal (a TTY) in a container: a browser's shell (lab serve). Optional: a backend
   *  without it has no terminals in the browser. */
  openTerminal?(container: string, argv: string[], opts: TerminalOptions): Promise<TerminalSession>;
}

/** The engine refused because the subnet is taken (by another lab started at the same moment, say). */
export class SubnetTakenError extends Error {
  override name = 'SubnetTakenError';
}

const TRANSIENT = Symbol.for('tcplab.transient');

/** Mark an error as a passing engine failure (a dropped connection, a 5xx) that a call safe to repeat may retry. */
export function markTransient<E extends Error>(e: E): E {
  (e as unknown as Record<symbol, boolean>)[TRANSIENT] = true;
  return e;
}

export function isTransient(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as Record<symbol, boolean>)[TRANSIENT] === true;
}
