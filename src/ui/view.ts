// What the live page is sent: one plain JSON document per change, built here from what the server observed.
// Pure: the lab, the step, each node's last look and the joined time line (src/trace) in; the view out. The
// page only draws it, so everything it shows (which states are lit, which checks hold, each ladder row) is
// decided here and unit-tested with recorded fixtures.
import type { Expectation, Lab, NodeName, Step, TcpState, Topology } from '../lab/schema.js';
import { fill } from '../lab/templates.js';
import { describeExpectation, evaluate, socketMatches, type NodeSnapshot } from '../grade/grade.js';
import { formatEndpoint, type Socket } from '../observe/ss.js';
import { segmentLabel } from '../report/ladder-text.js';
import { dropVerb, type Timeline, type TimelineEvent, type Transmission } from '../trace/timeline.js';
import { edgeFor } from './state-machine.js';

/** Rows of the ladder sent at most: the latest ones (the page scrolls; the trace files keep everything). */
const MAX_LADDER_ROWS = 150;
/** Sockets listed per side at most (Lab 10 leaves 50 in TIME_WAIT); the counts on the diagram stay exact. */
export const MAX_SOCKETS_LISTED = 24;
/** How long a transition stays lit on the diagram after ss saw it (kernel ms). */
export const RECENT_MS = 8000;

export type Status = 'live' | 'gone' | 'stopped';

/** Where the walk that owns the instance is, as far as this process can tell. */
export type Walk =
  /** A `lab start` at a terminal publishes its step (state file): this is it. */
  | { kind: 'walking'; stepIndex: number }
  /** Kept after its walk (lab start --keep): its last step stays as the lab left it. */
  | { kind: 'finished'; stepIndex: number }
  /** A walk that does not publish its step (lab start --yes, lab grade), or a lab file this process cannot read. */
  | { kind: 'unknown'; reason: string };

export interface ViewInput {
  instance: string;
  topology: Topology;
  vars: Record<string, string>;
  /** Lab addresses of each node, in column order. */
  addresses: Partial<Record<NodeName, string[]>>;
  lab?: Pick<Lab, 'id' | 'slug' | 'title' | 'summary' | 'steps'>;
  /** The lab's slug from the containers' labels, when the lab file is not known. */
  slug?: string;
  walk: Walk;
  /** Segment checks count segments from the start of the step; false when this page did not see it start. */
  stepStartSeen: boolean;
  snapshots: Map<NodeName, NodeSnapshot>;
  timeline: Timeline;
  /** Kernel time of the latest look (ms). */
  now?: number;
  capture: { off: NodeName[]; dropped: number };
  status: Status;
  /** Why the page stopped, when it did. */
  message?: string;
}

interface SocketView {
  state: TcpState;
  local: string;
  peer: string;
  sendQ: number;
  recvQ: number;
  /** ss's timer, e.g. "on 1.2s (2 retransmissions)", "timewait 58s". */
  timer?: string;
  /** One of the current step's expectations on this node is about it. */
  matters: boolean;
}

export interface SideView {
  node: NodeName;
  addresses: string[];
  sockets: SocketView[];
  /** Sockets not listed (beyond MAX_SOCKETS_LISTED). */
  more: number;
  /** How many sockets are in each state right now. */
  counts: Partial<Record<TcpState, number>>;
  /** Diagram arrows taken in the last RECENT_MS, latest last (edge ids of state-machine.ts). */
  recent: { edge: string; from: TcpState; to: TcpState; t: number }[];
  /** The side was not observed in the latest round. */
  unseen: boolean;
}

type CheckStatus = 'met' | 'not met' | 'unknown';

interface CheckView {
  node: NodeName;
  expected: string;
  status: CheckStatus;
  seen: string[];
  why?: string;
  /** Why it cannot be told from here (status unknown). */
  note?: string;
  task: boolean;
}

