// The segment recorder every lab node runs (images/node/tcplab-capture.c), on real nodes: its commands, its
// files and line format as src/observe/segments.ts reads them, loopback left out, the kernel's clock, the
// kernel's drops, rotation, and a clear error where it cannot open its socket.
import { GenericContainer, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import type { Instance } from '../../src/engine/instance.js';
import { createInstance } from '../../src/engine/provision.js';
import { parseSegmentLine, type Segment } from '../../src/observe/segments.js';
import type { NodeName } from '../../src/lab/schema.js';
import { bareLab, until } from '../helpers/lab.js';

const lab = bareLab(993, 'capture-recorder-test');

// The recorder's constants (tcplab-capture.c).
const FILE_BYTES = 512 * 1024;
const KEEP_FILES = 4;
const LINE = /^\d+\.\d{9} [^\s/]+ \d+ (?:in|out) (?:[0-9a-f]{2})+ \d+$/;

describeDocker('tcplab-capture in a lab node', (env) => {
  let inst: Instance;
  // Up to 16 MiB of output kept whole: the rotation test reads every capture file (4 x 512 KB).
  const sh = async (node: NodeName, script: string) => {
    const r = await inst.exec(node, ['sh', '-c', script], { timeoutMs: 120_000, maxOutputBytes: 16 << 20 });
    expect(r.cutBytes?.stdout ?? 0, script).toBe(0);
    expect(r.exitCode, `${script}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const status = async (node: NodeName) =>
    Object.fromEntries(
      (await sh(node, 'tcplab-capture status'))
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .map(([k, v]) => [k, Number(v)]),
    ) as Record<'pid' | 'segments' | 'kernel_drops' | 'gen' | 'running', number>;
  /** Every line of the node's capture files, oldest file first. */
  // Whole lines only: the newest file may be read while a line is being written (a write to tmpfs is not atomic
  // for a reader), and a reader leaves such a tail for its next read, as src/observe's tail reader does.
  const lines = async (node: NodeName) => {
    const out = await sh(node, 'cd /tmp/tcplab-capture && for f in $(ls seg.* | sort -t. -k2 -n); do cat "$f"; done');
    const all = out.split('\n');
    all.pop(); // after the last newline: empty, or a line still being written
    return all.filter(Boolean);
  };
  const segments = async (node: NodeName, port: number): Promise<Segment[]> =>
    (await lines(node)).map((l) => parseSegmentLine(node, l)!).filter((s) => s.src.port === port || s.dst.port === port);

  beforeAll(async () => {
    inst = await createInstance(env.runtime, lab, { image: env.image, instance: env.track(`rec${Date.now().toString(36).slice(-5)}`) });
  });
  afterAll(async () => {
    await inst?.down();
  });

  it('start (run by the node setup) returns the running recorder: a second start starts no other', async () => {
    const pid = Number(await sh('server', 'cat /tmp/tcplab-capture/pid'));
    expect(pid).toBeGreaterThan(0);
    expect((await sh('server', 'tcplab-capture start')).trim()).toBe(String(pid));
    expect((await sh('server', 'tcplab-capture start')).trim()).toBe(String(pid));
    // One recorder process in the node, and it is the one the pid file names.
    expect((await sh('server', 'pgrep -x tcplab-capture')).trim()).toBe(String(pid));
    const st = await status('server');
    expect(st).toMatchObject({ pid, running: 1, gen: 1 });
  });

  it('writes one line per segment: headers only, the whole length, the interface, on the kernel clock; not loopback', async () => {
    const server = inst.vars['server.ip']!;
    const ifindex = Number(await sh('server', 'cat /sys/class/net/eth0/ifindex'));
    await inst.runAction({ on: 'server', run: ['tcplab-sock', 'sink', '5611', '5612'], name: 'sink', background: true });
    await until('the sink to listen', async () => ((await sh('server', 'ss -ltnH')).includes(':5612') ? true : undefined));
    // The same kind of connection over loopback, inside the server: never recorded.
    await sh('server', 'tcplab-sock connect 127.0.0.1 5612 --send loopback');
    const text = 'x'.repeat(2000);
    const before = Number(await sh('client', 'bash -c "echo \\$EPOCHREALTIME"')) * 1000;
    await sh('client', `tcplab-sock connect ${server} 5611 --send ${text}`);
    const after = Number(await sh('client', 'bash -c "echo \\$EPOCHREALTIME"')) * 1000;
    // The connection closes after connect returns (the sink answers the FIN): wait for the server's FIN to be seen.
    const segs = await until('the server to record the close', async () => {
      const s = await segments('server', 5611);
      return s.some((x) => x.dir === 'out' && x.flags.includes('FIN')) ? s : undefined;
    });
    for (const l of await lines('server')) expect(l).toMatch(LINE);
    expect((await lines('server')).filter((l) => l.split(' ')[1] === 'lo')).toEqual([]);
    expect(await segments('server', 5612)).toEqual([]);
    const syn = segs.find((s) => s.flags.join() === 'SYN')!;
    expect(syn).toMatchObject({ dir: 'in', iface: 'eth0', ifindex });
    expect(syn.at).toBeGreaterThanOrEqual(before);
    expect(syn.at).toBeLessThanOrEqual(after);
    // Headers only: the IP and TCP headers' bytes, and ORIGLEN is the packet's whole length (headers + data).
    const data = segs.filter((s) => s.dir === 'in' && s.len > 0);
    // tcplab-sock connect sends TEXT and a newline.
    expect(data.reduce((n, s) => n + s.len, 0)).toBe(text.length + 1);
    for (const s of [...data, syn]) {
      // IPv4: IHL is the low nibble of byte 0, TCP's data offset the high nibble of its byte 12 (in 32-bit words).
      const ihl = parseInt(s.hex[1]!, 16) * 4;
      const doff = parseInt(s.hex[(ihl + 12) * 2]!, 16) * 4;
      expect(s.hex.length / 2).toBe(ihl + doff);
      expect(s.origLen).toBe(ihl + doff + s.len);
    }
    // Both directions, each on the sender's own clock order.
    expect(segs.some((s) => s.dir === 'out' && s.flags.includes('SYN') && s.flags.includes('ACK'))).toBe(true);
    // The status counts every line written (it is at most a second behind).
    await until('the status to count every line', async () => {
      const [st, n] = [await status('server'), (await lines('server')).length];
      return st.segments === n ? true : undefined;
    });
  });

  it('counts what the kernel dropped while the recorder could not read (PACKET_STATISTICS)', async () => {
    const server = inst.vars['server.ip']!;
    const { pid } = await status('server');
    // A stopped recorder reads nothing: its socket's receive buffer (a few hundred KB) fills and the kernel drops
    // the rest.
    await sh('server', `kill -STOP ${pid}`);
    try {
      await sh('client', `tcplab-sock burst ${server} 5611 --count 1500`);
    } finally {
      await sh('server', `kill -CONT ${pid}`);
    }
    const st = await until('the kernel drops in the status', async () => {
      const s = await status('server');
      return s.kernel_drops > 0 ? s : undefined;
    });
    expect(st.running).toBe(1);
    expect(st.pid).toBe(pid);
  });

  it(`rotates: at most ${KEEP_FILES} files of at most ${FILE_BYTES} bytes, whole lines, the newest named in the status`, async () => {
    const server = inst.vars['server.ip']!;
    // Each short connection is about nine segments on each side, ~150 bytes a line: keep going until the
    // client's recorder is on its sixth file (so seg.1 and seg.2 were removed).
    await until(
      'the sixth capture file',
      async () => {
        if ((await status('client')).gen >= 6) return true;
        await sh('client', `tcplab-sock burst ${server} 5611 --count 1000`);
        return undefined;
      },
      300_000,
    );
    const st = await until('the status to name the newest file', async () => {
      const s = await status('client');
      const newest = Math.max(...(await sh('client', 'ls /tmp/tcplab-capture')).match(/seg\.\d+/g)!.map((f) => Number(f.slice(4))));
      return s.gen === newest ? s : undefined;
    });
    // Name, size, and the last byte in hex (0a: a newline).
    const listing = (
      await sh(
        'client',
        'cd /tmp/tcplab-capture && for f in seg.*; do printf "%s %s %s\\n" "$f" $(wc -c < "$f") $(tail -c 1 "$f" | od -An -tx1); done',
      )
    )
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/));
    const gens = listing.map(([f]) => Number(f!.slice(4))).sort((a, b) => a - b);
    expect(gens).toEqual(Array.from({ length: KEEP_FILES }, (_, i) => st.gen - KEEP_FILES + 1 + i));
    for (const [f, size, last] of listing) {
      expect(Number(size), f).toBeLessThanOrEqual(FILE_BYTES);
      // Every file ends with a whole line (a reader never sees half of one, except while it is being written).
      if (Number(f!.slice(4)) < st.gen) {
        expect(last, f).toBe('0a');
        // A file is only left when the next line would not fit in it: it is nearly full.
        expect(Number(size), f).toBeGreaterThan(FILE_BYTES - 512);
      }
    }
    const all = await lines('client');
    all.forEach((l, i) => expect(l, `line ${i + 1} of ${all.length}: ${all.slice(Math.max(0, i - 1), i + 2).join(' | ')}`).toMatch(LINE));
  }, 360_000);
});

describeDocker('tcplab-capture where it cannot open a packet socket', (env) => {
  let c: StartedTestContainer | undefined;
  beforeAll(async () => {
    // The image, without NET_RAW (and without any network): the recorder must say why it did not start.
    c = await new GenericContainer(env.image)
      .withNetworkMode('none')
      .withDroppedCapabilities('NET_RAW')
      .withLabels({ 'io.tcplab.test': 'capture-recorder' })
      .withCommand(['sleep', 'infinity'])
      .start();
  }, 120_000);
  afterAll(async () => {
    await c?.stop({ remove: true, removeVolumes: true });
  });

  it('status before any start: "not started", exit 1; an unknown command: usage, exit 2', async () => {
    const st = await c!.exec(['tcplab-capture', 'status']);
    expect(st.exitCode).toBe(1);
    expect(st.stderr).toBe('tcplab-capture: not started\n');
    const u = await c!.exec(['tcplab-capture', 'stop']);
    expect(u.exitCode).toBe(2);
    expect(u.stderr).toMatch(/usage: tcplab-capture start\|status\|run/);
  });

  it('start without NET_RAW fails at once with the reason, and so does run', async () => {
    const s = await c!.exec(['tcplab-capture', 'start']);
    // The reason, read from the recorder's log (not "still starting": start did not wait out its 3 s).
    expect(s.exitCode, s.output).toBe(1);
    expect(s.stderr).toMatch(/^tcplab-capture: the recorder did not start: .*packet socket: Operation not permitted\n$/);
    const r = await c!.exec(['tcplab-capture', 'run']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/packet socket: Operation not permitted/);
  });
});
