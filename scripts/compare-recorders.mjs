// What the segment recorder in every lab node costs, for two (or more) builds of the lab image side by side: for
// example this checkout's images/node against an older one taken out of git.
//   git archive main images/node | tar -x -C /tmp/old           # the image folder as it was
//   node scripts/compare-recorders.mjs [--rounds 4] [--held 6] [--trials 30] [--json FILE] new=images/node old=/tmp/old/images/node
// The arms: one per NAME=DIR with capture on, and "off" (the first image, TCPLAB_CAPTURE=0). Every comparison
// alternates the arms (in a random order each round), so that a shared machine's drifting load hits all alike.
// Memory: each round holds --held direct instances of each arm at once and reads the recorder process in each
// node (RSS, PSS and private memory from /proc/PID/smaps_rollup, read inside the node) and the containers' cgroup
// memory per instance (usage less inactive file pages: what `docker stats` shows).
// Latency: one direct instance per arm, held together; each trial times a snapshot of every node (median of 10
// looks) and one detection (a socket enters LISTEN in the server at a random moment -> waitFor settles, as the
// benchmark's detect section does) on each arm in turn. Needs a Docker engine and a build (npm run build).
// Everything it makes carries tcplab's labels and is removed at the end, also on Ctrl-C; an image that had to be
// built stays, like the one `lab` builds on first use (`lab clean --images` removes it).
import { parseArgs } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DockerRuntime } from '../dist/runtime/docker.js';
import { ensureImage } from '../dist/engine/image.js';
import { createInstance, newInstanceId } from '../dist/engine/provision.js';
import { removeInstance } from '../dist/engine/teardown.js';
import { containerMemory } from '../dist/bench/memory.js';
import { LABEL } from '../dist/plan/plan.js';
import { LISTEN_LATER } from '../dist/bench/probes.js';

const { values, positionals } = parseArgs({
  options: {
    rounds: { type: 'string', default: '4' },
    held: { type: 'string', default: '6' },
    trials: { type: 'string', default: '30' },
    json: { type: 'string' },
  },
  allowPositionals: true,
});
const arms = positionals.map((p) => {
  const [name, dir] = p.split('=');
  if (!name || !dir) throw new Error(`expected NAME=DIR, got ${p}`);
  return { name, dir: resolve(dir), capture: true };
});
if (!arms.length)
  throw new Error('usage: node scripts/compare-recorders.mjs [--rounds N] [--held N] [--trials N] [--json FILE] NAME=DIR...');
arms.push({ name: 'off', dir: arms[0].dir, capture: false });
const rounds = Number(values.rounds);
const held = Number(values.held);
const trials = Number(values.trials);

const runtime = new DockerRuntime();
for (const a of arms) a.image = await ensureImage(runtime, () => {}, { dir: a.dir });
const lab = {
  id: 989,
  slug: 'compare-recorders',
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
const load = async () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];

/** The recorder's memory in one node, in bytes: Rss, Pss and Private (clean + dirty) of /proc/PID/smaps_rollup. */
async function recorder(inst, node) {
  const r = await inst.exec(node, ['sh', '-c', 'cat /proc/$(cat /tmp/tcplab-capture/pid)/smaps_rollup']);
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(r.stdout)?.[1] ?? NaN) * 1024;
  if (r.exitCode !== 0) throw new Error(`no recorder on ${node}: ${r.stderr}`);
  return { rss: kb('Rss'), pss: kb('Pss'), private: kb('Private_Clean') + kb('Private_Dirty') };
}

/** TCPLAB_CAPTURE on or off (read when a node is set up); returns what puts it back. */
function capture(on) {
  const before = process.env.TCPLAB_CAPTURE;
  process.env.TCPLAB_CAPTURE = on ? '1' : '0';
  return () => {
    if (before === undefined) delete process.env.TCPLAB_CAPTURE;
    else process.env.TCPLAB_CAPTURE = before;
  };
}

const f = (b) => (b === undefined ? '-' : `${(b / 1e6).toFixed(2)} MB`);
const samples = Object.fromEntries(arms.map((a) => [a.name, []]));
for (let round = 1; round <= rounds; round++) {
  for (const arm of [...arms].sort(() => Math.random() - 0.5)) {
    const restore = capture(arm.capture);
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
      console.log(
        `round ${round} ${arm.name.padEnd(6)} load ${sample.load}: cgroups per instance ${f(cgroups)}; recorder per node RSS ${f(sample.rss)}, PSS ${f(sample.pss)}, private ${f(sample.private)}`,
      );
    } finally {
      await Promise.all(insts.map((x) => x.down()));
      await cleanup();
      restore();
    }
  }
}

const med = (xs) => {
  const s = xs.filter((x) => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : undefined;
};

// Latency, the arms' instances held together and used in turn.
const latency = Object.fromEntries(arms.map((a) => [a.name, { snapshot: [], detect: [] }]));
if (trials > 0) {
  const insts = new Map();
  try {
    for (const arm of arms) {
      const restore = capture(arm.capture);
      const id = newInstanceId();
      mine.add(id);
      try {
        insts.set(arm.name, await createInstance(runtime, lab, { image: arm.image, instance: id }));
      } finally {
        restore();
      }
    }
    for (const x of insts.values()) for (let i = 0; i < 3; i++) await x.observeAll();
    for (let t = 0; t < trials; t++) {
      for (const arm of [...arms].sort(() => Math.random() - 0.5)) {
        const inst = insts.get(arm.name);
        const looks = [];
        for (let i = 0; i < 10; i++) {
          const t0 = performance.now();
          await inst.observeAll();
          looks.push(performance.now() - t0);
        }
        latency[arm.name].snapshot.push(med(looks));
        const port = 20000 + t;
        const name = `d${t}`;
        await inst.runAction({ on: 'server', run: ['python3', '-c', LISTEN_LATER, String(port)], name, background: true });
        const checks = await inst.waitFor('detect', [{ on: 'server', socket: { state: 'LISTEN', local: `*:${port}` }, within: '5s' }]);
        const seenAt = Date.now();
        if (!checks.every((c) => c.passed)) throw new Error(`${arm.name}: the grader did not see LISTEN on port ${port}`);
        const st = await inst.exec('server', ['tcplab-run', 'status', name]);
        latency[arm.name].detect.push(seenAt - Number(st.stdout.split('\n')[1]) * 1000);
        await inst.runAction({ on: 'server', stop: name, signal: 'TERM' });
      }
      if ((t + 1) % 10 === 0) console.log(`latency: ${t + 1} of ${trials} trials, load ${await load()}`);
    }
  } finally {
    await Promise.all([...insts.values()].map((x) => x.down()));
    await cleanup();
  }
}

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : undefined;
};
const msf = (xs) => (xs.length ? `median ${med(xs).toFixed(0)} ms (p90 ${q(xs, 0.9).toFixed(0)}, n=${xs.length})` : '-');
console.log(`\nmemory: medians of ${rounds} rounds, ${held} direct instances held per arm:`);
for (const a of arms) {
  const xs = samples[a.name];
  const m = (k) => f(med(xs.map((x) => x[k])));
  console.log(
    `  ${a.name.padEnd(6)} (${a.image}) cgroups per instance ${m('cgroups')}; recorder per node RSS ${m('rss')}, PSS ${m('pss')}, private ${m('private')}`,
  );
}
if (trials > 0) {
  console.log(`latency, ${trials} alternating trials:`);
  for (const a of arms)
    console.log(`  ${a.name.padEnd(6)} snapshot of every node ${msf(latency[a.name].snapshot)}; detection ${msf(latency[a.name].detect)}`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ arms, samples, latency }, null, 2));
