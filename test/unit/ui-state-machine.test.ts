import { describe, expect, it } from 'vitest';
import { TCP_STATES } from '../../src/lab/schema.js';
import { DIAGRAM, edgeFor, stateMachineSvg, type StateBox } from '../../src/ui/state-machine.js';

// RFC 9293, section 3.3.2, Figure 5: every arrow, as the figure labels it (event / action).
const RFC_9293_FIGURE_5 = [
  ['CLOSED', 'LISTEN', 'passive OPEN', 'create TCB'],
  ['LISTEN', 'CLOSED', 'CLOSE', 'delete TCB'],
  ['CLOSED', 'SYN_SENT', 'active OPEN', 'create TCB, snd SYN'],
  ['SYN_SENT', 'CLOSED', 'CLOSE', 'delete TCB'],
  ['LISTEN', 'SYN_SENT', 'SEND', 'snd SYN'],
  ['LISTEN', 'SYN_RECV', 'rcv SYN', 'snd SYN,ACK'],
  ['SYN_RECV', 'LISTEN', 'rcv RST', 'x'],
  ['SYN_SENT', 'SYN_RECV', 'rcv SYN', 'snd SYN,ACK'],
  ['SYN_RECV', 'ESTABLISHED', 'rcv ACK of SYN', 'x'],
  ['SYN_SENT', 'ESTABLISHED', 'rcv SYN,ACK', 'snd ACK'],
  ['SYN_RECV', 'FIN_WAIT_1', 'CLOSE', 'snd FIN'],
  ['ESTABLISHED', 'FIN_WAIT_1', 'CLOSE', 'snd FIN'],
  ['ESTABLISHED', 'CLOSE_WAIT', 'rcv FIN', 'snd ACK'],
  ['FIN_WAIT_1', 'FIN_WAIT_2', 'rcv ACK of FIN', 'x'],
  ['FIN_WAIT_1', 'CLOSING', 'rcv FIN', 'snd ACK'],
  ['CLOSE_WAIT', 'LAST_ACK', 'CLOSE', 'snd FIN'],
  ['FIN_WAIT_2', 'TIME_WAIT', 'rcv FIN', 'snd ACK'],
  ['CLOSING', 'TIME_WAIT', 'rcv ACK of FIN', 'x'],
  ['LAST_ACK', 'CLOSED', 'rcv ACK of FIN', 'x'],
  ['TIME_WAIT', 'CLOSED', 'timeout 2MSL', 'delete TCB'],
];

function onBoundary([x, y]: [number, number], b: StateBox): boolean {
  const inX = x >= b.x && x <= b.x + b.w;
  const inY = y >= b.y && y <= b.y + b.h;
  return (inX && (y === b.y || y === b.y + b.h)) || (inY && (x === b.x || x === b.x + b.w));
}

function overlaps(a: { x: number; y: number; w: number; h: number }, b: { x: number; y: number; w: number; h: number }): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/** A label's box, estimated from its text at the diagram's 12.5px label size (recent arrows use 14px). */
function labelBox(l: (typeof DIAGRAM.transitions)[number]['label']) {
  const w = Math.max(...l.lines.map((s) => s.length)) * 14 * 0.58;
  const h = l.lines.length * 14;
  const x = l.anchor === 'start' ? l.x : l.anchor === 'end' ? l.x - w : l.x - w / 2;
  return { x, y: l.y - 11, w, h };
}

