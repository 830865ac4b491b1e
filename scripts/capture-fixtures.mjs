// Records test/fixtures/capture/<scenario>/: every look answer of each node's agent in a real lab while a
// scenario runs (sockets, the kernel clock, the segments the agent recorded), as the frames came, for the unit
// tests of the segment decoder, the timeline join and the ladder. Needs a Docker engine and a build.
//   node scripts/capture-fixtures.mjs [direct|routed]...
// Each node's file holds one line per look: {"from": the segment cursor asked from, "frame": base64}.
import { mkdirSync, writeFileSync } from 'node:fs';
import { DockerRuntime } from '../dist/runtime/docker.js';
import { ensureImage } from '../dist/engine/image.js';
import { createInstance } from '../dist/engine/provision.js';
import { AgentClient } from '../dist/engine/agent-client.js';
import { encodeFrame } from '../dist/observe/wire.js';
import { loadLabFile } from '../dist/lab/load.js';

const runtime = new DockerRuntime();
const image = await ensureImage(runtime, () => {});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function record(name, labFile, scenario) {
  const lab = loadLabFile(labFile).lab;
  const inst = await createInstance(runtime, lab, { image });
  const lines = new Map(inst.plan.nodes.map((n) => [n.key, []]));
  const cursors = new Map(inst.plan.nodes.map((n) => [n.key, 1]));
  // A reader of its own, as lab ui is: every answer it gets is kept whole.
  const agents = new Map(
    inst.plan.nodes.map((n) => {
      let from = 1;
      const agent = new AgentClient(runtime, n.name, n.key, {
        onAnswer: (frame) => {
          if (frame.kind === 0x82) lines.get(n.key).push(JSON.stringify({ from, frame: encodeFrame(frame).toString('base64') }));
        },
      });
      return [n.key, { agent, setFrom: (f) => (from = f) }];
    }),
  );
  const look = async (iptables = false) => {
    await Promise.all(
      inst.plan.nodes.map(async (n) => {
        const { agent, setFrom } = agents.get(n.key);
        setFrom(cursors.get(n.key));
        const l = await agent.look({ iptables, segmentsFrom: cursors.get(n.key) });
        cursors.set(n.key, l.segments.next);
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
  const act = (a) => inst.runAction(a);
  try {
    await look(true);
    await scenario({ inst, look, poll, act });
    await look(true);
    const dir = new URL(`../test/fixtures/capture/${name}/`, import.meta.url);
    mkdirSync(dir, { recursive: true });
    for (const [node, list] of lines) writeFileSync(new URL(`${node}.frames`, dir), list.join('\n') + '\n');
    const addresses = Object.fromEntries(inst.plan.nodes.map((n) => [n.key, n.interfaces.map((i) => i.ip)]));
    writeFileSync(
      new URL('lab.json', dir),
      JSON.stringify({ topology: inst.plan.topology, addresses, vars: inst.plan.vars }, null, 2) + '\n',
    );
    console.log(`${name}: ${[...lines.values()].map((l) => l.length).join('+')} answers`);
  } finally {
    for (const { agent } of agents.values()) agent.close();
    await inst.down();
  }
}

const scenarios = {
  // Lab 2's story: a SYN dropped in the client's OUTPUT, then a SYN|ACK dropped in the server's OUTPUT and
  // released; then data and a close by the client.
  direct: () =>
    record('direct', 'labs/02-incomplete-handshake.yaml', async ({ inst, look, poll, act }) => {
      const server = inst.plan.vars['server.ip'];
      await act({ on: 'server', run: ['nc', '-l', '5555'], name: 'l1', background: true });
      await act({
        on: 'client',
        run: ['iptables', '-I', 'OUTPUT', '-p', 'tcp', '--dport', '5555', '--tcp-flags', 'SYN', 'SYN', '-j', 'DROP'],
      });
      await look(true);
      await act({ on: 'client', run: ['nc', server, '5555'], name: 'c1', background: true });
      await poll(2200);
      await look(true);
      await act({ on: 'client', stop: 'c1' });
      await act({ on: 'client', run: ['iptables', '-F', 'OUTPUT'] });
      await act({
        on: 'server',
        run: ['iptables', '-I', 'OUTPUT', '-p', 'tcp', '--sport', '5555', '--tcp-flags', 'SYN,ACK', 'SYN,ACK', '-j', 'DROP'],
      });
      await look(true);
      await act({ on: 'client', run: ['nc', server, '5555'], name: 'c2', background: true });
      await poll(2200);
      await look(true);
      await act({ on: 'server', run: ['iptables', '-F', 'OUTPUT'] });
      await poll(3500);
      await act({ on: 'client', write: 'c2', stdin: 'hello\n' });
      await poll(600);
      await act({ on: 'client', stop: 'c2' });
      await poll(1200);
    }),
  // Lab 7's story, routed: the firewall drops the client's FINs in FORWARD, then lets them through.
  routed: () =>
    record('routed', 'labs/07-fin-wait-1.yaml', async ({ inst, look, poll, act }) => {
      const server = inst.plan.vars['server.ip'];
      const client = inst.plan.vars['client.ip'];
      const rule = ['FORWARD', '-s', client, '-p', 'tcp', '--tcp-flags', 'FIN', 'FIN', '-j', 'DROP'];
      await act({ on: 'server', run: ['nc', '-l', '5555'], name: 'server', background: true });
      await act({ on: 'client', run: ['nc', server, '5555'], name: 'client', background: true, stdin: 'hello\n' });
      await poll(800);
      await act({ on: 'firewall', run: ['iptables', '-A', ...rule] });
      await look(true);
      await act({ on: 'client', stop: 'client' });
      await poll(2500);
      await look(true);
      await act({ on: 'firewall', run: ['iptables', '-D', ...rule] });
      await poll(2500);
    }),
};

const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(scenarios);
for (const w of wanted) await scenarios[w]();
