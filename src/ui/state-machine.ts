// RFC 9293's TCP connection state diagram (its Figure 5) as data and as SVG, for the live page. Pure: a
// fixed layout of the eleven states and the twenty transitions the RFC draws, each box and arrow tagged with
// data-state / data-edge so that the page lights the states of the sockets it sees and the transitions it saw
// taken. States carry the names netstat, ss and the article use (SYN_RECV, ESTABLISHED); the RFC's own names
// (SYN-RECEIVED, ESTAB) are in each box's title. CLOSED appears twice, as in the RFC: at the top (before a
// connection) and at the bottom right (after one).
import type { TcpState } from '../lab/schema.js';

export interface StateBox {
  /** Unique in the diagram (CLOSED has two boxes). */
  id: string;
  state: TcpState;
  /** The RFC's name for the state. */
  rfc: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

interface Transition {
  /** `${from}-${to}`: unique, as no two arrows join the same pair of states. */
  id: string;
  from: TcpState;
  to: TcpState;
  /** The box the arrow leaves and the one it enters (for the two CLOSED boxes). */
  fromBox: string;
  toBox: string;
  /** What makes it happen, and what TCP does then ("x": nothing), as the RFC writes them. */
  event: string;
  action: string;
  /** A polyline from the edge of fromBox to the edge of toBox. */
  points: [number, number][];
  /** Where its text goes: lines from (x, y) downwards, anchored as SVG's text-anchor. */
  label: { x: number; y: number; anchor: 'start' | 'middle' | 'end'; lines: string[] };
}

interface Diagram {
  width: number;
  height: number;
  boxes: StateBox[];
  transitions: Transition[];
  /** The RFC's notes under the figure, shortened. */
  notes: string[];
}

const W = 144;
const H = 44;
/** Columns (left x of a box) and rows (top y). */
const COL = { left: 16, center: 248, right: 480 } as const;
const ROW = [12, 100, 196, 292, 372, 460, 544] as const;

function box(id: string, state: TcpState, rfc: string, col: keyof typeof COL, row: number): StateBox {
  return { id, state, rfc, x: COL[col], y: ROW[row]!, w: W, h: H };
}

const BOXES: StateBox[] = [
  box('CLOSED', 'CLOSED', 'CLOSED', 'center', 0),
  box('LISTEN', 'LISTEN', 'LISTEN', 'center', 1),
  box('SYN_RECV', 'SYN_RECV', 'SYN-RECEIVED', 'left', 2),
  box('SYN_SENT', 'SYN_SENT', 'SYN-SENT', 'right', 2),
  box('ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED', 'center', 3),
  box('FIN_WAIT_1', 'FIN_WAIT_1', 'FIN-WAIT-1', 'left', 4),
  box('CLOSE_WAIT', 'CLOSE_WAIT', 'CLOSE-WAIT', 'right', 4),
  box('FIN_WAIT_2', 'FIN_WAIT_2', 'FIN-WAIT-2', 'left', 5),
  box('CLOSING', 'CLOSING', 'CLOSING', 'center', 5),
  box('LAST_ACK', 'LAST_ACK', 'LAST-ACK', 'right', 5),
  box('TIME_WAIT', 'TIME_WAIT', 'TIME-WAIT', 'center', 6),
  box('CLOSED_END', 'CLOSED', 'CLOSED', 'right', 6),
];

type Anchor = Transition['label']['anchor'];

function t(
  from: TcpState,
  to: TcpState,
  event: string,
  action: string,
  points: [number, number][],
  label: [number, number, Anchor, ...string[]],
  boxes: { fromBox?: string; toBox?: string } = {},
): Transition {
  const [x, y, anchor, ...lines] = label;
  return {
    id: `${from}-${to}`,
    from,
    to,
    fromBox: boxes.fromBox ?? from,
    toBox: boxes.toBox ?? to,
    event,
    action,
    points,
    label: { x, y, anchor, lines: lines.length ? lines : [action === 'x' ? event : `${event} / ${action}`] },
  };
}

// Routed by hand after the RFC's figure: the same arrows, between the same sides of the same boxes where the
// figure allows, with straight segments so that a lit arrow is easy to follow from across a room.
const TRANSITIONS: Transition[] = [
  t(
    'CLOSED',
    'LISTEN',
    'passive OPEN',
    'create TCB',
    [
      [300, 56],
      [300, 100],
    ],
    [292, 76, 'end', 'passive OPEN', 'create TCB'],
  ),
  t(
    'LISTEN',
    'CLOSED',
    'CLOSE',
    'delete TCB',
    [
      [340, 100],
      [340, 56],
    ],
    [348, 82, 'start'],
  ),
  t(
    'CLOSED',
    'SYN_SENT',
    'active OPEN',
    'create TCB, snd SYN',
    [
      [392, 24],
      [608, 24],
      [608, 196],
    ],
    [400, 18, 'start', 'active OPEN / snd SYN'],
  ),
  t(
    'SYN_SENT',
    'CLOSED',
    'CLOSE',
    'delete TCB',
    [
      [576, 196],
      [576, 44],
      [392, 44],
    ],
    [568, 60, 'end'],
  ),
  t(
    'LISTEN',
    'SYN_SENT',
    'SEND',
    'snd SYN',
    [
      [392, 122],
      [528, 122],
      [528, 196],
    ],
    [400, 114, 'start'],
  ),
  t(
    'LISTEN',
    'SYN_RECV',
    'rcv SYN',
    'snd SYN,ACK',
    [
      [248, 134],
      [120, 134],
      [120, 196],
    ],
    [128, 160, 'start'],
  ),
  t(
    'SYN_RECV',
    'LISTEN',
    'rcv RST',
    'x',
    [
      [40, 196],
      [40, 110],
      [248, 110],
    ],
    [48, 102, 'start', 'rcv RST (note 1)'],
  ),
  t(
    'SYN_SENT',
    'SYN_RECV',
    'rcv SYN',
    'snd SYN,ACK',
    [
      [480, 218],
      [160, 218],
    ],
    [320, 210, 'middle'],
  ),
  t(
    'SYN_RECV',
    'ESTABLISHED',
    'rcv ACK of SYN',
    'x',
    [
      [160, 232],
      [280, 232],
      [280, 292],
    ],
    [272, 266, 'end'],
  ),
  t(
    'SYN_SENT',
    'ESTABLISHED',
    'rcv SYN,ACK',
    'snd ACK',
    [
      [480, 232],
      [360, 232],
      [360, 292],
    ],
    [368, 266, 'start'],
  ),
  t(
    'SYN_RECV',
    'FIN_WAIT_1',
    'CLOSE',
    'snd FIN',
    [
      [40, 240],
      [40, 372],
    ],
    [48, 310, 'start'],
  ),
  t(
    'ESTABLISHED',
    'FIN_WAIT_1',
    'CLOSE',
    'snd FIN',
    [
      [280, 336],
      [280, 394],
      [160, 394],
    ],
    [272, 360, 'end'],
  ),
  t(
    'ESTABLISHED',
    'CLOSE_WAIT',
    'rcv FIN',
    'snd ACK',
    [
      [360, 336],
      [360, 394],
      [480, 394],
    ],
    [368, 360, 'start'],
  ),
  t(
    'FIN_WAIT_1',
    'FIN_WAIT_2',
    'rcv ACK of FIN',
    'x',
    [
      [60, 416],
      [60, 460],
    ],
    [68, 448, 'start'],
  ),
  t(
    'FIN_WAIT_1',
    'CLOSING',
    'rcv FIN',
    'snd ACK',
    [
      [160, 406],
      [320, 406],
      [320, 460],
    ],
    [176, 432, 'start'],
  ),
  t(
    'CLOSE_WAIT',
    'LAST_ACK',
    'CLOSE',
    'snd FIN',
    [
      [552, 416],
      [552, 460],
    ],
    [544, 442, 'end'],
  ),
  t(
    'FIN_WAIT_2',
    'TIME_WAIT',
    'rcv FIN',
    'snd ACK',
    [
      [60, 504],
      [60, 566],
      [248, 566],
    ],
    [68, 536, 'start'],
  ),
  t(
    'CLOSING',
    'TIME_WAIT',
    'rcv ACK of FIN',
    'x',
    [
      [320, 504],
      [320, 544],
    ],
    [328, 528, 'start'],
  ),
  t(
    'LAST_ACK',
    'CLOSED',
    'rcv ACK of FIN',
    'x',
    [
      [552, 504],
      [552, 544],
    ],
    [544, 528, 'end'],
    { toBox: 'CLOSED_END' },
  ),
  t(
    'TIME_WAIT',
    'CLOSED',
    'timeout 2MSL',
    'delete TCB',
    [
      [392, 566],
      [480, 566],
    ],
    [436, 559, 'middle', 'timeout', '2MSL'],
    {
      toBox: 'CLOSED_END',
    },
  ),
];

export const DIAGRAM: Diagram = {
  width: 640,
  height: 600,
  boxes: BOXES,
  transitions: TRANSITIONS,
  notes: [
    'Note 1: SYN_RECV goes back to LISTEN on a RST only if it came from a passive OPEN.',
    'Not drawn (RFC 9293): FIN_WAIT_1 straight to TIME_WAIT when a FIN arrives with the ACK of ours; a RST from any state.',
  ],
};

/** Linux and ss name some moves the RFC draws differently; which arrow a state change seen by ss took. */
export function edgeFor(from: TcpState | undefined, to: TcpState): string | undefined {
  // A socket that was not there before: ss shows the new socket, the RFC draws the move of a TCB.
  const start = from === undefined || from === 'CLOSED';
  let f: TcpState | undefined = from;
  if (start) {
    // A listener's SYN makes a new request socket in SYN_RECV (the RFC's LISTEN -> SYN-RECEIVED); an accepted
    // connection seen only once established came the same way.
    if (to === 'SYN_RECV') f = 'LISTEN';
    else if (to === 'SYN_SENT' || to === 'LISTEN') f = 'CLOSED';
    else return undefined;
  }
  const id = `${f}-${to}`;
  return TRANSITIONS.some((x) => x.id === id) ? id : undefined;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function arrowHead(points: [number, number][]): string {
  const [x2, y2] = points[points.length - 1]!;
  const [x1, y1] = points[points.length - 2]!;
  const len = Math.hypot(x2 - x1, y2 - y1) || 1;
  const ux = (x2 - x1) / len;
  const uy = (y2 - y1) / len;
  const size = 9;
  const bx = x2 - ux * size;
  const by = y2 - uy * size;
  const px = -uy * (size / 2);
  const py = ux * (size / 2);
  return `${x2},${y2} ${bx + px},${by + py} ${bx - px},${by - py}`;
}

/**
 * The diagram as one <svg> element. Boxes are <g class="state" data-state="..."> (a count badge inside stays
 * empty until the page fills it); arrows are <g class="edge" data-edge="FROM-TO">. No script, no external
 * reference: the page clones it once per side.
 */
export function stateMachineSvg(d: Diagram = DIAGRAM): string {
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="state-machine" viewBox="0 0 ${d.width} ${d.height}" role="img" aria-label="TCP state diagram (RFC 9293)">`,
  );
  out.push('<title>TCP connection states and transitions (RFC 9293, Figure 5)</title>');
  out.push('<g class="edges">');
  for (const tr of d.transitions) {
    const pts = tr.points.map(([x, y]) => `${x},${y}`).join(' ');
    const lines = tr.label.lines
      .map((l, i) => `<text x="${tr.label.x}" y="${tr.label.y + i * 14}" text-anchor="${tr.label.anchor}">${esc(l)}</text>`)
      .join('');
    out.push(
      `<g class="edge" data-edge="${tr.id}" data-from="${tr.from}" data-to="${tr.to}">` +
        `<title>${esc(`${tr.from} -> ${tr.to}: ${tr.event} / ${tr.action}`)}</title>` +
        `<polyline class="line" points="${pts}"/><polygon class="head" points="${arrowHead(tr.points)}"/>` +
        `<g class="label">${lines}</g></g>`,
    );
  }
  out.push('</g><g class="states">');
  for (const b of d.boxes) {
    const cx = b.x + b.w / 2;
    out.push(
      `<g class="state" data-state="${b.state}" data-box="${b.id}">` +
        `<title>${esc(`${b.state} (RFC 9293: ${b.rfc})`)}</title>` +
        `<rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="8"/>` +
        `<text class="name" x="${cx}" y="${b.y + b.h / 2 + 7}" text-anchor="middle">${esc(b.state)}</text>` +
        `<g class="badge"><circle cx="${b.x + b.w - 2}" cy="${b.y + 2}" r="13"/><text x="${b.x + b.w - 2}" y="${b.y + 7}" text-anchor="middle"></text></g>` +
        `</g>`,
    );
  }
  out.push('</g></svg>');
  return out.join('');
}
