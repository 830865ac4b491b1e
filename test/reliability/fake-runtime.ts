// An in-memory Runtime for fault injection: containers, networks and exec, with hooks to fail calls the way a
// real engine does (dropped connections, 5xx, the engine going away, a container removed by hand).
import { EngineError } from '../../src/errors.js';
import { markTransient } from '../../src/runtime/runtime.js';
import { explain } from '../../src/runtime/docker.js';
import type { Clock } from '../../src/engine/clock.js';
import type { ContainerSpec, EngineInfo, ExecOptions, ExecResult, NetworkSpec, Resource, Runtime } from '../../src/runtime/runtime.js';

type ExecHandler = (container: string, argv: string[]) => Partial<ExecResult> | undefined;

export class FakeRuntime implements Runtime {
  containers = new Map<string, { spec: ContainerSpec; networks: string[]; running: boolean }>();
  networks = new Map<string, NetworkSpec>();
  calls: string[] = [];
  /** Called before every call; throw from it to inject a fault. */
  before: (call: string, args: unknown[]) => void = () => {};
  onExec: ExecHandler = () => undefined;

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
    return this.containers.get(name);
  }
  async exec(container: string, argv: string[], _opts?: ExecOptions): Promise<ExecResult> {
    this.hook('exec', container, argv[0] ?? '');
    if (!this.containers.has(container))
      throw new EngineError(`Docker could not run ${argv[0]} in ${container}: No such container: ${container}`);
    const r = this.onExec(container, argv) ?? {};
    return { argv, exitCode: 0, stdout: argv[0] === 'tcplab-observe' ? '### ss\n' : '', stderr: '', durationMs: 1, ...r };
  }
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
