// What the engine asks tcplab-agent and what its answers mean, over the frames of wire.ts. Pure: requests are
// built as frames, answers decoded into the values grading uses (sockets, counters, command statuses,
// segments). A field that does not decode is a WireError of that one answer.
import type { NodeName } from '../lab/schema.js';
import type { TcpState } from '../lab/schema.js';
import { parseIptablesSave, type RuleCounter } from './iptables.js';
import { ipv6, parseHeaders, type Segment } from './segments.js';
import { formatEndpoint, type Socket, type SocketInfo } from './ss.js';
import { field, Fields, KIND, OK, ERROR, u32, u64, WireError, type Field, type Frame } from './wire.js';

export const AGENT_PROGRAM = 'tcplab-agent';
/** The agent's user in every node (images/node/Dockerfile, tcplab-agent.c): the relay runs as it. */
export const AGENT_USER = '990:990';
export const AGENT_PROTOCOL = 1;

/** A command's status as the agent keeps it: running, or how it ended, and a bounded copy of its output. */
export interface CommandStatus {
  running: boolean;
  exit?: number;
  /** The signal that ended it (2 for Ctrl-C's SIGINT, 9 for kill -9). */
  signal?: number;
  /** Ended by its time limit (exit 124, as coreutils' timeout). */
  timedOut?: boolean;
  /** stdout and stderr as they came, merged; at most the first and the last 32 KiB. */
  output: string;
  /** Bytes of output left out between the head and the tail. */
  cutBytes?: number;
  /** It could not be started at all (the program does not exist, say). */
  startError?: string;
  pid?: number;
  /** Kernel times (ms since the epoch). */
  startedAt?: number;
  endedAt?: number;
}

export interface SegmentRead {
  segments: Segment[];
  /** Each segment's sequence number in its agent (the same for every reader). */
  seqs: number[];
  /** The cursor for the next look: the sequence number of the next segment the agent will record. */
  next: number;
  /** Segments recorded before the cursor asked for that the ring no longer holds (missed for good). */
  missed: number;
  /** Every segment the kernel dropped before the agent could read it, since the agent started. */
  kernelDrops: number;
  /** Why the agent records nothing (capture off, its socket failed), when it does not. */
  off?: string;
}

export interface Look {
  /** Kernel time of the socket snapshot, ms since the epoch (CLOCK_REALTIME: the clock of segments). */
  clock: number;
  /** Goes up each time something a check can see changes: a waiting look returns when it differs. */
  token: bigint;
  sockets: Socket[];
  /** The agent could not read the sockets (never expected; then sockets is empty and this says why). */
  socketsError?: string;
  counters?: RuleCounter[];
  countersError?: string;
  commands: Record<string, CommandStatus | undefined>;
  segments?: SegmentRead;
  /** Processes runnable or in disk wait, other than the agent, when asked. */
  busy?: number;
  /** Of those, the ones in the process group of a command the agent runs (lab commands, probes, answers; not
   *  a student's own shell), when asked: a state that must last is not judged while they wait for a CPU. */
  runnable?: number;
}

export interface LookRequest {
  iptables?: boolean;
  commands?: Iterable<string>;
  /** Ask for the segments from this cursor on (1: from the first the agent recorded). */
  segmentsFrom?: number;
  maxSegments?: number;
  /** Long poll: answer when the token differs from this one, or after waitMs. */
  waitMs?: number;
  token?: bigint;
  busy?: boolean;
  runnable?: boolean;
}

export interface RunRequest {
  argv: string[];
  name?: string;
  /** Its whole standard input, then EOF. Without it: /dev/null, or for a background command a pipe that stays
   *  open (a terminal where nothing is typed yet), fed by write(). */
  stdin?: string;
  background?: boolean;
  /** Foreground: SIGTERM to its process group after this long, SIGKILL a second later; exit 124. */
  timeoutMs?: number;
}

/** argv run as the student in a node: root with NET_ADMIN and NET_RAW only, for good (`lab shell`, answers,
 *  terminals). interruptOnEof: its input stays open, and closing ours is a Ctrl-C (SIGINT to its group). */
export function studentArgv(argv: string[], opts: { interruptOnEof?: boolean } = {}): string[] {
  return [AGENT_PROGRAM, 'student', ...(opts.interruptOnEof ? ['--interrupt-on-eof'] : []), '--', ...argv];
}

const NAME = /^[a-z0-9_-]{1,63}$/;

function checkName(name: string): string {
  if (!NAME.test(name)) throw new WireError(`bad command name ${JSON.stringify(name)}`);
  return name;
}

export function helloFrame(seq: number): Frame {
  return { seq, kind: KIND.hello, fields: [] };
}

