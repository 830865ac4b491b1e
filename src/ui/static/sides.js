// One card per machine: its name and addresses, its states now in words, RFC 9293's state diagram (drawn by the
// server: /diagram.svg) with every current socket's state lit and a count on it, the arrows taken in the last
// seconds in another colour, and the sockets themselves as ss shows them.
import { h } from './dom.js';

/** @typedef {{ state: string, local: string, peer: string, sendQ: number, recvQ: number, timer?: string, matters: boolean }} SocketRow */
/** @typedef {{ edge: string, from: string, to: string, t: number }} Recent */
/** @typedef {{ node: string, addresses: string[], sockets: SocketRow[], more: number, counts: Record<string, number>, recent: Recent[], unseen: boolean }} Side */

/** @type {Map<string, { card: HTMLElement, svg: SVGSVGElement, now: HTMLElement, last: HTMLElement, list: HTMLElement, addr: HTMLElement }>} */
const cards = new Map();

/**
 * Make (once) or reuse the card of each machine, in column order.
 * @param {HTMLElement} container
 * @param {Side[]} sides
 * @param {string} diagram the SVG markup of the state diagram
 */
function ensureCards(container, sides, diagram) {
  const names = sides.map((s) => s.node).join(',');
  if (container.dataset.nodes === names) return;
  container.dataset.nodes = names;
  cards.clear();
  container.replaceChildren();
  for (const side of sides) {
    const addr = h('small');
    const now = h('p', { class: 'now', 'aria-live': 'off' });
    const last = h('p', { class: 'last' });
    const holder = h('div', { class: 'diagram' });
    // Our own server's markup for our own diagram (no lab text in it): parsed once, then only classes change.
    holder.innerHTML = diagram;
    const svg = /** @type {SVGSVGElement} */ (holder.querySelector('svg'));
    const list = h('ul', { class: 'sockets', 'aria-label': `${side.node} sockets (ss)` });
    const card = h('article', { class: 'side', 'data-node': side.node, 'aria-label': side.node }, [
      h('h2', {}, [side.node, addr]),
      now,
      holder,
      last,
      list,
    ]);
    container.append(card);
    cards.set(side.node, { card, svg, now, last, list, addr });
  }
}

/**
 * @param {Record<string, number>} counts
 */
function nowText(counts) {
  const parts = Object.entries(counts).map(([st, n]) => (n > 1 ? `${st} ×${n}` : st));
  return parts.join(' · ');
}

/**
 * @param {HTMLElement} container
 * @param {Side[]} sides
 * @param {string} diagram
 */
export function renderSides(container, sides, diagram) {
  ensureCards(container, sides, diagram);
  for (const side of sides) {
    const c = cards.get(side.node);
    if (!c) continue;
    c.addr.textContent = side.addresses.join(', ');
    const idle = Object.keys(side.counts).length === 0;
    const text = side.unseen ? 'not observed right now' : idle ? 'no socket (CLOSED)' : nowText(side.counts);
    c.now.textContent = text;
    c.now.classList.toggle('none', idle || side.unseen);
    for (const g of c.svg.querySelectorAll('g.state')) {
      const st = g.getAttribute('data-state') ?? '';
      const n = side.counts[st] ?? 0;
      g.classList.toggle('lit', n > 0);
      // CLOSED is the absence of a socket (netstat never shows one): outlined when a machine has none at all.
      g.classList.toggle('idle', idle && !side.unseen && st === 'CLOSED');
      const badge = g.querySelector('.badge text');
      if (badge) badge.textContent = n > 0 ? String(n) : '';
    }
    const recent = new Set(side.recent.map((r) => r.edge));
    for (const e of c.svg.querySelectorAll('g.edge')) e.classList.toggle('recent', recent.has(e.getAttribute('data-edge') ?? ''));
    const latest = side.recent[side.recent.length - 1];
    c.last.textContent = latest ? `just now: ${latest.from} → ${latest.to}` : '';
    c.svg.setAttribute('aria-label', `${side.node}: ${text}`);
    c.list.replaceChildren(
      ...side.sockets.map((k) =>
        h(
          'li',
          {
            class: k.matters ? 'matters' : undefined,
            title: `${k.state} ${k.local} → ${k.peer}${k.matters ? ' (the current step checks this socket)' : ''}`,
          },
          [
            h('span', { class: 'st' }, [k.state]),
            ` ${k.local} → ${k.peer}`,
            k.sendQ || k.recvQ ? `  send-q ${k.sendQ} recv-q ${k.recvQ}` : '',
            k.timer ? `  ${k.timer}` : '',
          ],
        ),
      ),
      ...(side.more ? [h('li', {}, [`… and ${side.more} more`])] : []),
    );
  }
}
