// `ss -tanoH` and `ss -tanoiH` output -> sockets with the state names the article and netstat use.
// With -i, ss prints a second, indented line per socket (tcp_info); its fields go to Socket.info.
import type { TcpState } from '../lab/schema.js';

export interface Endpoint {
  /** IPv4 dotted quad, an IPv6 address without brackets, or '*' for any address. */
  host: string;
  /** null for '*'. */
  port: number | null;
}

export interface Socket {
  state: TcpState;
  /** What ss printed, e.g. ESTAB or SYN-RECV. */
  ssState: string;
  recvQ: number;
  sendQ: number;
  local: Endpoint;
  peer: Endpoint;
  /** ss -o: timer:(on,1.2sec,3): the timer (on: retransmission, keepalive, timewait, persist), the time left
   *  and how many retransmissions (or keepalive probes) it has made so far without an answer. */
  timer?: { name: string; ms: number; retransmits: number };
  /** ss -i, when asked for. */
  info?: SocketInfo;
  line: string;
}

/** The tcp_info fields a lab can check (ss -i). */
export interface SocketInfo {
  rtoMs?: number;
  /** retrans:CURRENT/TOTAL: unanswered retransmissions now, and every retransmission of this connection. */
  retrans?: { current: number; total: number };
  /** Segments sent and not yet acknowledged. */
  unacked?: number;
  lost?: number;
  cwnd?: number;
  bytesSent?: number;
  bytesRetrans?: number;
  bytesAcked?: number;
  bytesReceived?: number;
  /** The whole line as ss printed it. */
  line: string;
}

const STATES: Record<string, TcpState> = {
  ESTAB: 'ESTABLISHED',
  'SYN-SENT': 'SYN_SENT',
  'SYN-RECV': 'SYN_RECV',
  'FIN-WAIT-1': 'FIN_WAIT_1',
  'FIN-WAIT-2': 'FIN_WAIT_2',
  'TIME-WAIT': 'TIME_WAIT',
  UNCONN: 'CLOSED',
  CLOSE: 'CLOSED',
  'CLOSE-WAIT': 'CLOSE_WAIT',
  'LAST-ACK': 'LAST_ACK',
  LISTEN: 'LISTEN',
  CLOSING: 'CLOSING',
};

/** Docker's embedded DNS listens in every container on a user-defined network; it is not part of any lab. */
function isDockerDns(s: Socket): boolean {
  return s.local.host === '127.0.0.11';
}

export function parseSs(text: string): Socket[] {
  const sockets: Socket[] = [];
  for (const raw of text.split('\n')) {
    // ss -i: the tcp_info line is indented and belongs to the socket above.
    if (/^\s/.test(raw) && raw.trim() && sockets.length) {
      sockets[sockets.length - 1]!.info = parseInfo(raw.trim());
      continue;
    }
    const line = raw.trim();
    if (!line || line.startsWith('State ') || line.startsWith('Netid ')) continue;
    const f = line.split(/\s+/);
    const ssState = f[0]!;
    const state = STATES[ssState];
    if (!state || f.length < 5) throw new Error(`unexpected ss line: ${line}`);
    const s: Socket = {
      state,
      ssState,
      recvQ: Number(f[1]),
      sendQ: Number(f[2]),
      local: parseEndpoint(f[3]!),
      peer: parseEndpoint(f[4]!),
      line,
    };
    const timer = f.slice(5).find((x) => x.startsWith('timer:('));
    if (timer) s.timer = parseTimer(timer);
    sockets.push(s);
  }
  return sockets.filter((s) => !isDockerDns(s));
}

function parseInfo(line: string): SocketInfo {
  const info: SocketInfo = { line };
  const num = (key: string) => {
    const m = new RegExp(`(?:^|\\s)${key}:(\\d+(?:\\.\\d+)?)(?:\\s|$)`).exec(line);
    return m ? Number(m[1]) : undefined;
  };
  const set = <K extends keyof SocketInfo>(k: K, v: SocketInfo[K] | undefined) => {
    if (v !== undefined) info[k] = v;
  };
  set('rtoMs', num('rto'));
  set('unacked', num('unacked'));
  set('lost', num('lost'));
  set('cwnd', num('cwnd'));
  set('bytesSent', num('bytes_sent'));
  set('bytesRetrans', num('bytes_retrans'));
  set('bytesAcked', num('bytes_acked'));
  set('bytesReceived', num('bytes_received'));
  const r = /(?:^|\s)retrans:(\d+)\/(\d+)(?:\s|$)/.exec(line);
  if (r) info.retrans = { current: Number(r[1]), total: Number(r[2]) };
  return info;
}

export function parseEndpoint(text: string): Endpoint {
  const i = text.lastIndexOf(':');
  if (i < 0) throw new Error(`unexpected address: ${text}`);
  let host = text.slice(0, i);
  const portText = text.slice(i + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const pct = host.indexOf('%'); // 0.0.0.0%lo: an address bound to an interface
  if (pct >= 0) host = host.slice(0, pct);
  if (host.startsWith('::ffff:') && host.includes('.')) host = host.slice(7);
  if (host === '0.0.0.0' || host === '::' || host === '') host = '*';
  return { host, port: portText === '*' ? null : Number(portText) };
}

/** ss prints 1.692ms for 1 s 692 ms, 58sec, 1min30sec, 200ms (iproute2 print_ms_timer). */
export function parseTimerValue(text: string): number {
  const m = /^(?:(\d+)min)?(?:(\d+)(sec|\.))?(?:(\d+)ms)?$/.exec(text);
  if (!m) return NaN;
  return Number(m[1] ?? 0) * 60_000 + Number(m[2] ?? 0) * 1000 + Number(m[4] ?? 0);
}

function parseTimer(text: string): Socket['timer'] {
  const [name = '', value = '', retrans = '0'] = text.slice('timer:('.length, -1).split(',');
  return { name, ms: parseTimerValue(value), retransmits: Number(retrans) };
}

export function formatEndpoint(e: Endpoint): string {
  const host = e.host.includes(':') ? `[${e.host}]` : e.host;
  return `${host}:${e.port ?? '*'}`;
}