export interface StepView {
  /** 1-based, as the walk shows it. */
  number: number;
  total: number;
  id: string;
  title: string;
  /** Paragraphs (a lab file's line breaks inside a paragraph are only where its YAML was wrapped). */
  explain: string[];
  task?: string[];
  checks: CheckView[];
}

type LadderRow =
  | {
      kind: 'segment';
      key: string;
      /** Seconds since the ladder's origin. */
      t: number;
      from?: NodeName;
      to?: NodeName;
      /** Machines in between whose capture saw it (the firewall of a routed lab). */
      via: NodeName[];
      tag: string;
      label: string;
      fate: Transmission['fate'];
      /** Where a lost segment was last seen, and what that means. */
      lostAt?: NodeName;
      note?: string;
      retransmission: boolean;
      /** tcpdump's view, for a tooltip: 198.18.0.2:40000 > 198.18.0.3:5555. */
      wire: string;
    }
  | { kind: 'state'; key: string; t: number; node: NodeName; tag: string; state: TcpState; port?: number }
  | { kind: 'drop'; key: string; t: number; node: NodeName; text: string };

export interface LadderView {
  nodes: NodeName[];
  /** Letter -> "a.b.c.d:p -> e.f.g.h:q", when more than one connection is in view. */
  connections: { tag: string; text: string }[];
  rows: LadderRow[];
  /** Older rows not sent. */
  skipped: number;
  segments: number;
}

export interface UiView {
  instance: string;
  status: Status;
  message?: string;
  lab: { id?: number; slug: string; title: string; summary?: string };
  topology: Topology;
  walk: { kind: Walk['kind']; note: string };
  step: StepView | null;
  sides: SideView[];
  ladder: LadderView;
  capture: { on: boolean; note?: string };
}

export function buildView(input: ViewInput): UiView {
  const step = currentStep(input);
  const expectations = step ? [...(step.task?.expect ?? []), ...(step.expect ?? [])] : [];
  return {
    instance: input.instance,
    status: input.status,
    ...(input.message ? { message: input.message } : {}),
    lab: input.lab
      ? { id: input.lab.id, slug: input.lab.slug, title: input.lab.title, summary: input.lab.summary }
      : { slug: input.slug ?? '?', title: input.slug ?? 'a lab' },
    topology: input.topology,
    walk: { kind: input.walk.kind, note: walkNote(input) },
    step: step ? stepView(input, step, expectations) : null,
    sides: input.timeline.nodes.map((node) => sideView(input, node, expectations)),
    ladder: ladderView(input.timeline),
    capture: captureView(input),
  };
}

function currentStep(input: ViewInput): Step | undefined {
  if (!input.lab || input.walk.kind === 'unknown') return undefined;
  return input.lab.steps[input.walk.stepIndex];
}

function walkNote(input: ViewInput): string {
  const w = input.walk;
  const total = input.lab?.steps.length;
  if (w.kind === 'walking')
    return w.stepIndex < 0 ? 'the walk has not reached its first step yet' : `following \`lab start\`: step ${w.stepIndex + 1} of ${total}`;
  if (w.kind === 'finished') return `the walk has ended and the lab was kept: its last step (${w.stepIndex + 1} of ${total}) as it left it`;
  return w.reason;
}

function stepView(input: ViewInput, step: Step, expectations: Expectation[]): StepView {
  const taskCount = step.task?.expect.length ?? 0;
  return {
    number: (input.walk.kind === 'unknown' ? 0 : input.walk.stepIndex) + 1,
    total: input.lab!.steps.length,
    id: step.id,
    title: step.title,
    explain: paragraphs(fill(step.explain, input.vars)),
    ...(step.task ? { task: paragraphs(fill(step.task.prompt, input.vars)) } : {}),
    checks: expectations.map((e, i) => checkView(input, e, i < taskCount)),
  };
}

/** Text as a lab file wraps it -> paragraphs: blank lines separate them, single line breaks are spaces. */
export function paragraphs(text: string): string[] {
  return text
    .split(/\n\s*\n/)
    .map((p) => p.replace(/\s*\n\s*/g, ' ').trim())
    .filter((p) => p.length > 0);
}

