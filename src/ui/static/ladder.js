// The packet ladder as SVG: one column per machine, time going down, one row per event of the joined time line
// (the server sends rows already joined by src/trace: the same data as the terminal's ladder). New rows fade in.
/* global getComputedStyle, document */
import { h, s } from './dom.js';

/** @typedef {{ kind: 'segment', key: string, t: number, from?: string, to?: string, via: string[], tag: string, label: string, fate: string, lostAt?: string, note?: string, retransmission: boolean, wire: string }} SegmentRow */
/** @typedef {{ kind: 'state', key: string, t: number, node: string, tag: string, state: string, port?: number }} StateRow */
/** @typedef {{ kind: 'drop', key: string, t: number, node: string, text: string }} DropRow */
/** @typedef {SegmentRow | StateRow | DropRow} Row */
/** @typedef {{ nodes: string[], connections: { tag: string, text: string }[], rows: Row[], skipped: number, segments: number }} Ladder */

/** When each row (by key) first appeared on this page, to mark the rows that just arrived. */
let seenAt = new Map();
let first = true;
/** A row's time turns to the "just arrived" colour for this long (ms). */
const FRESH_MS = 4000;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let unmark;

function remPx() {
  return parseFloat(getComputedStyle(document.documentElement).fontSize) || 20;
}

/**
 * Fit a text into a width, given the font's size (an estimate: no layout pass per label).
 * @param {string} text
 * @param {number} width
 * @param {number} fontPx
 * @param {boolean} [bold]
 */