export function lookFrame(seq: number, r: LookRequest): Frame {
  const f: Field[] = [];
  if (r.iptables) f.push(field('i'));
  if (r.busy) f.push(field('b'));
  if (r.runnable) f.push(field('q'));
  for (const c of r.commands ?? []) f.push(field('c', checkName(c)));
  if (r.segmentsFrom !== undefined) {
    f.push(field('s', u64(r.segmentsFrom)));
    if (r.maxSegments !== undefined) f.push(field('m', u32(r.maxSegments)));
  }
  if (r.waitMs !== undefined && r.token !== undefined && r.waitMs > 0) {
    f.push(field('w', u32(Math.min(60_000, Math.round(r.waitMs)))), field('t', u64(r.token)));
  }
  return { seq, kind: KIND.look, fields: f };
}

export function runFrame(seq: number, r: RunRequest): Frame {
  if (!r.argv.length) throw new WireError('nothing to run');
  const f: Field[] = [];
  if (r.name !== undefined) f.push(field('n', checkName(r.name)));
  for (const a of r.argv) f.push(field('a', a));
  if (r.stdin !== undefined) f.push(field('I', r.stdin));
  if (r.background) f.push(field('B'));
  if (r.timeoutMs !== undefined) f.push(field('T', u32(Math.max(1, Math.round(r.timeoutMs)))));
  return { seq, kind: KIND.run, fields: f };
}

export const SIGNALS = { HUP: 1, INT: 2, QUIT: 3, KILL: 9, TERM: 15 } as const;

export function signalFrame(seq: number, name: string, signal: number): Frame {
  return { seq, kind: KIND.signal, fields: [field('n', checkName(name)), field('g', u32(signal))] };
}

export function writeFrame(seq: number, name: string, data: string, close = false): Frame {
  return { seq, kind: close ? KIND.close : KIND.write, fields: [field('n', checkName(name)), field('d', data)] };
}

export function wakeFrame(seq: number): Frame {
  return { seq, kind: KIND.wake, fields: [] };
}

/** An answer's fields, or the agent's refusal as an AgentRefused. */
function answerFields(frame: Frame, kind: number): Fields {
  const fields = new Fields(frame.fields, `answer ${frame.seq}`);
  if (frame.kind === ERROR) throw new AgentRefused(fields.str('e') ?? 'refused, without a reason');
  if (frame.kind !== (OK | kind)) throw new WireError(`answer ${frame.seq}: kind ${frame.kind}, expected ${OK | kind}`);
  return fields;
}

/** The agent understood the request and said no (no such command, too many at once, could not start). */
export class AgentRefused extends Error {
  override name = 'AgentRefused';
}

export interface Hello {
  protocol: number;
  version: string;
  pid: number;
  uid: number;
  captureOff?: string;
}

export function decodeHello(frame: Frame): Hello {
  const f = answerFields(frame, KIND.hello);
  return {
    protocol: f.u32('v') ?? 0,
    version: f.str('V') ?? '',
    pid: f.u32('p') ?? 0,
    uid: f.u32('u') ?? 0,
    ...(f.has('F') ? { captureOff: f.str('F')! } : {}),
  };
}

const NS_PER_MS = 1_000_000n;

function nsToMs(ns: bigint): number {
  // ms with the microseconds kept as a fraction, as the capture lines were read.
  return Number(ns / 1000n) / 1000;
}

const STATES: Record<number, [TcpState, string]> = {
  1: ['ESTABLISHED', 'ESTAB'],
  2: ['SYN_SENT', 'SYN-SENT'],
  3: ['SYN_RECV', 'SYN-RECV'],
  4: ['FIN_WAIT_1', 'FIN-WAIT-1'],
  5: ['FIN_WAIT_2', 'FIN-WAIT-2'],
  6: ['TIME_WAIT', 'TIME-WAIT'],
  7: ['CLOSED', 'UNCONN'],
  8: ['CLOSE_WAIT', 'CLOSE-WAIT'],
  9: ['LAST_ACK', 'LAST-ACK'],
  10: ['LISTEN', 'LISTEN'],
  11: ['CLOSING', 'CLOSING'],
  // A request socket (a SYN answered, the handshake not done): ss shows it as SYN-RECV.
  12: ['SYN_RECV', 'SYN-RECV'],
};

/** ss's names for idiag_timer. */
const TIMERS = ['off', 'on', 'keepalive', 'timewait', 'persist'];

