// `ss -tanoH` output -> sockets with the state names the article and netstat use.
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
  timer?: { name: string; ms: number; retransmits: number };
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
