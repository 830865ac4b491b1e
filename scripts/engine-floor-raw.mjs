// The engine's own cost of a two-machine lab, with no tcplab at all: raw Docker API calls over the socket
// (no CLI, no dockerode), host-wide CPU-seconds from /proc/stat minus this process's own. BENCHMARKS.md
// ("Again, 4 Dec 22:10") compares it with `npm run bench -- --only cpu`'s floor, and runtimes with each other.
//
//   node scripts/engine-floor-raw.mjs [MODE] [RUNS]     MODE: exec (default), hard, soft, nonet, netonly, restart
//   RT=crun node scripts/engine-floor-raw.mjs exec 4     the same with another OCI runtime the engine has registered
//
// exec: an internal network, two containers of tcplab's image with its hardening, each started and entered
// once (`true`), all removed; hard: without the exec; soft: without the hardening; nonet: no network;
// netonly: the network alone; restart: exec's network and machines made once, and each run kills, starts and
// enters each machine again (what reusing machines would cost instead of making them). Needs the image (`lab grade 2` builds it) and the socket at /var/run/docker.sock.
// Everything it makes carries io.tcplab.managed=true and is removed before the next run.
import http from 'node:http';
import { readFileSync } from 'node:fs';

const IMAGE = process.env.IMAGE ?? 'tcplab/node:current';
const LABELS = { 'io.tcplab.managed': 'true', 'io.tcplab.owner': 'engine-floor-raw' };
const mode = process.argv[2] ?? 'exec';
const runs = Number(process.argv[3] ?? 5);

function api(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: '/var/run/docker.sock', method, path, headers: { 'content-type': 'application/json' } },
      (res) => {
        let data = '';
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ code: res.statusCode, body: data }));
      },
    );
    req.on('error', reject);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}
async function must(method, path, body) {
  const r = await api(method, path, body);
  if (r.code >= 300) throw new Error(`${method} ${path}: ${r.code} ${r.body}`);
  return r;
}
const busy = () => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100; // user nice system irq softirq steal, in seconds (USER_HZ 100)
};
const own = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const withNet = mode !== 'nonet';
const netName = (i) => (withNet ? `tcplab-floorraw-${process.pid}-${i}` : undefined);

/** An internal network (unless nonet) and two machines on it (unless netonly), started; their names into `names`. */
async function make(i, names) {
  const net = netName(i);
  const third = 200 + (i % 50);
  if (withNet)
    await must('POST', '/networks/create', {
      Name: net,
      Driver: 'bridge',
      Internal: true,
      Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true' },
      IPAM: { Driver: 'default', Config: [{ Subnet: `198.19.${third}.0/24`, Gateway: `198.19.${third}.1` }] },
      Labels: LABELS,
    });
  if (mode === 'netonly') return;
  for (const n of ['a', 'b']) {
    const name = `${net}-${n}`;
    const hardening =
      mode === 'soft'
        ? {}
        : {
            CapDrop: ['ALL'],
            CapAdd: ['NET_ADMIN', 'NET_RAW', 'SETUID', 'SETGID', 'SETPCAP'],
            SecurityOpt: ['no-new-privileges'],
            ReadonlyRootfs: true,
            Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=16m', '/run': 'rw,nosuid,nodev,size=4m' },
            Memory: 64 << 20,
            MemorySwap: 64 << 20,
            PidsLimit: 128,
            Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1024 }],
          };
    await must('POST', `/containers/create?name=${name}`, {
      Image: IMAGE,
      Labels: LABELS,
      HostConfig: { ...hardening, ...(process.env.RT ? { Runtime: process.env.RT } : {}), NetworkMode: withNet ? net : 'none' },
      ...(withNet
        ? { NetworkingConfig: { EndpointsConfig: { [net]: { IPAMConfig: { IPv4Address: `198.19.${third}.${10 + names.length}` } } } } }
        : {}),
    });
    names.push(name);
    await must('POST', `/containers/${name}/start`);
  }
}

async function enter(names) {
  for (const name of names) {
    const ex = JSON.parse((await must('POST', `/containers/${name}/exec`, { Cmd: ['true'], AttachStdout: true })).body).Id;
    await must('POST', `/exec/${ex}/start`, { Detach: false });
    const st = JSON.parse((await must('GET', `/exec/${ex}/json`)).body);
    if (st.ExitCode !== 0) throw new Error(`exec in ${name} exited ${st.ExitCode}`);
  }
}

async function remove(net, names) {
  for (const name of names) await api('DELETE', `/containers/${name}?force=true&v=true`);
  if (net) await api('DELETE', `/networks/${net}`);
}

async function once(i) {
  const names = [];
  try {
    await make(i, names);
    if (mode === 'exec') await enter(names);
  } finally {
    await remove(netName(i), names);
  }
}

/** restart: the machines of `make`, kept; each run kills and starts them again and enters each once. */
async function restartEach(names) {
  for (const name of names) {
    await must('POST', `/containers/${name}/kill`);
    await must('POST', `/containers/${name}/wait?condition=not-running`);
    await must('POST', `/containers/${name}/start`);
  }
  await enter(names);
}

const kept = [];
if (mode === 'restart') await make(98, kept);
const run = mode === 'restart' ? () => restartEach(kept) : once;
let cpu, t0;
try {
  await run(99); // warm: the image's layers in the page cache
  t0 = performance.now();
  const b0 = busy();
  const o0 = own();
  for (let i = 0; i < runs; i++) await run(i);
  cpu = (busy() - b0 - (own() - o0)) / runs;
} finally {
  if (mode === 'restart') await remove(netName(98), kept);
}
console.log(
  `${mode}${process.env.RT ? ` (runtime ${process.env.RT})` : ''}: ${cpu.toFixed(2)} CPU-s host-wide per run, ${((performance.now() - t0) / runs / 1000).toFixed(2)} s of wall time (${runs} runs)`,
);
