// Faults injected through a fake runtime: dropped connections and 5xx during observation (retried), the engine
// going away mid-lab, a container removed by hand, a subnet taken by another process, removal racing removal.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { explain } from '../../src/runtime/docker.js';
import { retryTransient } from '../../src/engine/retry.js';
import { isTransient, markTransient } from '../../src/runtime/runtime.js';
import { createInstance } from '../../src/engine/provision.js';
import { removeInstance } from '../../src/engine/teardown.js';
import { runLab } from '../../src/engine/run-lab.js';
import { listInstances } from '../../src/engine/cleanup.js';
import { ownerStatus } from '../../src/identity.js';
import { parseLab } from '../../src/lab/load.js';
import { EngineError, InterruptedError } from '../../src/errors.js';
import { LABEL } from '../../src/plan/plan.js';
import { SubnetTakenError } from '../../src/runtime/runtime.js';
import { droppedConnection, engineGone, FakeClock, FakeRuntime } from './fake-runtime.js';
import { KIND } from '../../src/observe/wire.js';

const lab = parseLab(`id: 901
slug: fault-probe
title: fault probe
summary: s
intro: i
steps:
  - id: one
    title: one
    explain: e
    run:
      - { on: server, run: [nc, -l, "5555"], name: srv, background: true }
    expect:
      - { on: server, absent: { local: "*:6000" }, within: 2s }
  - id: two
    title: two
    explain: e
    expect:
      - { on: client, absent: { local: "*:6000" }, within: 2s }
`);

describe('retryTransient', () => {
  it('retries a transient failure with growing backoff, then succeeds', async () => {
    const clock = new FakeClock();
    let n = 0;
    const r = await retryTransient(
      async () => {
        if (n++ < 2) throw droppedConnection();
        return 'ok';
      },
      { clock },
    );
    expect(r).toBe('ok');
    expect(n).toBe(3);
    expect(clock.slept).toEqual([100, 200]);
  });

  it('gives up after two retries, and never retries a permanent failure or after an interrupt', async () => {
    const clock = new FakeClock();
    let n = 0;
    await expect(
      retryTransient(
        async () => {
          n++;
          throw droppedConnection();
        },
        { clock },
      ),
    ).rejects.toThrow(/dropped the connection/);
    expect(n).toBe(3);
    n = 0;
    await expect(
      retryTransient(
        async () => {
          n++;
          throw new EngineError('No such container');
        },
        { clock },
      ),
    ).rejects.toThrow(/No such container/);
    expect(n).toBe(1);
    n = 0;
    const ac = new AbortController();
    ac.abort('SIGINT');
    await expect(
      retryTransient(
        async () => {
          n++;
          throw droppedConnection();
        },
        { clock, signal: ac.signal },
      ),
    ).rejects.toThrow();
    expect(n).toBe(1);
  });

  it('explain() marks dropped connections and 5xx as transient, not 404 or a missing engine', () => {
    expect(isTransient(explain(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'x'))).toBe(true);
    expect(isTransient(explain(Object.assign(new Error('x'), { statusCode: 500, json: { message: 'server error' } }), 'x'))).toBe(true);
    expect(isTransient(explain(Object.assign(new Error('x'), { statusCode: 503 }), 'x'))).toBe(true);
    expect(isTransient(explain(Object.assign(new Error('x'), { statusCode: 404, json: { message: 'No such container' } }), 'x'))).toBe(
      false,
    );
    const gone = explain(Object.assign(new Error('connect ENOENT'), { code: 'ENOENT' }), 'list containers');
    expect(isTransient(gone)).toBe(false);
    expect(gone.message).toMatch(/cannot reach the Docker engine/);
    expect((gone as EngineError).hint).toMatch(/lab clean --stale/);
    expect(isTransient(markTransient(new Error('x')))).toBe(true);
    expect(isTransient(new Error('x'))).toBe(false);
  });
});

