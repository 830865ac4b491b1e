// The engine endpoint is chosen as the docker CLI chooses it; fixtures are a throwaway ~/.docker per test.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeEndpoint, resolveEndpoint, sshArgv, type Endpoint } from '../../src/runtime/endpoint.js';
import { EngineError } from '../../src/errors.js';
import { explain } from '../../src/runtime/docker.js';
import { SshError } from '../../src/runtime/ssh-agent.js';

const homes: string[] = [];
afterEach(() => {
  for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
});

/** A home folder with ~/.docker/config.json and contexts, laid out as the docker CLI writes them. */
function home(opts: { current?: string; contexts?: Record<string, { host: string; skipTls?: boolean; tls?: boolean }> } = {}): string {
  const h = mkdtempSync(join(tmpdir(), 'tcplab-home-'));
  homes.push(h);
  const dir = join(h, '.docker');
  mkdirSync(dir);
  if (opts.current) writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: {}, currentContext: opts.current }));
  for (const [name, c] of Object.entries(opts.contexts ?? {})) {
    const id = createHash('sha256').update(name).digest('hex');
    mkdirSync(join(dir, 'contexts', 'meta', id), { recursive: true });
    writeFileSync(
      join(dir, 'contexts', 'meta', id, 'meta.json'),
      JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: c.host, SkipTLSVerify: !!c.skipTls } } }),
    );
    if (c.tls) {
      const tls = join(dir, 'contexts', 'tls', id, 'docker');
      mkdirSync(tls, { recursive: true });
      for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(tls, f), `${name} ${f}`);
    }
  }
  return h;
}

const resolve = (env: NodeJS.ProcessEnv, h = home()) => resolveEndpoint({ env, home: h, platform: 'linux' });

