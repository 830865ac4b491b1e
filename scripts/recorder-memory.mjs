// What the segment recorder in every lab node costs in memory, for two (or more) builds of the lab image side by
// side: for example this checkout's images/node against an older one taken out of git.
//   git archive main images/node | tar -x -C /tmp/old           # the image folder as it was
//   node scripts/recorder-memory.mjs [--rounds 4] [--held 6] [--json FILE] new=images/node old=/tmp/old/images/node
// Each round holds --held direct instances of each arm at once (one arm per NAME=DIR with capture on, and one
// with the first image and capture off), in a random order per round, so that a shared machine's drifting
// load hits every arm alike. Per arm it reports the recorder process in each node (RSS, PSS and private memory
// from /proc/PID/smaps_rollup, read inside the node) and the containers' cgroup memory per instance (usage less
// inactive file pages: what `docker stats` shows). Needs a Docker engine and a build (npm run build).
// Everything it makes carries tcplab's labels and is removed at the end, also on Ctrl-C; an image that had to be
// built stays, like the one `lab` builds on first use (`lab clean --images` removes it).
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DockerRuntime } from '../dist/runtime/docker.js';
import { ensureImage } from '../dist/engine/image.js';
import { createInstance, newInstanceId } from '../dist/engine/provision.js';
import { removeInstance } from '../dist/engine/teardown.js';
import { containerMemory } from '../dist/bench/memory.js';
import { LABEL } from '../dist/plan/plan.js';

const { values, positionals } = parseArgs({
  options: { rounds: { type: 'string', default: '4' }, held: { type: 'string', default: '6' }, json: { type: 'string' } },
  allowPositionals: true,
});
const arms = positionals.map((p) => {
  const [name, dir] = p.split('=');
  if (!name || !dir) throw new Error(`expected NAME=DIR, got ${p}`);
  return { name, dir: resolve(dir), capture: true };
});
if (!arms.length) throw new Error('usage: node scripts/recorder-memory.mjs [--rounds N] [--held N] [--json FILE] NAME=DIR...');
arms.push({ name: 'off', dir: arms[0].dir, capture: false });
const rounds = Number(values.rounds);
const held = Number(values.held);

const runtime = new DockerRuntime();
for (const a of arms) a.image = await ensureImage(runtime, () => {}, { dir: a.dir });
const lab = {
  id: 989,
  slug: 'recorder-memory',
  title: 'm',
  summary: '',
  intro: '',
  topology: 'direct',
  steps: [{ id: 's', title: 's', explain: '' }],
};
const mine = new Set();
const cleanup = () =>
  Promise.all(
    [...mine].map((id) =>
      removeInstance(runtime, id).then(
        () => mine.delete(id),
        () => {},
      ),
    ),
  );
process.on('SIGINT', () => void cleanup().finally(() => process.exit(130)));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const load = async () => (await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ')[0];

/** The recorder's memory in one node, in bytes: Rss, Pss and Private (clean + dirty) of /proc/PID/smaps_rollup. */
async function recorder(inst, node) {
  const r = await inst.exec(node, ['sh', '-c', 'cat /proc/$(cat /tmp/tcplab-capture/pid)/smaps_rollup']);
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(r.stdout)?.[1] ?? NaN) * 1024;
  if (r.exitCode !== 0) throw new Error(`no recorder on ${node}: ${r.stderr}`);
  return { rss: kb('Rss'), pss: kb('Pss'), private: kb('Private_Clean') + kb('Private_Dirty') };
}

const samples = Object.fromEntries(arms.map((a) => [a.name, []]));
for (let round = 1; round <= rounds; round++) {
  for (const arm of [...arms].sort(() => Math.random() - 0.5)) {
    const before = process.env.TCPLAB_CAPTURE;
    process.env.TCPLAB_CAPTURE = arm.capture ? '1' : '0';
    const ids = Array.from({ length: held }, () => newInstanceId());
    ids.forEach((id) => mine.add(id));
    const insts = [];
    try {
      for (let i = 0; i < held; i += 2)
        insts.push(
          ...(await Promise.all(ids.slice(i, i + 2).map((id) => createInstance(runtime, lab, { image: arm.image, instance: id })))),
        );
      // Let every node settle (the observer's first look, the recorder's first status) before reading.
      for (const x of insts) await x.observeAll();
      await sleep(4000);
      const cs = (await Promise.all(ids.map((id) => runtime.listContainers({ [LABEL.managed]: 'true', [LABEL.instance]: id })))).flat();
      const cgroups = cs.reduce((s, c) => s + (containerMemory(c.id) ?? NaN), 0) / held;
      const rec = arm.capture ? await Promise.all(insts.flatMap((x) => ['client', 'server'].map((n) => recorder(x, n)))) : [];
      const avg = (k) => (rec.length ? rec.reduce((s, x) => s + x[k], 0) / rec.length : undefined);
      const sample = { round, load: await load(), cgroups, rss: avg('rss'), pss: avg('pss'), private: avg('private') };
      samples[arm.name].push(sample);
      const f = (b) => (b === undefined ? '-' : `${(b / 1e6).toFixed(2)} MB`);
      console.log(
        `round ${round} ${arm.name.padEnd(6)} load ${sample.load}: cgroups per instance ${f(cgroups)}; recorder per node RSS ${f(sample.rss)}, PSS ${f(sample.pss)}, private ${f(sample.private)}`,
      );
    } finally {
      await Promise.all(insts.map((x) => x.down()));
      await cleanup();
      if (before === undefined) delete process.env.TCPLAB_CAPTURE;
      else process.env.TCPLAB_CAPTURE = before;
    }
  }
}

const med = (xs) => {
  const s = xs.filter((x) => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : undefined;
};
console.log(`\nmedians of ${rounds} rounds, ${held} direct instances held per arm:`);
for (const a of arms) {
  const xs = samples[a.name];
  const f = (k) => (med(xs.map((x) => x[k])) === undefined ? '-' : `${(med(xs.map((x) => x[k])) / 1e6).toFixed(2)} MB`);
  console.log(
    `  ${a.name.padEnd(6)} (${a.image}) cgroups per instance ${f('cgroups')}; recorder per node RSS ${f('rss')}, PSS ${f('pss')}, private ${f('private')}`,
  );
}
if (values.json) writeFileSync(values.json, JSON.stringify({ arms, samples }, null, 2));
