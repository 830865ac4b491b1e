// Whose lab a command acts on: every instance carries its OS user (io.tcplab.owner), and lab shell, check,
// status and stop, given no instance, pick only the current user's; another user's lab is used only when named
// or with --all. A shell whose lab went away says why.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeRuntime } from '../reliability/fake-runtime.js';
import { LABEL, planLab } from '../../src/plan/plan.js';
import { listInstances } from '../../src/engine/cleanup.js';
import { currentUser, ownerLabels } from '../../src/identity.js';
import { createInstance } from '../../src/engine/provision.js';
import { pickInstance, shellEndedBecause } from '../../src/cli/live.js';
import { stateFiles } from '../../src/walk/state-files.js';
import { isLabError } from '../../src/errors.js';
import type { Lab } from '../../src/lab/schema.js';
import { bareLab } from '../helpers/lab.js';

const lab: Lab = bareLab(2, 'incomplete-handshake');

/** An instance's containers, as another user's `lab start` would have made them. */
function addInstance(rt: FakeRuntime, instance: string, owner?: string): void {
  const plan = planLab({ lab, instance, image: 'img', subnets: ['198.18.9.0/24'], labels: owner ? { [LABEL.owner]: owner } : {} });
  for (const n of plan.nodes) void rt.createContainer({ name: n.name, labels: n.labels, network: { name: 'net', ip: '' } } as never);
}

async function message(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isLabError(e)) return `${e.message} | ${e.hint ?? ''}`;
    throw e;
  }
  throw new Error('no error');
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tcplab-owner-'));
  process.env.TCPLAB_STATE_DIR = dir;
});
afterEach(() => {
  delete process.env.TCPLAB_STATE_DIR;
  rmSync(dir, { recursive: true, force: true });
});

describe('owner labels', () => {
  it('every container and network of a new instance names the user who made it', async () => {
    const rt = new FakeRuntime();
    await createInstance(rt, lab, { image: 'img', instance: 'aaaa0001' });
    const labels = [...rt.containers.values()].map((c) => c.spec.labels).concat([...rt.networks.values()].map((n) => n.labels));
    expect(labels.length).toBe(3);
    for (const l of labels) expect(l[LABEL.owner]).toBe(currentUser());
    expect((await listInstances(rt))[0]).toMatchObject({ instance: 'aaaa0001', user: currentUser() });
  });
});

describe('which instance a command means', () => {
  it("picks the user's own lab, not another user's that runs beside it", async () => {
    const rt = new FakeRuntime();
    addInstance(rt, 'other001', 'someone-else');
    addInstance(rt, 'mine0001', currentUser());
    expect((await pickInstance(rt)).instance).toBe('mine0001');
  });

  it("does not enter another user's lab when the user has none, and says whose are running", async () => {
    const rt = new FakeRuntime();
    addInstance(rt, 'other001', 'someone-else');
    expect(await message(pickInstance(rt))).toMatch(
      /^no lab of yours \(.+\) is running \| other users' labs are running here: other001 \(incomplete-handshake, user someone-else\)/,
    );
  });

  it('takes any instance that is named, and any with --all', async () => {
    const rt = new FakeRuntime();
    addInstance(rt, 'other001', 'someone-else');
    expect((await pickInstance(rt, 'other001')).instance).toBe('other001');
    expect((await pickInstance(rt, undefined, { all: true })).instance).toBe('other001');
  });

  it("treats an instance without an owner label as nobody's", async () => {
    const rt = new FakeRuntime();
    addInstance(rt, 'old00001');
    expect(await message(pickInstance(rt))).toMatch(/no lab of yours .*old00001 \(incomplete-handshake, no owner\)/);
  });
});

describe('a shell whose lab went away', () => {
  const li = { instance: 'abcd1234', lab: 'incomplete-handshake' };

  it('says how the lab ended, from what its lab start recorded', () => {
    stateFiles().recordEnded({ instance: 'abcd1234', lab: { id: 2, slug: 'incomplete-handshake' }, how: 'finished' });
    expect(shellEndedBecause(li, stateFiles().loadEnded('abcd1234'))).toBe(
      'This shell ended because Lab 2 (incomplete-handshake) finished in its `lab start`, which removed its machines (instance abcd1234).',
    );
    stateFiles().recordEnded({ instance: 'abcd1234', lab: { id: 2, slug: 'incomplete-handshake' }, how: 'interrupted' });
    expect(shellEndedBecause(li, stateFiles().loadEnded('abcd1234'))).toMatch(/was interrupted \(Ctrl-C, or its terminal closed\)/);
  });

  it('says the machines are gone when nothing was recorded', () => {
    expect(shellEndedBecause(li, stateFiles().loadEnded('abcd1234'))).toMatch(
      /The lab incomplete-handshake is gone: its machines were removed/,
    );
  });
});

describe('the run a lab belongs to (io.tcplab.run)', () => {
  it('is TCPLAB_RUN when the environment sets it, and absent when it does not', () => {
    const saved = process.env.TCPLAB_RUN;
    try {
      process.env.TCPLAB_RUN = 'suite-1';
      expect(ownerLabels('ann')[LABEL.run]).toBe('suite-1');
      delete process.env.TCPLAB_RUN;
      expect(ownerLabels('ann')).not.toHaveProperty(LABEL.run);
    } finally {
      if (saved === undefined) delete process.env.TCPLAB_RUN;
      else process.env.TCPLAB_RUN = saved;
    }
  });
});