describe('faults during a lab (fake runtime)', () => {
  it('a look whose session breaks tells nothing (never met), the next opens another, and the lab passes', async () => {
    const rt = new FakeRuntime();
    let dropped = 0;
    rt.onAgent = (_c, frame) => (frame.kind === KIND.look && dropped++ < 2 ? 'drop' : undefined);
    const result = await runLab(rt, lab, { image: 'x', instance: 'aaaa0001', clock: new FakeClock() });
    expect(dropped).toBeGreaterThan(2);
    // One session per node for the set-up, and another after each one that broke.
    expect(rt.calls.filter((c) => c.startsWith('openExec')).length).toBeGreaterThanOrEqual(4);
    expect(result.passed).toBe(true);
    expect(rt.containers.size + rt.networks.size).toBe(0);
  });

  it("an agent no session can reach ends the run with the engine's words and exit 3, and the lab is removed", async () => {
    const rt = new FakeRuntime();
    let faults = 0;
    let up = false;
    rt.before = (call, args) => {
      if (call === 'agent' && args[1] === KIND.run && args[2] === true) up = true;
      // Once a step runs, every session breaks and none can be opened again.
      if (up && (call === 'openExec' || (call === 'agent' && args[1] === KIND.look))) {
        faults++;
        throw droppedConnection('start tcplab-agent');
      }
    };
    const err = await runLab(rt, lab, { image: 'x', instance: 'aaaa0002', clock: new FakeClock() }).catch((e: unknown) => e);
    expect(faults).toBeGreaterThanOrEqual(2);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).message).toMatch(/dropped the connection/);
    expect((err as EngineError).exitCode).toBe(3);
    expect(rt.containers.size + rt.networks.size).toBe(0);
  });

  it('the engine going away mid-lab: exit code 3, "cannot reach the Docker engine", a hint to `lab clean --stale`', async () => {
    const rt = new FakeRuntime();
    let gone = false;
    let refused = 0;
    rt.before = (call, args) => {
      if (gone) {
        refused++;
        throw engineGone(call);
      }
      if (call === 'agent' && args[1] === KIND.run && args[2] === true) {
        gone = true;
        throw engineGone('run a command');
      }
    };
    const err = await runLab(rt, lab, { image: 'x', instance: 'aaaa0003', clock: new FakeClock() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).message).toMatch(/cannot reach the Docker engine/);
    expect((err as EngineError).hint).toMatch(/lab clean --stale/);
    expect((err as EngineError).exitCode).toBe(3);
    // The teardown was tried (and failed, the engine being gone): what is left is for `lab clean --stale`.
    expect(rt.calls.filter((c) => c === 'listContainers').length).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    expect(rt.containers.size).toBe(2);
  });

  it('a container removed by hand mid-lab: exit 3 naming it and what to do, and the rest is removed', async () => {
    const rt = new FakeRuntime();
    let removed = 0;
    rt.before = (call, args) => {
      if (call === 'agent' && args[0] === 'tcplab-aaaa0004-server' && args[1] === KIND.run && args[2] === true && !removed) {
        removed++;
        rt.containers.delete('tcplab-aaaa0004-server');
        throw new Error('the container went away');
      }
    };
    const err = await runLab(rt, lab, { image: 'x', instance: 'aaaa0004', clock: new FakeClock() }).catch((e: unknown) => e);
    expect(removed).toBe(1);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).message).toMatch(
      /^the server container \(tcplab-aaaa0004-server\) is gone or stopped: .*No such container/,
    );
    expect((err as EngineError).hint).toBe('was it removed by hand? run `lab clean` and start the lab again');
    expect((err as EngineError).exitCode).toBe(3);
    expect(rt.containers.size + rt.networks.size).toBe(0);
  });

  it("a machine that stopped on its own (its agent ended, out of memory): the lab's failure, graded, not exit 3", async () => {
    const rt = new FakeRuntime();
    let stopped = 0;
    rt.before = (call, args) => {
      if (call === 'agent' && args[0] === 'tcplab-aaaa0010-server' && args[1] === KIND.run && args[2] === true && !stopped) {
        stopped++;
        rt.containers.get('tcplab-aaaa0010-server')!.running = false;
        throw new Error('the agent ended');
      }
    };
    const result = await runLab(rt, lab, { image: 'x', instance: 'aaaa0010', clock: new FakeClock() });
    expect(stopped).toBe(1);
    expect(result.passed).toBe(false);
    expect(result.error).toMatch(/^the server machine stopped: its main process exited/);
    expect(rt.containers.size + rt.networks.size).toBe(0);
  });

  it('an interrupt while a step fails for it (containers removed under it) is reported as the interrupt', async () => {
    const rt = new FakeRuntime();
    const ac = new AbortController();
    let interrupted = 0;
    rt.before = (call, args) => {
      if (call === 'agent' && args[1] === KIND.run && args[2] === true && !interrupted) {
        interrupted++;
        ac.abort('SIGTERM');
        rt.containers.clear();
        throw new Error('gone');
      }
    };
    const err = await runLab(rt, lab, { image: 'x', instance: 'aaaa0005', clock: new FakeClock(), signal: ac.signal }).catch(
      (e: unknown) => e,
    );
    expect(interrupted).toBe(1);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as InterruptedError).exitCode).toBe(143);
  });

  it('a subnet taken by another process at the same moment: the next free ones are tried', async () => {
    const rt = new FakeRuntime();
    const refused: string[] = [];
    rt.createNetwork = async (spec) => {
      if (refused.length < 3) {
        refused.push(spec.subnet);
        throw new SubnetTakenError('Pool overlaps with other one on this address space');
      }
      rt.networks.set(spec.name, spec);
    };
    const inst = await createInstance(rt, lab, { image: 'x', instance: 'aaaa0006' });
    expect(refused).toHaveLength(3);
    expect(refused).not.toContain(inst.plan.networks[0]!.subnet);
    await inst.down();
    expect(rt.containers.size + rt.networks.size).toBe(0);
  });

  it('removal racing removal and a create in flight: every pass is full, networks wait for their containers', async () => {
    const rt = new FakeRuntime();
    const inst = await createInstance(rt, lab, { image: 'x', instance: 'aaaa0007' });
    // While the first removal lists containers, a create that was in flight lands (a late container).
    let injected = false;
    rt.before = (call) => {
      if (call === 'listContainers' && !injected) {
        injected = true;
        const late = { ...rt.containers.get('tcplab-aaaa0007-client')!.spec, name: 'tcplab-aaaa0007-late' };
        queueMicrotask(() => rt.containers.set(late.name, { spec: late, networks: [late.network.name], running: true }));
      }
    };
    const [x, y] = await Promise.all([removeInstance(rt, inst.id), removeInstance(rt, inst.id)]);
    expect(injected).toBe(true);
    // client, server and the late one, each removed once by one pass or the other; the one network once.
    expect(x.containers + y.containers).toBe(3);
    expect(x.networks + y.networks).toBe(1);
    expect(rt.containers.size + rt.networks.size).toBe(0);
  });
});

