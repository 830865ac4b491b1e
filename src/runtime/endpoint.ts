// Which Docker engine to talk to, decided the way the docker CLI decides it, so that `lab` and `docker` in the
// same shell reach the same engine: DOCKER_HOST first (unix://, tcp:// with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH,
// ssh://, npipe://), then the docker context (DOCKER_CONTEXT, else currentContext in the CLI's config.json),
// else the platform's default socket. Reads only the docker CLI's own files; never talks to an engine.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { EngineError } from '../errors.js';

export interface TlsFiles {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Check the engine's certificate against ca (DOCKER_TLS_VERIFY, or a context without SkipTLSVerify). */
  verify: boolean;
}

export type Endpoint =
  | { kind: 'unix' | 'npipe'; socketPath: string; url: string; source: string }
  | { kind: 'tcp'; host: string; port: number; tls?: TlsFiles; url: string; source: string }
  | {
      kind: 'ssh';
      host: string;
      user?: string;
      port?: number;
      /** A socket path on the remote host (ssh://host/run/user/1000/docker.sock), as the docker CLI allows. */
      remoteSocket?: string;
      url: string;
      source: string;
    };

interface EndpointInput {
  env?: NodeJS.ProcessEnv;
  /** The user's home (for ~/.docker); tests point it at a fixture folder. */
  home?: string;
  platform?: NodeJS.Platform;
}

const DEFAULT_UNIX_SOCKET = '/var/run/docker.sock';
const DEFAULT_NPIPE = '//./pipe/docker_engine';

/** Where the endpoint came from and where it points, for messages: "ssh://root@host (DOCKER_HOST)". */
export function describeEndpoint(e: Endpoint): string {
  return `${e.url} (${e.source})`;
}

function configDir(env: NodeJS.ProcessEnv, home: string): string {
  return env.DOCKER_CONFIG || join(home, '.docker');
}

function bad(message: string, hint: string): EngineError {
  return new EngineError(message, hint, 3);
}

export function resolveEndpoint(input: EndpointInput = {}): Endpoint {
  const env = input.env ?? process.env;
  const home = input.home ?? homedir();
  const platform = input.platform ?? process.platform;
  if (env.DOCKER_HOST) return parseHost(env.DOCKER_HOST, 'DOCKER_HOST', envTls(env, home));
  const dir = configDir(env, home);
  let name = env.DOCKER_CONTEXT;
  let source = 'DOCKER_CONTEXT';
  if (!name) {
    const file = join(dir, 'config.json');
    if (existsSync(file)) {
      try {
        name = (JSON.parse(readFileSync(file, 'utf8')) as { currentContext?: string }).currentContext;
      } catch (e) {
        throw bad(
          `cannot read the docker CLI's settings ${file}: ${(e as Error).message}`,
          'fix or remove that file (`docker context use default` rewrites it)',
        );
      }
      source = `currentContext in ${file}`;
    }
  }
  if (name && name !== 'default') return contextEndpoint(dir, name, source);
  return platform === 'win32'
    ? { kind: 'npipe', socketPath: DEFAULT_NPIPE, url: `npipe://${DEFAULT_NPIPE}`, source: 'default' }
    : { kind: 'unix', socketPath: DEFAULT_UNIX_SOCKET, url: `unix://${DEFAULT_UNIX_SOCKET}`, source: 'default' };
}

/** DOCKER_TLS_VERIFY / DOCKER_CERT_PATH as the docker CLI reads them (certificates default to ~/.docker). */
function envTls(env: NodeJS.ProcessEnv, home: string): TlsFiles | undefined {
  if (!env.DOCKER_TLS_VERIFY && !env.DOCKER_TLS) return undefined;
  const dir = env.DOCKER_CERT_PATH || configDir(env, home);
  return { ...readTlsDir(dir, 'DOCKER_CERT_PATH'), verify: !!env.DOCKER_TLS_VERIFY };
}

function readTlsDir(dir: string, what: string): Omit<TlsFiles, 'verify'> {
  const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f)) : undefined);
  const files = { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') };
  if (!!files.cert !== !!files.key)
    throw bad(
      `${what} ${dir} has ${files.cert ? 'cert.pem but no key.pem' : 'key.pem but no cert.pem'}`,
      "put both of the client's files there, as `docker` expects them",
    );
  return Object.fromEntries(Object.entries(files).filter(([, v]) => v)) as Omit<TlsFiles, 'verify'>;
}

