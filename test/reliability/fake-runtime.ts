// An in-memory Runtime for fault injection: containers, networks and exec, with hooks to fail calls the way a
// real engine does (dropped connections, 5xx, the engine going away, a container removed by hand).
import { EngineError } from '../../src/errors.js';
import { markTransient } from '../../src/runtime/runtime.js';
import { explain } from '../../src/runtime/docker.js';
import type { Clock } from '../../src/engine/clock.js';
import type {
  ContainerSpec,
  EngineInfo,
  ExecOptions,
  ExecResult,
  ExecSession,
  NetworkSpec,
  OpenExecOptions,
  Resource,
  Runtime,
} from '../../src/runtime/runtime.js';
import { encodeFrame, field, FrameReader, Fields, KIND, OK, u32, u64, type Frame } from '../../src/observe/wire.js';

type ExecHandler = (container: string, argv: string[]) => Partial<ExecResult> | undefined;

export class FakeRuntime implements Runtime {
  containers = new Map<string, { spec: ContainerSpec; networks: string[]; running: boolean }>();
  networks = new Map<string, NetworkSpec>();
  calls: string[] = [];
  /** Called before every call; throw from it to inject a fault. */
  before: (call: string, args: unknown[]) => void = () => {};
  onExec: ExecHandler = () => undefined;
  /** Answer a frame sent to a node's agent yourself: a frame, 'drop' (the session breaks), or undefined for the
   *  fake agent's own answer. */
  onAgent: (container: string, frame: Frame) => Frame | 'drop' | undefined = () => undefined;
  /** Named commands the fake agents know, per container: running, or ended with an exit code. */
  commands = new Map<string, Map<string, { running: boolean; exit?: number }>>();

  private hook(call: string, ...args: unknown[]) {
    this.calls.push(`${call} ${args.filter((a) => typeof a === 'string').join(' ')}`.trim());
    this.before(call, args);
  }

  async info(): Promise<EngineInfo> {
    this.hook('info');
    return { version: 'fake', apiVersion: '1.41', os: 'linux/amd64', kernel: 'fake' };
  }
  async imageExists(): Promise<boolean> {
    this.hook('imageExists');
    return true;
  }
  async buildImage(): Promise<void> {
    this.hook('buildImage');
  }
  async removeImage(): Promise<void> {}
  async listImages(): Promise<Resource[]> {
    return [];
  }
  async usedSubnets(): Promise<string[]> {
    this.hook('usedSubnets');
    return [...this.networks.values()].map((n) => n.subnet);
  }
  async createNetwork(spec: NetworkSpec): Promise<void> {
    this.hook('createNetwork', spec.name);
    this.networks.set(spec.name, spec);
  }
  async removeNetwork(name: string): Promise<void> {
    this.hook('removeNetwork', name);
    const inUse = [...this.containers.values()].some((c) => c.networks.includes(name));
    if (inUse)
      throw new EngineError(
        `Docker could not remove network ${name}: error while removing network: network ${name} id x has active endpoints`,
      );
    this.networks.delete(name);
  }
  async listNetworks(labels: Record<string, string>): Promise<Resource[]> {
    this.hook('listNetworks');
    return [...this.networks.values()]
      .filter((n) => matches(n.labels, labels))
      .map((n) => ({ id: n.name, name: n.name, labels: n.labels }));
  }
  async createContainer(spec: ContainerSpec): Promise<void> {
    this.hook('createContainer', spec.name);
    this.containers.set(spec.name, { spec, networks: [spec.network.name], running: false });
  }
  async connectNetwork(container: string, network: string): Promise<void> {
    this.hook('connectNetwork', container, network);
    this.containers.get(container)!.networks.push(network);
  }
  async startContainer(name: string): Promise<void> {
    this.hook('startContainer', name);
    this.containers.get(name)!.running = true;
  }
  async removeContainer(name: string): Promise<void> {
    this.hook('removeContainer', name);
    this.containers.delete(name);
  }
  async listContainers(labels: Record<string, string>): Promise<Resource[]> {
    this.hook('listContainers');
    return [...this.containers.values()]
      .filter((c) => matches(c.spec.labels, labels))
      .map((c) => ({ id: c.spec.name, name: c.spec.name, labels: c.spec.labels, state: c.running ? 'running' : 'created' }));
  }
  async inspectContainer(name: string): Promise<unknown> {
    this.hook('inspectContainer', name);
    const c = this.containers.get(name);
    if (!c) throw new EngineError(`Docker could not inspect container ${name}: No such container: ${name}`, undefined, 3);
    return { ...c, State: { Running: c.running, Status: c.running ? 'running' : 'exited', ExitCode: c.running ? 0 : 137 } };
  }
  async openExec(container: string, argv: string[], _opts?: OpenExecOptions): Promise<ExecSession> {
    this.calls.push(`openExec ${container} ${argv.join(' ')}`);
    this.before('openExec', [container, ...argv]);
    if (!this.containers.has(container))
      throw new EngineError(`Docker could not start ${argv[0]} in ${container}: No such container: ${container}`, undefined, 3);
    return fakeAgentSession(this, container, argv);
  }
  async exec(container: string, argv: string[], _opts?: ExecOptions): Promise<ExecResult> {
    this.hook('exec', container, argv[0] ?? '');
    if (!this.containers.has(container))
      throw new EngineError(`Docker could not run ${argv[0]} in ${container}: No such container: ${container}`);
    const r = this.onExec(container, argv) ?? {};
    return { argv, exitCode: 0, stdout: argv[0] === 'tcplab-observe' ? '### ss\n' : '', stderr: '', durationMs: 1, ...r };
  }
}

