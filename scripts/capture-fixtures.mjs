// Records test/fixtures/capture/<scenario>/: what tcplab-observe answers on each node of a real lab while a
// scenario runs (sockets, the kernel clock, the segments tcplab-capture recorded), for the unit tests of the
// segment parser, the timeline join and the ladder. Needs a Docker engine and a build (npm run build).
//   node scripts/capture-fixtures.mjs [direct|routed]...
// Each node's file holds every answer in order, each ending with "### end N 0" as the --serve protocol prints.
import { mkdirSync, writeFileSync } from 'node:fs';
import { DockerRuntime } from '../dist/runtime/docker.js';
import { ensureImage } from '../dist/engine/image.js';
import { createInstance } from '../dist/engine/instance.js';
import { loadLabFile } from '../dist/lab/load.js';

const runtime = new DockerRuntime();
const image = await ensureImage(runtime, () => {});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function record(name, labFile, scenario) {
  const lab = loadLabFile(labFile).lab;
  const inst = await createInstance(runtime, lab, { image });
  const answers = new Map(inst.plan.nodes.map((n) => [n.key, []]));
  const cursors = new Map(inst.plan.nodes.map((n) => [n.key, ['0', '0']]));
  let seq = 0;
  const look = async (iptables = false) => {
    seq++;
    await Promise.all(
      inst.plan.nodes.map(async (n) => {
        const argv = ['tcplab-observe', '--segments', ...cursors.get(n.key), ...(iptables ? ['--iptables'] : [])];
        const r = await inst.exec(n.key, argv);
        answers.get(n.key).push(`${r.stdout}### end ${seq} ${r.exitCode}\n`);
        // Advance like the engine does: to the last whole line of the last section read.
        const sections = [...r.stdout.matchAll(/^### segments (\d+) (\d+)\n([\s\S]*?)(?=^### |$(?![\s\S]))/gm)];
        for (const m of sections) {
          const content = m[3].endsWith('\n') ? m[3].slice(0, -1) : m[3];
          const parts = content.split('\n');
          const tail = parts.pop();
          const consumed = parts.reduce((k, l) => k + l.length + 1, 0);
          cursors.set(n.key, [m[1], String(Number(m[2]) + consumed)]);
          if (tail) break;
        }
      }),
    );
  };
  const poll = async (ms, every = 200) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      await look(false);
      await sleep(every);
    }
  };
  try {
    for (const n of inst.plan.nodes) {
      const r = await inst.exec(n.key, ['tcplab-capture', 'start']);
      if (r.exitCode !== 0) throw new Error(`capture on ${n.key}: ${r.stderr}`);
    }
    await look(true);
    await scenario({ inst, look, poll, run: (node, argv, env) => inst.exec(node, argv, env ? { env } : {}) });
    await look(true);
    const dir = new URL(`../test/fixtures/capture/${name}/`, import.meta.url);
    mkdirSync(dir, { recursive: true });
    for (const [node, list] of answers) writeFileSync(new URL(`${node}.txt`, dir), list.join(''));
    const addresses = Object.fromEntries(inst.plan.nodes.map((n) => [n.key, n.interfaces.map((i) => i.ip)]));
    writeFileSync(
      new URL('lab.json', dir),
      JSON.stringify({ topology: inst.plan.topology, addresses, vars: inst.plan.vars }, null, 2) + '\n',
    );
    console.log(`${name}: ${[...answers.values()].map((l) => l.length).join('+')} answers`);
  } finally {
    await inst.down();
  }
}

const scenarios = {
  // Lab 2's story: a SYN dropped in the client's OUTPUT, then a SYN|ACK dropped in the server's OUTPUT and
  // released; then data and a close by the client.
  direct: () =>
    record('direct', 'labs/02-incomplete-handshake.yaml', async ({ inst, look, poll, run }) => {
      const server = inst.plan.vars['server.ip'];
      await run('server', ['tcplab-run', 'start', 'l1', 'nc', '-l', '5555']);
      await run('client', ['iptables', '-I', 'OUTPUT', '-p', 'tcp', '--dport', '5555', '--tcp-flags', 'SYN', 'SYN', '-j', 'DROP']);
      await look(true);
      await run('client', ['tcplab-run', 'start', 'c1', 'nc', server, '5555']);
      await poll(2200);
      await look(true);
      await run('client', ['tcplab-run', 'stop', 'c1']);
      await run('client', ['iptables', '-F', 'OUTPUT']);
      await run('server', ['iptables', '-I', 'OUTPUT', '-p', 'tcp', '--sport', '5555', '--tcp-flags', 'SYN,ACK', 'SYN,ACK', '-j', 'DROP']);
      await look(true);
      await run('client', ['tcplab-run', 'start', 'c2', 'nc', server, '5555']);
      await poll(2200);
      await look(true);
      await run('server', ['iptables', '-F', 'OUTPUT']);
      await poll(3500);
      await run('client', ['sh', '-c', 'echo hello | tcplab-run write c2']).catch(() => {});
      await poll(600);
      await run('client', ['tcplab-run', 'stop', 'c2']);
      await poll(1200);
    }),
  // Lab 7's story, routed: the firewall drops the client's FINs in FORWARD, then lets them through.
  routed: () =>
    record('routed', 'labs/07-fin-wait-1.yaml', async ({ inst, look, poll, run }) => {
      const server = inst.plan.vars['server.ip'];
      const client = inst.plan.vars['client.ip'];
      await run('server', ['tcplab-run', 'start', 'server', 'nc', '-l', '5555']);
      await run('client', ['tcplab-run', 'start', 'client', 'nc', server, '5555'], { TCPLAB_STDIN: 'hello\n' });
      await poll(800);
      await run('firewall', ['iptables', '-A', 'FORWARD', '-s', client, '-p', 'tcp', '--tcp-flags', 'FIN', 'FIN', '-j', 'DROP']);
      await look(true);
      await run('client', ['tcplab-run', 'stop', 'client']);
      await poll(2500);
      await look(true);
      await run('firewall', ['iptables', '-D', 'FORWARD', '-s', client, '-p', 'tcp', '--tcp-flags', 'FIN', 'FIN', '-j', 'DROP']);
      await poll(2500);
    }),
};

const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(scenarios);
for (const w of wanted) await scenarios[w]();