function contextEndpoint(dir: string, name: string, source: string): Endpoint {
  // The docker CLI keeps each context under the sha256 of its name.
  const id = createHash('sha256').update(name).digest('hex');
  const meta = join(dir, 'contexts', 'meta', id, 'meta.json');
  if (!existsSync(meta))
    throw bad(
      `docker context "${name}" (${source}) does not exist: no ${meta}`,
      '`docker context ls` lists the contexts; `docker context use default` goes back to the local engine',
    );
  let docker: { Host?: string; SkipTLSVerify?: boolean } | undefined;
  try {
    docker = (JSON.parse(readFileSync(meta, 'utf8')) as { Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } } }).Endpoints
      ?.docker;
  } catch (e) {
    throw bad(
      `cannot read docker context "${name}" (${meta}): ${(e as Error).message}`,
      '`docker context inspect ' + name + '` shows what docker makes of it',
    );
  }
  if (!docker?.Host)
    throw bad(`docker context "${name}" has no Docker endpoint (${meta})`, '`docker context inspect ' + name + '` shows it');
  const tlsDir = join(dir, 'contexts', 'tls', id, 'docker');
  const tls = existsSync(tlsDir) ? { ...readTlsDir(tlsDir, `context "${name}" TLS folder`), verify: !docker.SkipTLSVerify } : undefined;
  return parseHost(docker.Host, `docker context ${name}`, tls);
}

/** Parse a DOCKER_HOST-style address. tls applies to tcp:// only. */
function parseHost(host: string, source: string, tls?: TlsFiles): Endpoint {
  const hint = 'DOCKER_HOST takes unix:///path, tcp://host:port, ssh://[user@]host[:port] or npipe:////./pipe/name, as `docker` does';
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length) || DEFAULT_UNIX_SOCKET;
    return { kind: 'unix', socketPath, url: `unix://${socketPath}`, source };
  }
  if (host.startsWith('npipe://')) {
    const socketPath = host.slice('npipe://'.length) || DEFAULT_NPIPE;
    return { kind: 'npipe', socketPath, url: `npipe://${socketPath}`, source };
  }
  let url: URL;
  try {
    url = new URL(host);
  } catch {
    throw bad(`${source} is not an address tcplab understands: "${host}"`, hint);
  }
  if (url.protocol === 'tcp:' || url.protocol === 'http:' || url.protocol === 'https:') {
    if (!url.hostname) throw bad(`${source} names no host: "${host}"`, hint);
    const useTls = tls ?? (url.protocol === 'https:' ? { verify: true } : undefined);
    const port = url.port ? Number(url.port) : useTls ? 2376 : 2375;
    const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
    return {
      kind: 'tcp',
      host: hostname,
      port,
      ...(useTls ? { tls: useTls } : {}),
      url: `tcp://${url.host}${url.port ? '' : `:${port}`}`,
      source: useTls ? `${source}, TLS${useTls.verify ? ' verified' : ' without verification'}` : source,
    };
  }
  if (url.protocol === 'ssh:') {
    if (!url.hostname) throw bad(`${source} names no host: "${host}"`, hint);
    if (url.password)
      throw bad(`${source} carries a password; ssh:// takes keys only`, 'use an ssh key (ssh-copy-id user@host) and ssh://user@host');
    const remoteSocket = url.pathname && url.pathname !== '/' ? decodeURIComponent(url.pathname) : undefined;
    return {
      kind: 'ssh',
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      ...(url.username ? { user: decodeURIComponent(url.username) } : {}),
      ...(url.port ? { port: Number(url.port) } : {}),
      ...(remoteSocket ? { remoteSocket } : {}),
      url: `ssh://${url.username ? `${url.username}@` : ''}${url.host}${remoteSocket ?? ''}`,
      source,
    };
  }
  throw bad(`${source} has a scheme tcplab does not know: "${host}"`, hint);
}

/** The ssh command line the docker CLI runs for an ssh:// engine (so ~/.ssh/config, keys, the agent and
 *  known_hosts apply exactly as they do for `docker`). */
export function sshArgv(e: Extract<Endpoint, { kind: 'ssh' }>): string[] {
  return [
    ...(e.user ? ['-l', e.user] : []),
    ...(e.port ? ['-p', String(e.port)] : []),
    // No terminal, no password prompt that nobody can answer; a dead host fails in 30 s, as for docker.
    '-T',
    '-o',
    'ConnectTimeout=30',
    '-o',
    'BatchMode=yes',
    '--',
    e.host,
    'docker',
    ...(e.remoteSocket ? [`--host=unix://${e.remoteSocket}`] : []),
    'system',
    'dial-stdio',
  ];
}