/** ss prints 1.692ms for 1 s 692 ms, 58sec, 1min30sec, 200ms (iproute2 print_ms_timer). */
export function formatTimerValue(ms: number): string {
  let secs = Math.floor(ms / 1000);
  const minutes = Math.floor(secs / 60);
  secs %= 60;
  let msecs = ms % 1000;
  let out = '';
  if (minutes) {
    msecs = 0;
    out += `${minutes}min`;
    if (minutes > 9) secs = 0;
  }
  if (secs) {
    if (secs > 9) msecs = 0;
    out += `${secs}${msecs ? '.' : 'sec'}`;
  }
  if (msecs) out += `${String(msecs).padStart(3, '0')}ms`;
  return out;
}

const SOCKET_BYTES = 4 + 4 * 5 + 32 + 4 * 6 + 8 * 4;

function address(family: number, b: Buffer): string {
  if (family === 4) return [...b.subarray(0, 4)].join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(b.readUInt16BE(i).toString(16));
  // ::ffff:a.b.c.d: an IPv4 peer of an IPv6 socket, shown as IPv4 (as parseEndpoint does for ss).
  if (words.slice(0, 5).every((w) => w === '0') && words[5] === 'ffff') return [...b.subarray(12, 16)].join('.');
  const text = ipv6(b);
  return text === '::' ? '*' : text;
}

export function decodeSocket(b: Buffer): Socket {
  if (b.length !== SOCKET_BYTES) throw new WireError(`a socket record of ${b.length} bytes, not ${SOCKET_BYTES}`);
  const family = b.readUInt8(0);
  const stateNo = b.readUInt8(1);
  const timer = b.readUInt8(2);
  const hasInfo = b.readUInt8(3) === 1;
  const retrans = b.readUInt32BE(4);
  const expires = b.readUInt32BE(8);
  const rqueue = b.readUInt32BE(12);
  const wqueue = b.readUInt32BE(16);
  const ports = b.readUInt32BE(20);
  const st = STATES[stateNo];
  if (!st || (family !== 4 && family !== 6)) throw new WireError(`a socket in state ${stateNo}, family ${family}`);
  const src = address(family, b.subarray(24, 40));
  const dst = address(family, b.subarray(40, 56));
  const sport = ports >>> 16;
  const dport = ports & 0xffff;
  const local = { host: src === '0.0.0.0' ? '*' : src, port: sport === 0 && st[0] === 'LISTEN' ? null : sport };
  const peer = { host: dst === '0.0.0.0' ? '*' : dst, port: dport === 0 ? null : dport };
  const s: Socket = {
    state: st[0],
    ssState: st[1],
    recvQ: rqueue,
    sendQ: wqueue,
    local,
    peer,
    line: '',
  };
  let timerText = '';
  if (timer > 0) {
    s.timer = { name: TIMERS[timer] ?? 'unknown', ms: expires, retransmits: retrans };
    timerText = ` timer:(${s.timer.name},${formatTimerValue(expires)},${retrans})`;
  }
  s.line = `${st[1]} ${rqueue} ${wqueue} ${formatEndpoint(local)} ${formatEndpoint(peer)}${timerText}`;
  if (hasInfo) {
    let at = 56;
    const next32 = () => {
      const v = b.readUInt32BE(at);
      at += 4;
      return v;
    };
    const next64 = () => {
      const v = Number(b.readBigUInt64BE(at));
      at += 8;
      return v;
    };
    const rtoUs = next32();
    const retransNow = next32();
    const totalRetrans = next32();
    const unacked = next32();
    const lost = next32();
    const cwnd = next32();
    const info: SocketInfo = {
      rtoMs: rtoUs / 1000,
      retrans: { current: retransNow, total: totalRetrans },
      unacked,
      lost,
      cwnd,
      bytesSent: next64(),
      bytesRetrans: next64(),
      bytesAcked: next64(),
      bytesReceived: next64(),
      line: '',
    };
    info.line = [
      `rto:${info.rtoMs}`,
      `retrans:${retransNow}/${totalRetrans}`,
      `unacked:${unacked}`,
      `lost:${lost}`,
      `cwnd:${cwnd}`,
      `bytes_sent:${info.bytesSent}`,
      `bytes_retrans:${info.bytesRetrans}`,
      `bytes_acked:${info.bytesAcked}`,
      `bytes_received:${info.bytesReceived}`,
    ].join(' ');
    s.info = info;
  }
  return s;
}

/** Docker's embedded DNS listens in every container on a user-defined network; it is not part of any lab. */
function isDockerDns(s: Socket): boolean {
  return s.local.host === '127.0.0.11';
}

