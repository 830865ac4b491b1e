// What a student's root can reach in their own machine, tried directly, as a `lab shell` would: every attempt
// on the agent, its relays and the lab's own commands (signals, ptrace, their descriptors and memory, the
// agent's socket, becoming its user) is refused by the kernel, and the agent and the lab's command go on; and
// TCP_REPAIR, which would make an ESTABLISHED socket with nothing on the wire, is refused to the student.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import type { Instance } from '../../src/engine/instance.js';
import { createInstance } from '../../src/engine/provision.js';
import { studentArgv } from '../../src/observe/agent-protocol.js';
import { bareLab } from '../helpers/lab.js';

const lab = bareLab(994, 'student-reach');

/** Python, run as the student: each attempt prints "NAME ok" or "NAME refused: why". The image's python has no
 *  ctypes for ptrace(2) itself; opening /proc/PID/mem for writing asks the kernel the very question
 *  PTRACE_ATTACH does (ptrace_may_access in attach mode), and writing there is what a tracer would do. */
const ATTEMPTS = String.raw`
import os, signal, socket, subprocess
def pids():
    out = subprocess.run(["ps", "-eo", "pid=,uid=,comm="], capture_output=True, text=True).stdout.split("\n")
    return [(int(l.split()[0]), int(l.split()[1]), l.split()[2]) for l in out if l.strip()]
theirs = [p for p, uid, comm in pids() if uid == 990]
print("targets", len(theirs))
def attempt(name, fn):
    try:
        fn()
        print(name, "ok")
    except Exception as e:
        print(name, "refused:", type(e).__name__, e)
for p in theirs:
    attempt("kill %d" % p, lambda: os.kill(p, signal.SIGKILL))
    attempt("trace %d" % p, lambda: open("/proc/%d/mem" % p, "r+b").write(b"x"))
    attempt("fd %d" % p, lambda: open("/proc/%d/fd/1" % p, "w").write("forged\n"))
    attempt("mem %d" % p, lambda: open("/proc/%d/mem" % p, "rb").read(1))
    attempt("environ %d" % p, lambda: open("/proc/%d/environ" % p, "rb").read())
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(b"\0tcplab-agent")
    s.sendall(b"\0\0\0\x05\0\0\0\x01\x01")
    if not s.recv(100):
        raise ConnectionError("closed without an answer")
attempt("agent-socket", connect)
def bind():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(b"\0tcplab-agent")
attempt("bind-agent-name", bind)
attempt("setuid", lambda: os.setuid(990))
# TCP_REPAIR would put a socket in ESTABLISHED with no handshake on the wire (NET_ADMIN allows it): refused by
# the agent's seccomp filter, while ordinary options work.
attempt("tcp-repair", lambda: socket.socket().setsockopt(socket.IPPROTO_TCP, 19, 1))
attempt("tcp-nodelay", lambda: socket.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1))
attempt("kill-all", lambda: os.kill(-1, signal.SIGKILL) if os.fork() == 0 else os.wait())
# The init (pid 1) forwards what it gets to its child, the agent: as root without CAP_KILL, it cannot either.
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
    try:
        os.kill(1, sig)
    except Exception as e:
        print("init-signal", sig, e)
`;

describeDocker("a student's root in their machine", (env) => {
  let inst: Instance;
  beforeAll(async () => {
    inst = await createInstance(env.runtime, lab, { image: env.image, instance: env.track(`rch${Date.now().toString(36).slice(-5)}`) });
  });
  afterAll(async () => {
    await inst?.down();
  });

  it('cannot signal, trace, read, write, impersonate or feed the agent, its relays or the lab commands', async () => {
    await inst.runAction({ on: 'server', run: ['nc', '-l', '5555'], name: 'srv', background: true });
    const before = await inst.agent('server').look({ commands: ['srv'] });
    const r = await inst.exec('server', studentArgv(['python3', '-c', ATTEMPTS]), { timeoutMs: 30_000 });
    const lines = r.stdout.trim().split('\n');
    // The agent, at least one relay (this test's session) and the lab's nc.
    expect(Number(/^targets (\d+)$/.exec(lines[0]!)?.[1]), r.stdout + r.stderr).toBeGreaterThanOrEqual(3);
    const results = lines.slice(1);
    expect(results.length).toBeGreaterThan(5 * 3);
    for (const line of results) {
      // kill-all succeeds as a call: it kills what the student may kill, which is only their own.
      if (line.startsWith('kill-all') || line.startsWith('init-signal') || line.startsWith('tcp-nodelay')) continue;
      expect(line, r.stdout + r.stderr).toMatch(/ refused: /);
    }
    expect(results.find((l) => l.startsWith('bind-agent-name'))).toMatch(/Address already in use/);
    expect(results.find((l) => l.startsWith('tcp-repair'))).toMatch(/refused: PermissionError/);
    expect(results.find((l) => l.startsWith('tcp-nodelay'))).toBe('tcp-nodelay ok');
    // Everything of the agent's is still there and answering, and the lab's command is still running.
    const after = await inst.agent('server').look({ commands: ['srv'] });
    expect(after.commands.srv?.running).toBe(true);
    expect(after.commands.srv?.pid).toBe(before.commands.srv?.pid);
    expect(after.commands.srv?.output).not.toMatch(/forged/);
    const state = (await inst.runtime.inspectContainer(inst.container('server'))) as { State: { Running: boolean } };
    expect(state.State.Running).toBe(true);
  });
});