describe('DOCKER_HOST', () => {
  it('nothing set: the default socket', () => {
    expect(resolve({})).toMatchObject({ kind: 'unix', socketPath: '/var/run/docker.sock', source: 'default' });
    expect(resolveEndpoint({ env: {}, home: home(), platform: 'win32' })).toMatchObject({
      kind: 'npipe',
      socketPath: '//./pipe/docker_engine',
    });
  });

  it('unix:// names a socket', () => {
    const e = resolve({ DOCKER_HOST: 'unix:///run/podman/podman.sock' });
    expect(e).toMatchObject({ kind: 'unix', socketPath: '/run/podman/podman.sock' });
    expect(describeEndpoint(e)).toBe('unix:///run/podman/podman.sock (DOCKER_HOST)');
  });

  it('tcp:// without TLS: plain http on the given port, 2375 by default', () => {
    expect(resolve({ DOCKER_HOST: 'tcp://10.0.0.5:2375' })).toMatchObject({ kind: 'tcp', host: '10.0.0.5', port: 2375 });
    expect(resolve({ DOCKER_HOST: 'tcp://engine.example' })).toMatchObject({ port: 2375, url: 'tcp://engine.example:2375' });
    expect((resolve({ DOCKER_HOST: 'tcp://10.0.0.5:2375' }) as { tls?: unknown }).tls).toBeUndefined();
  });

  it('tcp:// with DOCKER_TLS_VERIFY reads ca, cert and key from DOCKER_CERT_PATH and verifies; 2376 by default', () => {
    const certs = mkdtempSync(join(tmpdir(), 'tcplab-certs-'));
    homes.push(certs);
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(certs, f), f);
    const e = resolve({ DOCKER_HOST: 'tcp://engine.example', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs }) as Extract<
      Endpoint,
      { kind: 'tcp' }
    >;
    expect(e.port).toBe(2376);
    expect(e.tls?.verify).toBe(true);
    expect(e.tls?.ca?.toString()).toBe('ca.pem');
    expect(e.tls?.key?.toString()).toBe('key.pem');
    expect(describeEndpoint(e)).toBe('tcp://engine.example:2376 (DOCKER_HOST, TLS verified)');
  });

  it('TLS certificates default to ~/.docker, as for docker', () => {
    const h = home();
    writeFileSync(join(h, '.docker', 'ca.pem'), 'home ca');
    const e = resolve({ DOCKER_HOST: 'tcp://e:2376', DOCKER_TLS_VERIFY: '1' }, h) as Extract<Endpoint, { kind: 'tcp' }>;
    expect(e.tls?.ca?.toString()).toBe('home ca');
  });

  it('a cert without its key is a clear error, not a TLS failure later', () => {
    const certs = mkdtempSync(join(tmpdir(), 'tcplab-certs-'));
    homes.push(certs);
    writeFileSync(join(certs, 'cert.pem'), 'x');
    expect(() => resolve({ DOCKER_HOST: 'tcp://e:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs })).toThrow(
      /cert\.pem but no key\.pem/,
    );
  });

  it('ssh:// keeps user, port and a remote socket path; the ssh command is the one the docker CLI runs', () => {
    const e = resolve({ DOCKER_HOST: 'ssh://student@lab-host:2222' }) as Extract<Endpoint, { kind: 'ssh' }>;
    expect(e).toMatchObject({ kind: 'ssh', user: 'student', host: 'lab-host', port: 2222, url: 'ssh://student@lab-host:2222' });
    expect(sshArgv(e)).toEqual([
      '-l',
      'student',
      '-p',
      '2222',
      '-T',
      '-o',
      'ConnectTimeout=30',
      '-o',
      'BatchMode=yes',
      '--',
      'lab-host',
      'docker',
      'system',
      'dial-stdio',
    ]);
    const bare = resolve({ DOCKER_HOST: 'ssh://lab-host' }) as Extract<Endpoint, { kind: 'ssh' }>;
    expect(sshArgv(bare)).toEqual([
      '-T',
      '-o',
      'ConnectTimeout=30',
      '-o',
      'BatchMode=yes',
      '--',
      'lab-host',
      'docker',
      'system',
      'dial-stdio',
    ]);
    const sock = resolve({ DOCKER_HOST: 'ssh://me@h/run/user/1000/docker.sock' }) as Extract<Endpoint, { kind: 'ssh' }>;
    expect(sshArgv(sock).slice(-4)).toEqual(['docker', '--host=unix:///run/user/1000/docker.sock', 'system', 'dial-stdio']);
  });

  it('an address tcplab cannot use is an EngineError (exit 3) with the forms it takes', () => {
    for (const bad of ['ftp://x', 'localhost:2375', 'ssh://user:secret@h']) {
      let err: unknown;
      try {
        resolve({ DOCKER_HOST: bad });
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(EngineError);
      expect((err as EngineError).exitCode).toBe(3);
    }
  });

  it('DOCKER_HOST wins over DOCKER_CONTEXT and the current context, as in the docker CLI', () => {
    const h = home({ current: 'remote', contexts: { remote: { host: 'ssh://r' } } });
    expect(resolve({ DOCKER_HOST: 'unix:///x.sock', DOCKER_CONTEXT: 'remote' }, h)).toMatchObject({ kind: 'unix', socketPath: '/x.sock' });
  });
});

describe('docker contexts', () => {
  it('currentContext in config.json picks the context, found under the sha256 of its name', () => {
    const h = home({ current: 'desktop-linux', contexts: { 'desktop-linux': { host: 'unix:///Users/me/.docker/run/docker.sock' } } });
    const e = resolve({}, h);
    expect(e).toMatchObject({ kind: 'unix', socketPath: '/Users/me/.docker/run/docker.sock' });
    expect(e.source).toMatch(/^docker context desktop-linux$/);
  });

  it('DOCKER_CONTEXT overrides currentContext', () => {
    const h = home({ current: 'a', contexts: { a: { host: 'unix:///a.sock' }, b: { host: 'ssh://me@b' } } });
    expect(resolve({ DOCKER_CONTEXT: 'b' }, h)).toMatchObject({ kind: 'ssh', host: 'b', user: 'me' });
  });

  it('"default" is the local socket; DOCKER_CONFIG moves the config folder', () => {
    expect(resolve({}, home({ current: 'default' }))).toMatchObject({ kind: 'unix', socketPath: '/var/run/docker.sock' });
    const h = home({ current: 'x', contexts: { x: { host: 'tcp://x:2375' } } });
    expect(resolve({ DOCKER_CONFIG: join(h, '.docker') }, home())).toMatchObject({ kind: 'tcp', host: 'x' });
  });

  it("a context's TLS files are used, and SkipTLSVerify turns verification off", () => {
    const h = home({ contexts: { secure: { host: 'tcp://s:2376', tls: true }, lax: { host: 'tcp://l:2376', tls: true, skipTls: true } } });
    const s = resolve({ DOCKER_CONTEXT: 'secure' }, h) as Extract<Endpoint, { kind: 'tcp' }>;
    expect(s.tls).toMatchObject({ verify: true });
    expect(s.tls?.cert?.toString()).toBe('secure cert.pem');
    const l = resolve({ DOCKER_CONTEXT: 'lax' }, h) as Extract<Endpoint, { kind: 'tcp' }>;
    expect(l.tls?.verify).toBe(false);
  });

  it('a context that does not exist is a clear error pointing at `docker context ls`', () => {
    expect(() => resolve({ DOCKER_CONTEXT: 'gone' })).toThrow(EngineError);
    try {
      resolve({ DOCKER_CONTEXT: 'gone' });
    } catch (e) {
      expect((e as EngineError).message).toMatch(/docker context "gone" \(DOCKER_CONTEXT\) does not exist/);
      expect((e as EngineError).hint).toMatch(/docker context ls/);
    }
  });
});

describe('errors name the endpoint used', () => {
  it('an unreachable engine names where tcplab looked', () => {
    const e = explain(
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      'list containers',
      'tcp://h:2375 (docker context ci)',
    );
    expect(e.message).toBe(
      'cannot reach the Docker engine at tcp://h:2375 (docker context ci) (ECONNREFUSED) while trying to list containers',
    );
  });

  it("ssh's own complaint reaches the user, with what to fix", () => {
    const e = explain(
      new SshError('ssh exited with 255: root@h: Permission denied (publickey).', 'root@h: Permission denied (publickey).'),
      'ask the engine for its version',
      'ssh://root@h (DOCKER_HOST)',
    ) as EngineError;
    expect(e).toBeInstanceOf(EngineError);
    expect(e.exitCode).toBe(3);
    expect(e.message).toMatch(/ssh:\/\/root@h \(DOCKER_HOST\).*Permission denied \(publickey\)/);
    expect(e.hint).toMatch(/ssh-copy-id/);
  });
});