/** Does an expectation hold in the latest look? (Its `for` and `within` are the walk's business: this is now.) */
export function checkView(input: Pick<ViewInput, 'snapshots' | 'vars' | 'stepStartSeen'>, e: Expectation, task = false): CheckView {
  const base = {
    node: e.on,
    expected: describeExpectation(e, input.vars, { timing: false }),
    ...(e.why ? { why: e.why } : {}),
    task,
  };
  const snap = input.snapshots.get(e.on);
  if (!snap) return { ...base, status: 'unknown', seen: [], note: `the ${e.on} was not observed` };
  if (e.segments && !input.stepStartSeen)
    return { ...base, status: 'unknown', seen: [], note: 'counts segments since the step began, which this page did not see' };
  if (e.command) {
    const st = snap.commands?.[e.command.name];
    // tcplab-run knows background commands; a foreground command's status stays with the walk that ran it.
    if (!st || (!st.running && st.exit === undefined))
      return { ...base, status: 'unknown', seen: [], note: `only the walk that ran \`${e.command.name}\` knows how it ended` };
  }
  const ev = evaluate(e, snap, input.vars);
  return { ...base, status: ev.holds ? 'met' : 'not met', seen: ev.seen.slice(0, 6) };
}

function timerText(s: Socket): string | undefined {
  const t = s.timer;
  if (!t || t.name === 'off') return undefined;
  const secs = t.ms >= 10_000 ? `${Math.round(t.ms / 1000)}s` : `${(t.ms / 1000).toFixed(1)}s`;
  const r = t.name === 'on' && t.retransmits ? ` (${t.retransmits} retransmission${t.retransmits === 1 ? '' : 's'})` : '';
  return `${t.name} ${secs}${r}`;
}

function sideView(input: ViewInput, node: NodeName, expectations: Expectation[]): SideView {
  const snap = input.snapshots.get(node);
  const sockets = snap?.sockets ?? [];
  const mine = expectations.filter((e) => e.on === node && (e.socket ?? e.absent));
  const matters = (s: Socket) => mine.some((e) => socketMatches((e.socket ?? e.absent)!, s, input.vars));
  const counts: Partial<Record<TcpState, number>> = {};
  for (const s of sockets) counts[s.state] = (counts[s.state] ?? 0) + 1;
  const listed = [...sockets].sort((a, b) => Number(matters(b)) - Number(matters(a)));
  return {
    node,
    addresses: input.addresses[node] ?? [],
    sockets: listed.slice(0, MAX_SOCKETS_LISTED).map((s) => {
      const timer = timerText(s);
      return {
        state: s.state,
        local: formatEndpoint(s.local),
        peer: formatEndpoint(s.peer),
        sendQ: s.sendQ,
        recvQ: s.recvQ,
        ...(timer ? { timer } : {}),
        matters: matters(s),
      };
    }),
    more: Math.max(0, sockets.length - MAX_SOCKETS_LISTED),
    counts,
    recent: recentTransitions(input.timeline, node, input.now),
    unseen: !snap,
  };
}

