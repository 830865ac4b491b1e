// The persistent observer in a real lab: after the first look, observing costs no docker exec at all, sees what
// a one-shot `tcplab-observe` exec sees, and keeps working after its session is closed or killed.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import type { Instance } from '../../src/engine/instance.js';
import { createInstance } from '../../src/engine/provision.js';
import { parseObservation } from '../../src/observe/observation.js';
import type { NodeName } from '../../src/lab/schema.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { bareLab } from '../helpers/lab.js';

const lab = bareLab(991, 'sampler-test');
const need = (node: NodeName, extra: { iptables?: boolean; commands?: string[] } = {}) =>
  new Map([[node, { iptables: !!extra.iptables, commands: new Set(extra.commands ?? []) }]]);

describeDocker('persistent observer (tcplab-observe --serve)', (env) => {
  let inst: Instance;
  let execs = 0;
  beforeAll(async () => {
    // Count one-shot execs by wrapping the runtime.
    const counting = Object.create(env.runtime) as Runtime;
    counting.exec = (...a) => (execs++, env.runtime.exec(...a));
    counting.openExec = (...a) => env.runtime.openExec!(...a);
    inst = await createInstance(counting, lab, { image: env.image, instance: env.track(`smp${Date.now().toString(36).slice(-5)}`) });
  });
  afterAll(async () => {
    await inst?.down();
  });

  it('observes without a docker exec per look, and sees what a one-shot exec sees', async () => {
    await inst.runAction({ on: 'server', run: ['nc', '-l', '6001'], name: 'srv', background: true });
    await inst.observe(need('server')); // may open the session
    const before = execs;
    let snap;
    for (let i = 0; i < 20; i++) snap = (await inst.observe(need('server', { iptables: true, commands: ['srv'] }))).get('server')!;
    expect(execs - before).toBe(0);
    expect(snap!.sockets.some((s) => s.state === 'LISTEN' && s.local.port === 6001)).toBe(true);
    expect(snap!.commands?.srv?.running).toBe(true);
    expect(snap!.counters).toBeDefined();
    const oneShot = await inst.exec('server', ['tcplab-observe', '--iptables']);
    const ref = parseObservation(oneShot.stdout);
    expect(snap!.sockets.map((s) => `${s.state} ${s.local.port}`).sort()).toEqual(
      ref.sockets.map((s) => `${s.state} ${s.local.port}`).sort(),
    );
  });

  it('keeps observing when its session is killed inside the container: the sockets there, then through a new session', async () => {
    await inst.runAction({ on: 'client', run: ['nc', '-l', '6002'], name: 'cl', background: true });
    const [listening] = await inst.waitFor('s', [{ on: 'client', socket: { state: 'LISTEN', local: '*:6002' }, within: '5s' }]);
    expect(listening!.passed, listening!.seen.join('\n')).toBe(true);
    const killed = await inst.exec('client', ['pkill', '-f', 'tcplab-observe --serve']);
    expect(killed.exitCode).toBe(0);
    // The look right after the kill still sees what is there (through a one-shot exec if the session is gone).
    const again = (await inst.observe(need('client'))).get('client')!;
    expect(again.sockets.filter((s) => s.state === 'LISTEN').map((s) => s.local.port)).toContain(6002);
    // The session is opened again: a new socket shows, and looks cost no docker exec any more.
    await inst.runAction({ on: 'client', run: ['nc', '-l', '6003'], name: 'cl2', background: true });
    const [second] = await inst.waitFor('s', [{ on: 'client', socket: { state: 'LISTEN', local: '*:6003' }, within: '5s' }]);
    expect(second!.passed, second!.seen.join('\n')).toBe(true);
    const before = execs;
    let later;
    for (let i = 0; i < 5; i++) later = (await inst.observe(need('client'))).get('client')!;
    expect(execs - before).toBe(0);
    expect(
      later!.sockets
        .filter((s) => s.state === 'LISTEN')
        .map((s) => s.local.port)
        .sort(),
    ).toEqual(expect.arrayContaining([6002, 6003]));
  });
});