/** A node's agent, in memory: answers every request as a lab where nothing happens would. */
function fakeAgentSession(rt: FakeRuntime, container: string, argv: string[]): ExecSession {
  const out: ((b: Buffer) => void)[] = [];
  const closers: ((e?: Error) => void)[] = [];
  let closed = false;
  const reader = new FrameReader();
  const close = (e?: Error) => {
    if (closed) return;
    closed = true;
    for (const f of closers) f(e);
  };
  const reply = (f: Frame) => queueMicrotask(() => !closed && out.forEach((fn) => fn(encodeFrame(f))));
  const cmds = () => {
    let m = rt.commands.get(container);
    if (!m) rt.commands.set(container, (m = new Map()));
    return m;
  };
  const agent = argv[0] === 'tcplab-agent' && argv[1] === 'connect';
  return {
    write: (data) => {
      if (closed || !agent) return;
      for (const frame of reader.push(Buffer.from(data))) {
        if (!rt.containers.get(container)?.running) return queueMicrotask(() => close(new Error('container gone')));
        let custom: Frame | 'drop' | undefined;
        try {
          // (container, kind, and for a RUN whether it starts a background command: a step's, not the set-up's)
          rt.before('agent', [container, frame.kind, frame.fields.some((x) => x.tag === 'B'.charCodeAt(0))]);
          custom = rt.onAgent(container, frame);
        } catch (e) {
          return queueMicrotask(() => close(e as Error));
        }
        if (custom === 'drop') return queueMicrotask(() => close(new Error('dropped')));
        if (custom) {
          reply(custom);
          continue;
        }
        const f = new Fields(frame.fields, 'request');
        const ok = (fields: ReturnType<typeof field>[]) => reply({ seq: frame.seq, kind: OK | frame.kind, fields });
        switch (frame.kind) {
          case KIND.hello:
            ok([field('v', u32(1)), field('V', '1'), field('p', u32(7)), field('u', u32(990))]);
            break;
          case KIND.look: {
            const fields = [field('t', u64(1)), field('T', u64(BigInt(Date.now()) * 1_000_000n))];
            if (f.has('s')) fields.push(field('O', u64(1)), field('D', u64(0)), field('N', u64(1)));
            if (f.has('i')) fields.push(field('i', '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n'));
            if (f.has('b')) fields.push(field('b', u32(0)));
            for (const c of f.all('c')) {
              const st = cmds().get(c.toString());
              const nested = [field('n', c)];
              if (st) nested.push(field('r', Buffer.from([st.running ? 1 : 0])), ...(st.running ? [] : [field('x', u32(st.exit ?? 0))]));
              fields.push(
                field('m', Buffer.concat(nested.map((x) => Buffer.concat([Buffer.from([x.tag]), u32(x.value.length), x.value])))),
              );
            }
            ok(fields);
            break;
          }
          case KIND.run: {
            const name = f.str('n');
            if (f.has('B')) {
              cmds().set(name!, { running: true });
              ok([field('p', u32(100))]);
            } else {
              if (name) cmds().set(name, { running: false, exit: 0 });
              ok([field('r', Buffer.from([0])), field('x', u32(0)), field('o', ''), field('h', u32(0)), field('c', u64(0))]);
            }
            break;
          }
          case KIND.signal: {
            const st = cmds().get(f.str('n') ?? '');
            if (st) Object.assign(st, { running: false, exit: 130 });
            ok([field('r', Buffer.from([0]))]);
            break;
          }
          default:
            ok([]);
        }
      }
    },
    end: () => close(),
    onStdout: (fn) => out.push(fn),
    onStderr: () => {},
    onClose: (fn) => (closed ? fn() : closers.push(fn)),
    exitCode: async () => 0,
    started: async () => {},
    close: () => close(),
  };
}

function matches(have: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => have[k] === v);
}

/** What explain() makes of a dropped connection: a transient EngineError. */
export function droppedConnection(doing = 'run tcplab-observe'): EngineError {
  return markTransient(
    new EngineError(`the Docker engine dropped the connection while trying to ${doing} (ECONNRESET)`, 'is the engine still running?', 3),
  );
}

/** What explain() makes of an engine that is gone. */
export function engineGone(doing = 'list containers'): EngineError {
  return explain(Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT' }), doing) as EngineError;
}

/** A clock whose sleeps pass at once, counting the time they would have taken. */
export class FakeClock implements Clock {
  t = 0;
  slept: number[] = [];
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.slept.push(ms);
    this.t += ms;
  }
}