describe('the state diagram (RFC 9293, Figure 5)', () => {
  it('has a box for each of the eleven states, CLOSED twice as in the figure', () => {
    const states = DIAGRAM.boxes.map((b) => b.state);
    expect(new Set(states)).toEqual(new Set(TCP_STATES));
    expect(states.filter((s) => s === 'CLOSED')).toHaveLength(2);
    expect(states).toHaveLength(12);
    expect(new Set(DIAGRAM.boxes.map((b) => b.id)).size).toBe(12);
  });

  it("draws exactly the figure's twenty transitions with its labels", () => {
    const drawn = DIAGRAM.transitions.map((t) => [t.from, t.to, t.event, t.action]);
    expect(drawn).toHaveLength(RFC_9293_FIGURE_5.length);
    expect(new Set(drawn.map((d) => d.join('|')))).toEqual(new Set(RFC_9293_FIGURE_5.map((d) => d.join('|'))));
    expect(new Set(DIAGRAM.transitions.map((t) => t.id)).size).toBe(20);
  });

  it('every arrow leaves its box and enters the other, with straight segments, inside the picture', () => {
    const byId = new Map(DIAGRAM.boxes.map((b) => [b.id, b]));
    for (const t of DIAGRAM.transitions) {
      const from = byId.get(t.fromBox)!;
      const to = byId.get(t.toBox)!;
      expect(from.state, t.id).toBe(t.from);
      expect(to.state, t.id).toBe(t.to);
      expect(onBoundary(t.points[0]!, from), `${t.id} starts on ${from.id}`).toBe(true);
      expect(onBoundary(t.points[t.points.length - 1]!, to), `${t.id} ends on ${to.id}`).toBe(true);
      for (let i = 1; i < t.points.length; i++) {
        const [x1, y1] = t.points[i - 1]!;
        const [x2, y2] = t.points[i]!;
        expect(x1 === x2 || y1 === y2, `${t.id} segment ${i} is horizontal or vertical`).toBe(true);
      }
      for (const [x, y] of t.points) {
        expect(x >= 0 && x <= DIAGRAM.width && y >= 0 && y <= DIAGRAM.height, `${t.id} stays inside`).toBe(true);
        // No arrow runs through a box other than its own two.
      }
      for (const b of DIAGRAM.boxes) {
        if (b.id === t.fromBox || b.id === t.toBox) continue;
        for (let i = 1; i < t.points.length; i++) {
          const [x1, y1] = t.points[i - 1]!;
          const [x2, y2] = t.points[i]!;
          const seg = { x: Math.min(x1, x2), y: Math.min(y1, y2), w: Math.abs(x2 - x1) || 0.1, h: Math.abs(y2 - y1) || 0.1 };
          expect(overlaps(seg, b), `${t.id} crosses ${b.id}`).toBe(false);
        }
      }
    }
  });

  it('boxes do not overlap, and no label covers a box or leaves the picture', () => {
    const boxes = DIAGRAM.boxes;
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) expect(overlaps(boxes[i]!, boxes[j]!)).toBe(false);
    for (const t of DIAGRAM.transitions) {
      const l = labelBox(t.label);
      expect(l.x >= 0 && l.x + l.w <= DIAGRAM.width && l.y >= 0 && l.y + l.h <= DIAGRAM.height, `${t.id} label inside`).toBe(true);
      for (const b of boxes) expect(overlaps(l, b), `${t.id} label over ${b.id}`).toBe(false);
    }
  });

  it('renders one SVG with a group per box and per arrow for the page to light', () => {
    const svg = stateMachineSvg();
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<g class="state" data-state="/g)).toHaveLength(12);
    expect(svg.match(/<g class="edge" data-edge="/g)).toHaveLength(20);
    expect(svg.split('<g').length).toBe(svg.split('</g>').length);
    expect(svg).toContain('data-edge="SYN_SENT-ESTABLISHED"');
    // Text is escaped: the arrows' titles have "->" in them.
    expect(svg).toContain('SYN_SENT -&#62; ESTABLISHED');
    expect(svg).not.toMatch(/<script|href=/);
  });
});

describe('which arrow a change seen by ss took', () => {
  it('maps new sockets to the RFC move that makes them', () => {
    expect(edgeFor(undefined, 'SYN_SENT')).toBe('CLOSED-SYN_SENT');
    expect(edgeFor('CLOSED', 'LISTEN')).toBe('CLOSED-LISTEN');
    // A SYN to a listener makes a new request socket; the RFC draws LISTEN -> SYN-RECEIVED.
    expect(edgeFor('CLOSED', 'SYN_RECV')).toBe('LISTEN-SYN_RECV');
  });

  it('maps moves of a socket to their arrow, and moves the figure does not draw to none', () => {
    expect(edgeFor('SYN_SENT', 'ESTABLISHED')).toBe('SYN_SENT-ESTABLISHED');
    expect(edgeFor('TIME_WAIT', 'CLOSED')).toBe('TIME_WAIT-CLOSED');
    expect(edgeFor('FIN_WAIT_1', 'CLOSING')).toBe('FIN_WAIT_1-CLOSING');
    // A half-open connection given up after its SYN|ACK retries, or a RST: not in the figure.
    expect(edgeFor('SYN_RECV', 'CLOSED')).toBeUndefined();
    expect(edgeFor('ESTABLISHED', 'CLOSED')).toBeUndefined();
    expect(edgeFor(undefined, 'ESTABLISHED')).toBeUndefined();
  });
});