function decodeStatus(f: Fields): CommandStatus | undefined {
  if (!f.has('r')) return undefined; // never started in this machine
  const running = f.u8('r') === 1;
  const head = f.u32('h') ?? 0;
  const out = f.get('o') ?? Buffer.alloc(0);
  const cut = f.u64('c') ?? 0;
  // The output as kept: the head, "[... N bytes cut ...]" where bytes were dropped, the tail.
  const output = cut
    ? `${out.subarray(0, head).toString('utf8')}\n[... ${cut} bytes cut ...]\n${out.subarray(head).toString('utf8')}`
    : out.toString('utf8');
  const started = f.big('S');
  const ended = f.big('E');
  return {
    running,
    output,
    ...(running ? {} : { exit: f.u32('x') ?? -1 }),
    ...(f.has('g') ? { signal: f.u32('g')! } : {}),
    ...(f.has('t') ? { timedOut: true } : {}),
    ...(cut ? { cutBytes: cut } : {}),
    ...(f.has('f') ? { startError: f.str('f')! } : {}),
    ...(f.has('p') ? { pid: f.u32('p')! } : {}),
    ...(started ? { startedAt: nsToMs(started) } : {}),
    ...(ended ? { endedAt: nsToMs(ended) } : {}),
  };
}

function decodeSegment(node: NodeName, b: Buffer): { seq: number; segment?: Segment } {
  if (b.length < 8 + 8 + 4 + 4 + 1 + 16) throw new WireError(`a segment record of ${b.length} bytes`);
  const seq = Number(b.readBigUInt64BE(0));
  const at = nsToMs(b.readBigUInt64BE(8));
  const ifindex = b.readUInt32BE(16);
  const origLen = b.readUInt32BE(20);
  const dir = b.readUInt8(24) === 1 ? 'out' : 'in';
  const nameBytes = b.subarray(25, 41);
  const iface = nameBytes.subarray(0, nameBytes.indexOf(0) >= 0 ? nameBytes.indexOf(0) : 16).toString('latin1');
  const hdr = b.subarray(41);
  const h = parseHeaders(hdr);
  if (!h) return { seq };
  return { seq, segment: { node, at, iface, ifindex, dir, ...h, hex: hdr.toString('hex'), origLen } };
}

/** segmentsFrom: the cursor the look asked from, to count the segments the ring no longer had. */
export function decodeLook(node: NodeName, frame: Frame, segmentsFrom?: number): Look {
  const f = answerFields(frame, KIND.look);
  const clock = f.big('T');
  const token = f.big('t');
  if (clock === undefined || token === undefined) throw new WireError(`answer ${frame.seq}: a look without a clock`);
  const look: Look = {
    clock: Number(clock / NS_PER_MS) + Number(clock % NS_PER_MS) / 1e6,
    token,
    sockets: f
      .all('k')
      .map(decodeSocket)
      .filter((s) => !isDockerDns(s)),
    commands: {},
  };
  if (f.has('E')) look.socketsError = f.str('E')!;
  if (f.has('b')) look.busy = f.u32('b')!;
  if (f.has('q')) look.runnable = f.u32('q')!;
  if (f.has('i')) look.counters = parseIptablesSave(f.str('i')!);
  if (f.has('I')) look.countersError = f.str('I')!;
  for (const m of f.all('m')) {
    const mf = Fields.of(m, `answer ${frame.seq}: a command`);
    const name = mf.str('n');
    if (!name) throw new WireError(`answer ${frame.seq}: a command without a name`);
    look.commands[name] = decodeStatus(mf);
  }
  if (f.has('N') || f.has('F')) {
    const next = f.u64('N') ?? 0;
    const oldest = f.u64('O') ?? next;
    const records = f.all('G').map((g) => decodeSegment(node, g));
    const kept = records.filter((r): r is { seq: number; segment: Segment } => r.segment !== undefined);
    look.segments = {
      segments: kept.map((r) => r.segment),
      seqs: kept.map((r) => r.seq),
      next,
      missed: segmentsFrom !== undefined ? Math.max(0, oldest - segmentsFrom) : 0,
      kernelDrops: f.u64('D') ?? 0,
      ...(f.has('F') ? { off: f.str('F')! } : {}),
    };
  }
  return look;
}

export function decodeRun(frame: Frame): { pid?: number; status?: CommandStatus } {
  const f = answerFields(frame, KIND.run);
  if (!f.has('r')) return { ...(f.has('p') ? { pid: f.u32('p')! } : {}) };
  return { status: decodeStatus(f)! };
}

export function decodeSignal(frame: Frame): { running: boolean } {
  const f = answerFields(frame, KIND.signal);
  return { running: f.u8('r') === 1 };
}

export function decodeAck(frame: Frame, kind: number): void {
  answerFields(frame, kind);
}
