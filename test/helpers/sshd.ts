// A private sshd on 127.0.0.1 for the ssh:// engine tests: its own port, host key, client key and
// authorized_keys in a temporary folder; root's ~/.ssh is never touched. The client side is the real `ssh`
// binary, given the test's config by a wrapper first in PATH (ssh reads ~/.ssh/config from the passwd home,
// not $HOME, so a wrapper adding -F is the way to give it one without changing the user's files).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SSHD = ['/usr/sbin/sshd', '/usr/bin/sshd'].find((p) => existsSync(p));
export const SSHD_INSTALL = 'apt-get install -y openssh-server';
/** The real ssh client, by absolute path: the wrappers below are named ssh too and come first in PATH. */
const SSH = ['/usr/bin/ssh', '/usr/local/bin/ssh', '/bin/ssh'].find((p) => existsSync(p)) ?? 'ssh';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export class TestSshd {
  readonly dir = mkdtempSync(join(tmpdir(), 'tcplab-sshd-'));
  port = 0;
  private child?: ChildProcess;
  log = '';

  /** PATH entry whose `ssh` uses the authorized key; and one whose key sshd does not know. */
  get goodPath(): string {
    return join(this.dir, 'good');
  }
  get badPath(): string {
    return join(this.dir, 'bad');
  }

  async start(): Promise<void> {
    if (!SSHD) throw new Error(`no sshd: ${SSHD_INSTALL}`);
    const d = this.dir;
    for (const k of ['host_key', 'user_key', 'other_key']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(d, k)]);
    writeFileSync(join(d, 'authorized_keys'), readFileSync(join(d, 'user_key.pub')));
    this.port = await freePort();
    writeFileSync(
      join(d, 'sshd_config'),
      [
        `Port ${this.port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(d, 'host_key')}`,
        `AuthorizedKeysFile ${join(d, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        // The folder is under /tmp (world-writable): StrictModes would refuse its keys.
        'StrictModes no',
        `PidFile ${join(d, 'sshd.pid')}`,
        '',
      ].join('\n'),
    );
    writeFileSync(join(d, 'known_hosts'), `[127.0.0.1]:${this.port} ${readFileSync(join(d, 'host_key.pub'), 'utf8')}`);
    for (const [name, key] of [
      ['good', 'user_key'],
      ['bad', 'other_key'],
    ] as const) {
      mkdirSync(join(d, name));
      writeFileSync(
        join(d, `${name}.config`),
        [
          'Host 127.0.0.1',
          `  IdentityFile ${join(d, key)}`,
          '  IdentitiesOnly yes',
          `  UserKnownHostsFile ${join(d, 'known_hosts')}`,
          '  StrictHostKeyChecking yes',
          '  IdentityAgent none',
          '',
        ].join('\n'),
      );
      writeFileSync(join(d, name, 'ssh'), `#!/bin/sh\nexec ${SSH} -F ${join(d, `${name}.config`)} "$@"\n`);
      chmodSync(join(d, name, 'ssh'), 0o755);
    }
    // sshd's privilege-separation folder; the package's service would make it, but nothing started one here.
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    this.child = spawn(SSHD, ['-D', '-e', '-f', join(d, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.log = (this.log + s).slice(-4000)));
    const deadline = Date.now() + 10_000;
    while (!(await accepting(this.port))) {
      if (this.child.exitCode !== null || Date.now() > deadline)
        throw new Error(`sshd did not come up on 127.0.0.1:${this.port}:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** PATH with the wrapper first. */
  path(which: 'good' | 'bad'): string {
    return `${which === 'good' ? this.goodPath : this.badPath}:${process.env.PATH}`;
  }

  async stop(): Promise<void> {
    if (this.child && this.child.exitCode === null) {
      const gone = new Promise((r) => this.child!.once('exit', r));
      this.child.kill('SIGTERM');
      await gone;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
