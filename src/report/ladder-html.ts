// The ladder as a self-contained HTML page with inline SVG, for `lab grade --trace`: the same rows as the text
// ladder (ladder-text.ts), drawn. No script, no font or stylesheet from anywhere else: it opens offline.
import type { NodeName } from '../lab/schema.js';
import { formatEndpoint } from '../observe/ss.js';
import { dropVerb, eventsIn, statesAt, type Timeline, type TimelineEvent, type Transmission } from '../trace/timeline.js';
import { segmentLabel } from './ladder-text.js';

export interface LadderSection {
  title: string;
  /** Kernel ms; undefined: from the start, or to the end. */
  from?: number;
  to?: number;
}

const WIDTH = 960;
const ROW = 26;
const TOP = 56;
const LEFT = 190;
const RIGHT = WIDTH - 180;

export function renderLadderHtml(t: Timeline, opts: { title: string; subtitle?: string; sections?: LadderSection[] }): string {
  const sections = opts.sections?.length ? opts.sections : [{ title: 'The whole run' }];
  const body = sections.map((s) => `<section>\n<h2>${esc(s.title)}</h2>\n${svgFor(t, s)}\n</section>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(opts.title)}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2em; color: #1d1d1f; }
  h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
  svg { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
  .lane { stroke: #9aa0a6; stroke-width: 1.5; }
  .node { font-weight: bold; font-size: 14px; }
  .addr, .time { fill: #5f6368; }
  .seg { stroke: #1a73e8; stroke-width: 1.5; }
  .seg.rtx { stroke-dasharray: 5 3; }
  .seg.lost { stroke: #d93025; }
  .label { fill: #1a1a1a; }
  .lost-mark, .drop { fill: #d93025; font-weight: bold; }
  .state rect { fill: #e6f4ea; stroke: #188038; }
  .state text { fill: #0d652d; }
  .legend { color: #5f6368; font-size: 0.9em; }
</style>
</head>
<body>
<h1>${esc(opts.title)}</h1>
${opts.subtitle ? `<p class="legend">${esc(opts.subtitle)}</p>` : ''}
<p class="legend">Time goes down, in seconds from the start of each part. Arrows are TCP segments as the machines'
captures saw them (seq/ack relative, like tcpdump's); a dashed arrow is a retransmission; a red arrow ending in ✕
was lost where it ends. Green boxes are socket states as <code>ss</code> showed them, after the segment that changed
them. A red "dropped" line is an iptables counter that grew: a segment dropped before it reached the wire.</p>
${body}
</body>
</html>
`;
}

function svgFor(t: Timeline, section: LadderSection): string {
  const nodes = t.nodes;
  const lanes = nodes.map((_, i) => (nodes.length === 1 ? LEFT : LEFT + ((RIGHT - LEFT) * i) / (nodes.length - 1)));
  const laneOf = new Map<NodeName, number>(nodes.map((n, i) => [n, lanes[i]!]));
  const events = eventsIn(t, section.from, section.to).filter((e) => !hiddenDrop(e));
  const origin = section.from ?? t.t0;
  const initial = section.from === undefined ? [] : statesAt(t, section.from - 1e-6);
  const conns = new Map<string, string>();
  for (const e of events) {
    const c = e.kind === 'segment' ? e.tx.conn : e.kind === 'state' ? e.conn : undefined;
    if (c && !conns.has(c)) conns.set(c, '');
  }
  if (conns.size > 1) [...conns.keys()].forEach((c, i) => conns.set(c, `${String.fromCharCode(97 + (i % 26))}:`));
  const tag = (c?: string) => (c ? (conns.get(c) ?? '') : '');
  const parts: string[] = [];
  let y = TOP;
  for (const s of initial) parts.push(stateBox(laneOf.get(s.node)!, y, `${tag(s.conn)}${s.state}`, nodes.indexOf(s.node), nodes.length));
  if (initial.length) y += ROW;
  for (const e of events) {
    parts.push(`<text class="time" x="10" y="${y + 4}">${((e.at - origin) / 1000).toFixed(3)}</text>`);
    parts.push(row(e, y));
    y += ROW;
  }
  if (!events.length)
    parts.push(`<text class="addr" x="${WIDTH / 2}" y="${y}" text-anchor="middle">no segments and no state changes</text>`);
  const height = y + ROW;
  const header = nodes
    .map((n, i) => {
      const x = lanes[i]!;
      return `<text class="node" x="${x}" y="18" text-anchor="middle">${esc(n)}</text><text class="addr" x="${x}" y="34" text-anchor="middle">${esc((t.addresses[n] ?? []).join(', '))}</text><line class="lane" x1="${x}" y1="42" x2="${x}" y2="${height - 8}"/>`;
    })
    .join('');
  const legend = [...conns]
    .filter(([, v]) => v)
    .map(([k, v]) => {
      const c = t.connections.find((x) => x.key === k);
      return c ? `<div>${esc(v)} ${esc(formatEndpoint(c.a))} → ${esc(formatEndpoint(c.b))}</div>` : '';
    })
    .join('');
  return `${legend ? `<div class="legend">${legend}</div>` : ''}<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${esc(section.title)}">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1a73e8"/></marker></defs>
${header}
${parts.join('\n')}
</svg>`;

  function row(e: TimelineEvent, y: number): string {
    if (e.kind === 'state') {
      const lane = laneOf.get(e.node);
      return lane === undefined
        ? ''
        : stateBox(lane, y, `${tag(e.conn)}${e.to}${e.conn ? '' : ` :${e.local.port ?? ''}`}`, nodes.indexOf(e.node), nodes.length);
    }
    if (e.kind === 'drop') {
      const lane = laneOf.get(e.node) ?? LEFT;
      const last = nodes.indexOf(e.node) === nodes.length - 1;
      return `<text class="drop" x="${last ? lane - 8 : lane + 8}" y="${y + 4}" text-anchor="${last ? 'end' : 'start'}">✕ ${esc(`${e.node} ${e.chain} ${dropVerb(e)} ${e.packets}: ${e.rule}`)}</text>`;
    }
    return arrow(e.tx, y);
  }

  function arrow(tx: Transmission, y: number): string {
    const a = tx.from ? laneOf.get(tx.from) : undefined;
    const b = tx.to ? laneOf.get(tx.to) : undefined;
    const label = esc(`${tag(tx.conn)}${segmentLabel(tx)}`);
    if (a === undefined || b === undefined)
      return `<text class="label" x="${LEFT}" y="${y + 4}">${esc(`${formatEndpoint(tx.src)} > ${formatEndpoint(tx.dst)}`)} ${label}</text>`;
    const lost = tx.fate === 'lost' && tx.lost;
    const end = lost ? laneOf.get(tx.lost!.node)! + (b > a ? 24 : -24) : b;
    const endX = lost && laneOf.get(tx.lost!.node) === a ? a + (b > a ? 60 : -60) : end;
    const cls = `seg${tx.retransmission ? ' rtx' : ''}${lost ? ' lost' : ''}`;
    const mid = (a + endX) / 2;
    const line = `<line class="${cls}" x1="${a}" y1="${y}" x2="${endX}" y2="${y}"${lost ? '' : ' marker-end="url(#arrow)"'}/>`;
    const mark = lost ? `<text class="lost-mark" x="${endX}" y="${y + 5}" text-anchor="middle">✕</text>` : '';
    return `${line}${mark}<text class="label" x="${mid}" y="${y - 5}" text-anchor="middle">${label}</text>`;
  }
}

/** A FORWARD drop shows as the arrow that dies at the firewall; a row for its counter would say it twice. */
function hiddenDrop(e: TimelineEvent): boolean {
  return e.kind === 'drop' && e.chain === 'FORWARD';
}

function stateBox(x: number, y: number, text: string, index: number, count: number): string {
  const w = text.length * 7.4 + 12;
  const left = index === 0 ? x - w - 6 : index === count - 1 ? x + 6 : x - w / 2;
  const rx = index === 0 ? Math.max(42, left) : left;
  return `<g class="state"><rect x="${rx}" y="${y - 10}" width="${w}" height="18" rx="4"/><text x="${rx + 6}" y="${y + 3}">${esc(text)}</text></g>`;
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