function fit(text, width, fontPx, bold = false) {
  const max = Math.floor(width / (fontPx * (bold ? 0.7 : 0.6)));
  if (max <= 1) return '';
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * Lane positions: the time column, then the machines spread across the rest.
 * @param {number} n
 * @param {number} width
 * @param {number} rem
 */
function lanes(n, width, rem) {
  const left = 3.6 * rem;
  const right = width - 0.6 * rem;
  if (n === 1) return [left];
  return Array.from({ length: n }, (_, i) => left + ((right - left) * i) / (n - 1));
}

/**
 * Draw the column heads above the scrolling ladder.
 * @param {HTMLElement} head
 * @param {string[]} nodes
 * @param {Record<string, string[]>} addresses
 * @param {number[]} xs
 */
function drawHead(head, nodes, addresses, xs) {
  head.replaceChildren(
    ...nodes.map((n, i) => {
      const span = h('span', {}, [n, h('small', {}, [(addresses[n] ?? []).join(', ')])]);
      const x = xs[i] ?? 0;
      if (i === 0) span.style.left = `${Math.max(0, x - 8)}px`;
      else if (i === nodes.length - 1) span.style.right = `${Math.max(0, (head.clientWidth || 0) - x - 8)}px`;
      else {
        span.style.left = `${x}px`;
        span.style.transform = 'translateX(-50%)';
      }
      return span;
    }),
  );
}

/**
 * @param {SegmentRow} r
 */
function segClasses(r) {
  const c = ['seg'];
  const l = r.label;
  if (l.startsWith('SYN')) c.push('syn');
  if (l.includes('FIN')) c.push('fin');
  if (l.includes('RST')) c.push('rst');
  if (r.retransmission) c.push('rtx');
  if (r.fate === 'lost') c.push('lost');
  if (r.fate === 'in-flight') c.push('in-flight');
  return c.join(' ');
}

/**
 * Render the ladder into its scrolling container.
 * @param {HTMLElement} box the scrolling container
 * @param {HTMLElement} head the column heads
 * @param {Ladder} ladder
 * @param {Record<string, string[]>} addresses
 * @param {{ follow: boolean }} opts
 */
export function renderLadder(box, head, ladder, addresses, opts) {
  const rem = remPx();
  const font = 0.72 * rem;
  const width = Math.max(320, box.clientWidth || 600);
  const rowH = 1.75 * rem;
  const xs = lanes(ladder.nodes.length, width, rem);
  const laneOf = (/** @type {string | undefined} */ n) => (n === undefined ? undefined : xs[ladder.nodes.indexOf(n)]);
  drawHead(head, ladder.nodes, addresses, xs);
  const rows = ladder.rows;
  const height = Math.max(2, rows.length + (ladder.skipped ? 1 : 0)) * rowH + rowH * 0.4;
  const svg = s('svg', {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': `${ladder.segments} segments; the latest ${rows.length} events`,
  });
  for (const x of xs) svg.append(s('line', { class: 'lane', x1: x, x2: x, y1: 0, y2: height }));
  let y0 = 0;
  if (ladder.skipped) {
    svg.append(s('text', { class: 'empty', x: width / 2, y: rowH * 0.65, 'text-anchor': 'middle' }, `… ${ladder.skipped} earlier events`));
    y0 = rowH;
  }
  if (rows.length === 0)
    svg.append(s('text', { class: 'empty', x: width / 2, y: rowH * 1.1, 'text-anchor': 'middle' }, 'no segments and no state changes yet'));
  const now = Date.now();
  /** @type {Map<string, number>} */
  const seen = new Map();
  rows.forEach((r, i) => {
    // Rows there when the page opened are not news; later ones fade in, and stay marked for a few seconds.
    const at = seenAt.get(r.key) ?? (first ? 0 : now);
    seen.set(r.key, at);
    const top = y0 + i * rowH;
    const g = s('g', { 'data-key': r.key, 'data-kind': r.kind });
    g.append(s('text', { class: 'time', x: 4, y: top + rowH * 0.62 }, r.t.toFixed(3)));
    if (r.kind === 'segment') drawSegment(g, r, top, rowH, font, laneOf, width);
    else if (r.kind === 'state') drawState(g, r, top, rowH, font, laneOf, xs);
    else drawDrop(g, r, top, rowH, font, laneOf, xs, width);
    // After drawing, which sets the row's own classes.
    if (!seenAt.has(r.key) && !first) g.classList.add('new');
    if (now - at < FRESH_MS) g.classList.add('fresh');
    svg.append(g);
  });
  seenAt = seen;
  first = false;
  box.replaceChildren(svg);
  // Nothing may stay marked as just arrived when nothing else arrives: unmark after FRESH_MS.
  clearTimeout(unmark);
  unmark = setTimeout(() => {
    for (const g of svg.querySelectorAll('g.fresh')) g.classList.remove('fresh');
  }, FRESH_MS);
  if (opts.follow) box.scrollTop = box.scrollHeight;
}

/**
 * @param {SVGElement} g
 * @param {SegmentRow} r
 * @param {number} top
 * @param {number} rowH
 * @param {number} font
 * @param {(n: string | undefined) => number | undefined} laneOf
 * @param {number} width
 */
function drawSegment(g, r, top, rowH, font, laneOf, width) {
  g.setAttribute('class', segClasses(r));
  const text = r.tag ? `${r.tag}:${r.label}` : r.label;
  const fateText = r.fate === 'lost' ? `lost${r.note ? `: ${r.note}` : ''}` : r.fate;
  g.append(s('title', {}, `${r.wire}  ${r.label}  (${fateText})`));
  const a = laneOf(r.from);
  const b = laneOf(r.to);
  const y = top + rowH * 0.72;
  if (a === undefined || b === undefined) {
    const x = a ?? b ?? laneOf(r.via[0]) ?? 60;
    g.append(s('text', { class: 'label', x: x + 6, y: y - 4 }, fit(`? ${r.wire} ${text}`, width - x - 10, font)));
    return;
  }
  const dir = b > a ? 1 : -1;
  let end = b;
  if (r.fate === 'lost' && r.lostAt !== undefined) {
    const at = laneOf(r.lostAt) ?? a;
    end = at === a ? a + dir * Math.min(60, Math.abs(b - a) * 0.3) : at + dir * 30;
  }
  g.append(s('line', { x1: a, y1: y, x2: end - dir * (r.fate === 'lost' ? 0 : 9), y2: y }));
  for (const v of r.via) {
    const x = laneOf(v);
    if (x !== undefined && (x - a) * dir > 0 && (end - x) * dir > 0) g.append(s('circle', { cx: x, cy: y, r: 4, class: 'via' }));
  }
  if (r.fate === 'lost') {
    const k = 7;
    g.append(s('path', { class: 'x', d: `M${end - k},${y - k}L${end + k},${y + k}M${end - k},${y + k}L${end + k},${y - k}` }));
    const note = r.lostAt === r.from ? 'not received' : 'dropped';
    const room = Math.abs(b - end) - 14;
    const t = fit(note, room, font);
    if (t) g.append(s('text', { class: 'fate', x: end + dir * 12, y: y + 4, 'text-anchor': dir > 0 ? 'start' : 'end' }, t));
  } else {
    g.append(s('polygon', { points: `${end},${y} ${end - dir * 11},${y - 6} ${end - dir * 11},${y + 6}` }));
  }
  // A lost segment's label sits over the part of the arrow that exists, clear of the X and its note.
  const far = r.fate === 'lost' ? end : b;
  const span = Math.abs(far - a) - 16;
  g.append(s('text', { class: 'label', x: (a + far) / 2, y: y - 6, 'text-anchor': 'middle' }, fit(text, span, font)));
}

/**
 * @param {SVGElement} g
 * @param {StateRow} r
 * @param {number} top
 * @param {number} rowH
 * @param {number} font
 * @param {(n: string | undefined) => number | undefined} laneOf
 * @param {number[]} xs
 */
function drawState(g, r, top, rowH, font, laneOf, xs) {
  g.setAttribute('class', 'state');
  const x = laneOf(r.node);
  if (x === undefined) return;
  const label = `${r.tag ? `${r.tag}:` : ''}${r.state}${r.port !== undefined ? ` :${r.port}` : ''}`;
  const w = label.length * font * 0.62 + font;
  const i = xs.indexOf(x);
  const left = i === 0 ? x - 2 : i === xs.length - 1 ? x - w + 2 : x - w / 2;
  g.append(s('title', {}, `${r.node}: ${label}`));
  g.append(s('rect', { x: left, y: top + rowH * 0.16, width: w, height: rowH * 0.72, rx: rowH * 0.2 }));
  g.append(s('text', { class: 'label', x: left + w / 2, y: top + rowH * 0.66, 'text-anchor': 'middle' }, label));
}

/**
 * @param {SVGElement} g
 * @param {DropRow} r
 * @param {number} top
 * @param {number} rowH
 * @param {number} font
 * @param {(n: string | undefined) => number | undefined} laneOf
 * @param {number[]} xs
 * @param {number} width
 */
function drawDrop(g, r, top, rowH, font, laneOf, xs, width) {
  g.setAttribute('class', 'drop');
  const x = laneOf(r.node) ?? xs[0] ?? 0;
  const last = xs.indexOf(x) === xs.length - 1;
  const text = `✗ ${r.node} ${r.text}`;
  g.append(s('title', {}, text));
  const room = last ? x - 3.6 * remPx() : width - x - 6;
  g.append(
    s(
      'text',
      { class: 'label', x: last ? x - 6 : x + 6, y: top + rowH * 0.66, 'text-anchor': last ? 'end' : 'start' },
      fit(text, room, font, true),
    ),
  );
}