/** The arrows a node's sockets took in the last RECENT_MS, one per arrow (its latest), oldest first. */
export function recentTransitions(t: Timeline, node: NodeName, now: number | undefined): SideView['recent'] {
  if (now === undefined) return [];
  const latest = new Map<string, SideView['recent'][number]>();
  for (const e of t.events) {
    // A socket already there at the first look (no `from`) took no arrow while we watched.
    if (e.kind !== 'state' || e.node !== node || e.from === undefined || now - e.seenAt > RECENT_MS) continue;
    const edge = edgeFor(e.from, e.to);
    if (!edge) continue;
    const from = edge.slice(0, edge.indexOf('-')) as TcpState;
    latest.set(edge, { edge, from, to: e.to, t: round3((e.at - t.t0) / 1000) });
  }
  return [...latest.values()].sort((a, b) => a.t - b.t);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function ladderRowKey(e: TimelineEvent): string {
  if (e.kind === 'segment') {
    const tx = e.tx;
    return `s${tx.at.toFixed(3)}-${formatEndpoint(tx.src)}-${formatEndpoint(tx.dst)}-${tx.seq}-${tx.flags.join('')}${tx.icmp ?? ''}-${tx.len}`;
  }
  if (e.kind === 'state') return `t${e.seenAt.toFixed(3)}-${e.node}-${formatEndpoint(e.local)}-${formatEndpoint(e.peer)}-${e.to}`;
  return `d${e.at.toFixed(3)}-${e.node}-${e.chain}-${e.rule}`;
}

/** The ladder's latest rows: the same joined data as the terminal ladder (src/trace), ready to draw. */
export function ladderView(t: Timeline, max = MAX_LADDER_ROWS): LadderView {
  const events = t.events.filter((e) => e.kind !== 'state' || t.nodes.includes(e.node));
  const shown = events.slice(Math.max(0, events.length - max));
  const conns: string[] = [];
  for (const e of shown) {
    const c = e.kind === 'segment' ? e.tx.conn : e.kind === 'state' ? e.conn : undefined;
    if (c && !conns.includes(c)) conns.push(c);
  }
  // With more than one connection in view, a letter tells them apart (as in the terminal's ladder).
  const tags = new Map<string, string>();
  if (conns.length > 1) conns.forEach((c, i) => tags.set(c, i < 26 ? String.fromCharCode(97 + i) : String(i)));
  const tagOf = (c: string | undefined) => (c ? (tags.get(c) ?? '') : '');
  const rows: LadderRow[] = shown.map((e) => {
    const key = ladderRowKey(e);
    const at = round3((e.at - t.t0) / 1000);
    if (e.kind === 'state')
      return {
        kind: 'state',
        key,
        t: at,
        node: e.node,
        tag: tagOf(e.conn),
        state: e.to,
        ...(e.peer.port === null && e.local.port !== null ? { port: e.local.port } : {}),
      };
    if (e.kind === 'drop') return { kind: 'drop', key, t: at, node: e.node, text: `${e.chain} ${dropVerb(e)} ${e.packets}: ${e.rule}` };
    const tx = e.tx;
    const via = t.nodes.filter((n) => n !== tx.from && n !== tx.to && tx.sightings.some((s) => s.node === n));
    return {
      kind: 'segment',
      key,
      t: at,
      ...(tx.from ? { from: tx.from } : {}),
      ...(tx.to ? { to: tx.to } : {}),
      via,
      tag: tagOf(tx.conn),
      label: segmentLabel(tx),
      fate: tx.fate,
      ...(tx.lost ? { lostAt: tx.lost.node, note: tx.lost.where } : {}),
      retransmission: tx.retransmission,
      wire: `${formatEndpoint(tx.src)} > ${formatEndpoint(tx.dst)}`,
    };
  });
  return {
    nodes: t.nodes,
    connections: [...tags].map(([conn, tag]) => {
      const c = t.connections.find((x) => x.key === conn);
      return { tag, text: c ? `${formatEndpoint(c.a)} -> ${formatEndpoint(c.b)}` : conn };
    }),
    rows,
    skipped: events.length - shown.length,
    segments: t.transmissions.length,
  };
}

function captureView(input: ViewInput): UiView['capture'] {
  const nodes = input.timeline.nodes;
  const off = nodes.filter((n) => input.capture.off.includes(n));
  if (off.length === nodes.length)
    return { on: false, note: 'no segments are recorded in this lab (started with TCPLAB_CAPTURE=0, or by an older tcplab): states only' };
  const notes: string[] = [];
  if (off.length) notes.push(`no capture on the ${off.join(' and ')}`);
  if (input.capture.dropped) notes.push(`${input.capture.dropped} older segments not kept`);
  return notes.length ? { on: true, note: notes.join('; ') } : { on: true };
}
