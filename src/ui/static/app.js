// The live page: one event stream from `lab ui` (Server-Sent Events), one view per change, drawn by three
// modules: the step, the ladder, the machines' state diagrams. Nothing is fetched from anywhere else.
/* global document, window, EventSource, ResizeObserver */
import { byId } from './dom.js';
import { renderLadder } from './ladder.js';
import { renderSides } from './sides.js';
import { renderStep } from './step.js';

/** @typedef {import('./ladder.js').Ladder} Ladder */
/** @typedef {import('./sides.js').Side} Side */
/** @typedef {import('./step.js').Step} Step */
/** The view without its ladder, which comes as its own event (it changes less often and is most of the bytes). */
/** @typedef {{ instance: string, status: 'live' | 'gone' | 'stopped', message?: string, lab: { id?: number, slug: string, title: string, summary?: string }, topology: string, walk: { kind: string, note: string }, step: Step | null, sides: Side[], capture: { on: boolean, note?: string } }} View */

const state = {
  /** @type {View | undefined} */
  view: undefined,
  /** @type {Ladder | undefined} */
  ladder: undefined,
  follow: true,
  ended: false,
  diagram: '',
  stepKey: '',
  /** Machines and addresses the ladder was last drawn with: a change of those redraws it. */
  laneKey: '',
};

const STATUS_TEXT = { live: 'live', gone: 'lab gone', stopped: 'stopped', lost: 'no connection', connecting: 'connecting…' };

/**
 * @param {keyof typeof STATUS_TEXT} status
 * @param {string} [text]
 */
function setStatus(status, text) {
  const el = byId('status');
  el.dataset.status = status;
  el.textContent = text ?? STATUS_TEXT[status];
}

/** @param {string | undefined} text */
function banner(text) {
  const el = byId('banner');
  el.hidden = !text;
  el.textContent = text ?? '';
}

/** @param {View} v */
function addressesOf(v) {
  /** @type {Record<string, string[]>} */
  const out = {};
  for (const s of v.sides) out[s.node] = s.addresses;
  return out;
}

function drawLadder() {
  const v = state.view;
  const ladder = state.ladder;
  if (!v || !ladder) return;
  renderLadder(byId('ladder'), byId('ladder-head'), ladder, addressesOf(v), { follow: state.follow });
  byId('wire-count').textContent = `${ladder.segments} segment${ladder.segments === 1 ? '' : 's'}`;
  const conns = ladder.connections;
  byId('connections').textContent = conns.length
    ? `${conns.length} connections: ${conns.map((c) => `${c.tag} = ${c.text}`).join(' · ')}`
    : '';
}

/** @param {View} v */
function render(v) {
  state.view = v;
  const lab = v.lab.id ? `Lab ${v.lab.id}: ${v.lab.title}` : v.lab.title;
  byId('lab-title').textContent = lab;
  document.title = `${lab} · tcplab live`;
  byId('lab-meta').textContent = `instance ${v.instance} · ${v.topology}${v.lab.summary ? ` · ${v.lab.summary}` : ''}`;
  setStatus(v.status);
  banner(v.status === 'live' ? undefined : v.message);
  const stepKey = v.step ? `${v.step.number} ${v.step.id}` : v.walk.kind;
  renderStep(v.step, v.walk);
  if (stepKey !== state.stepKey && state.stepKey)
    byId('status').textContent = v.step ? `live · step ${v.step.number}` : STATUS_TEXT[v.status];
  state.stepKey = stepKey;
  renderSides(byId('sides'), v.sides, state.diagram);
  const note = byId('capture-note');
  note.hidden = !v.capture.note;
  note.textContent = v.capture.note ?? '';
  const laneKey = JSON.stringify(addressesOf(v));
  if (laneKey !== state.laneKey) {
    state.laneKey = laneKey;
    drawLadder();
  }
}

/** @param {number} step */
function zoom(step) {
  const root = document.documentElement;
  const now = parseFloat(window.getComputedStyle(root).fontSize) || 20;
  root.style.fontSize = `${Math.min(40, Math.max(12, now + step))}px`;
  drawLadder();
}

function toggleFollow() {
  state.follow = !state.follow;
  byId('follow').setAttribute('aria-pressed', String(state.follow));
  if (state.follow) drawLadder();
}

function connect() {
  const source = new EventSource('/events');
  source.addEventListener('view', (e) => {
    render(JSON.parse(/** @type {MessageEvent} */ (e).data));
  });
  source.addEventListener('ladder', (e) => {
    state.ladder = JSON.parse(/** @type {MessageEvent} */ (e).data);
    drawLadder();
  });
  source.addEventListener('end', () => {
    // lab ui has stopped (Ctrl-C, or the lab went away): the last view says why; do not reconnect.
    state.ended = true;
    source.close();
    if (state.view?.status === 'live') setStatus('stopped');
  });
  source.addEventListener('error', () => {
    if (state.ended) return;
    if (source.readyState === EventSource.CLOSED) {
      setStatus('lost');
      banner('lab ui is not running any more: start it again, then reload this page');
    } else setStatus('lost', 'reconnecting…');
  });
  source.addEventListener('open', () => {
    if (state.view) setStatus(state.view.status);
  });
}

async function main() {
  byId('smaller').addEventListener('click', () => zoom(-2));
  byId('larger').addEventListener('click', () => zoom(2));
  byId('follow').addEventListener('click', toggleFollow);
  document.addEventListener('keydown', (e) => {
    if (e.target instanceof window.HTMLElement && ['INPUT', 'TEXTAREA'].includes(e.target.tagName)) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === '+' || e.key === '=') zoom(2);
    else if (e.key === '-') zoom(-2);
    else if (e.key === 'f') toggleFollow();
  });
  const ladder = byId('ladder');
  // Scrolling up to read older rows stops following; scrolling back to the bottom resumes it.
  ladder.addEventListener('scroll', () => {
    const atBottom = ladder.scrollTop + ladder.clientHeight >= ladder.scrollHeight - 4;
    if (atBottom !== state.follow) {
      state.follow = atBottom;
      byId('follow').setAttribute('aria-pressed', String(atBottom));
    }
  });
  let width = ladder.clientWidth;
  new ResizeObserver(() => {
    if (ladder.clientWidth !== width) {
      width = ladder.clientWidth;
      drawLadder();
    }
  }).observe(ladder);
  state.diagram = await (await fetch('/diagram.svg')).text();
  connect();
}

main().catch((e) => {
  setStatus('lost');
  banner(`the page could not start: ${e instanceof Error ? e.message : String(e)}`);
});