describe('stale instances', () => {
  it('owner status: kept, another host, no owner, a live process, a dead one', () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const host = hostname();
    expect(ownerStatus({ [LABEL.pid]: `${host}:${dead}`, [LABEL.keep]: 'true' })).toBe('kept');
    expect(ownerStatus({ [LABEL.pid]: `elsewhere:${process.pid}` })).toBe('other-host');
    expect(ownerStatus({})).toBe('unknown-owner');
    expect(ownerStatus({ [LABEL.pid]: `${host}:${process.pid}` })).toBe('running');
    expect(ownerStatus({ [LABEL.pid]: `${host}:${dead}` })).toBe('stale');
    expect(ownerStatus({ [LABEL.pid]: `${host}:notapid` })).toBe('unknown-owner');
  });

  it('listInstances groups containers and networks by instance with their status', async () => {
    const rt = new FakeRuntime();
    const inst = await createInstance(rt, lab, { image: 'x', instance: 'aaaa0008' });
    const kept = await createInstance(rt, lab, { image: 'x', instance: 'aaaa0009', keep: true });
    const list = await listInstances(rt, { alive: () => false });
    expect(list).toEqual([
      expect.objectContaining({ instance: 'aaaa0008', containers: 2, networks: 1, status: 'stale' }),
      expect.objectContaining({ instance: 'aaaa0009', containers: 2, networks: 1, status: 'kept', kept: true }),
    ]);
    expect((await listInstances(rt))[0]!.status).toBe('running');
    await inst.down();
    await kept.down();
  });
});
