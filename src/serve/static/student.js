// The student's page (and, under /watch/<id>, the instructor's read-only view of it): the labs with their
// progress, Start, the walk of the running lab (step, prediction, task, Check, hints, score), a terminal per
// machine, and lab ui's live view (ladder, state diagrams) beside them. Everything comes from the class server's
// event streams; the page sends intents (start, predict, check, continue) and keys, nothing else.
import './nonce.js';
/* global document, window, EventSource, navigator, ResizeObserver */
import { byId, el, getJson, post, setCsrf } from './api.js';
import { TermView } from './terminal.js';
import { renderLadder } from '/ui/ladder.js';
import { renderSides } from '/ui/sides.js';

const watched = /^\/watch\/([^/]+)$/.exec(window.location.pathname);
const student = watched ? decodeURIComponent(watched[1]) : undefined;
const readOnly = student !== undefined;
const base = readOnly ? `/api/class/students/${encodeURIComponent(student)}` : '/api/me';

const page = {
  /** @type {any} */ state: undefined,
  /** @type {Map<string, TermView>} */ terms: new Map(),
  termKey: '',
  /** @type {string | undefined} */ active: undefined,
  /** @type {any} */ view: undefined,
  /** @type {any} */ ladder: undefined,
  diagram: '',
  stepKey: '',
  /** The check whose result was last brought into view ("slug step attempt"). */
  checkKey: '',
};

const KEYS = /** @type {Record<string, string>} */ ({
  esc: '\x1b',
  tab: '\t',
  'ctrl-c': '\x03',
  'ctrl-d': '\x04',
  up: '\x1b[A',
  down: '\x1b[B',
  right: '\x1b[C',
  left: '\x1b[D',
  pipe: '|',
  tilde: '~',
});

/** @param {string} status @param {string} [text] */
function setStatus(status, text) {
  const s = byId('status');
  s.dataset.status = status;
  s.textContent = text ?? status;
}

/** @param {Element} e @param {boolean} show */
function show(e, on) {
  /** @type {HTMLElement} */ (e).hidden = !on;
}

function renderLabs(st) {
  const list = byId('lab-list');
  const busy = !!st.current;
  list.replaceChildren(
    ...st.labs.map((/** @type {any} */ l) => {
      const progress = l.completed ? 'completed' : l.inProgress ? 'started' : l.best ? 'tried' : 'not started';
      const score = l.best ? `best: ${scoreWords(l.best)}` : '';
      const start = el(
        'button',
        { type: 'button', 'data-slug': l.slug, disabled: busy || readOnly, 'aria-label': `Start Lab ${l.id}: ${l.title}` },
        ['Start'],
      );
      start.addEventListener('click', () => act(() => post('/api/me/start', { slug: l.slug })));
      return el('li', { 'data-slug': l.slug, 'data-progress': progress }, [
        el('span', { class: 'lab-name' }, [`Lab ${l.id}: ${l.title}`]),
        el('span', { class: 'lab-progress' }, [progress]),
        score ? el('span', { class: 'lab-score' }, [score]) : undefined,
        readOnly ? undefined : start,
      ]);
    }),
  );
}

/** Run a call; a failure is shown, not thrown. @param {() => Promise<unknown>} fn */
async function act(fn) {
  try {
    await fn();
  } catch (e) {
    notice(e instanceof Error ? e.message : String(e));
  }
}

/** @param {string | undefined} text */
function notice(text) {
  show(byId('notice'), !!text);
  byId('notice-text').textContent = text ?? '';
}

/**
 * A score in words, leaving out what the lab has not counted yet: "checks 0/0" after a task's check read as a
 * verdict (the task's own checks are its attempt's, not these), so a count of nothing is not shown.
 * @param {{ predictions: { right: number, asked: number }, checks: { met: number, total: number }, tasks: { done: number, total: number } }} sc
 */
function scoreWords(sc) {
  const parts = [
    sc.predictions.asked ? `predictions ${sc.predictions.right}/${sc.predictions.asked} right` : '',
    sc.checks.total ? `checks ${sc.checks.met}/${sc.checks.total} met` : '',
    sc.tasks.total ? `tasks ${sc.tasks.done}/${sc.tasks.total} done` : '',
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : 'nothing counted yet';
}

/**
 * A command of a check's probe, in words, when it is one of the labs' wait loops (`for i in $(seq 100); do ss
 * ... && exit 0; sleep 0.05; done; exit 1`): the loop itself stays one click away, and the terminal walk (lab
 * start) keeps showing it verbatim. Anything else is shown as it is.
 * @param {string} display
 * @returns {string | undefined}
 */
function probeWords(display) {
  const loop =
    /^sh -c '(?:for i in \$\(seq (\d+)\); do )?ss -t[a-zA-Z]*H\s+(?:state ([\w-]+)\s+)?"\( (sport|dport) = :(\d+) \)".*sleep ([\d.]+)/.exec(
      display,
    );
  if (!loop) return undefined;
  const [, times, state, dir, port, pause] = loop;
  const within = times && pause ? ` (at most ${Math.round(Number(times) * Number(pause) * 10) / 10} s)` : '';
  const what = / -t[a-zA-Z]*l[a-zA-Z]*H/.test(display)
    ? `something listens on port ${port}`
    : `a socket ${dir === 'sport' ? 'on local' : 'to remote'} port ${port} is in ${(state ?? 'some state').toUpperCase().replace(/-/g, '_')}`;
  return `waits until ${what}${within}`;
}

/** A command the step or its check ran: as typed, or, for a probe's wait loop, in words with the loop behind it. */
function actionItem(/** @type {any} */ a) {
  const words = probeWords(a.display);
  const who = a.during === 'check' ? 'Check, ' : '';
  const line = words
    ? el('details', { class: 'probe' }, [el('summary', {}, [`${who}${a.node}: ${words}`]), el('code', {}, [`${a.node}$ ${a.display}`])])
    : el('code', {}, [`${who ? '(Check) ' : ''}${a.node}${a.typed ? '$' : ':'} ${a.display}`]);
  return el('li', { 'data-during': a.during }, [
    line,
    a.output ? el('pre', {}, [a.output]) : undefined,
    a.exitCode ? el('span', { class: 'note' }, [` (exit ${a.exitCode})`]) : undefined,
  ]);
}

/** Paragraphs of a lab's prose (a blank line between them; other line breaks are where the YAML wrapped). */
function paragraphs(/** @type {string} */ text) {
  return text
    .split(/\n\s*\n/)
    .map((p) => p.replace(/\s*\n\s*/g, ' ').trim())
    .filter(Boolean)
    .map((p) => el('p', {}, withCode(p)));
}

/** Text with `commands` in backticks, as the lab files write them: the commands in <code>, without the marks. */
function withCode(/** @type {string} */ text) {
  return text.split(/`([^`]+)`/).map((part, i) => (i % 2 ? el('code', {}, [part]) : part));
}

/** @param {any} c a Check of the engine */
function checkItem(c) {
  return el('li', { 'data-status': c.passed ? 'met' : 'not met' }, [
    el('span', { class: 'verdict' }, [c.passed ? '✓ met' : '✗ not met']),
    el('span', { class: 'expected' }, [c.task ? `[task] ${c.expected}` : c.expected]),
    c.why ? el('span', { class: 'why' }, [c.why]) : undefined,
    !c.passed && c.seen?.length ? el('span', { class: 'seen' }, [c.seen.slice(0, 3).join('\n')]) : undefined,
  ]);
}

/** The walk (src/walk's WalkState), drawn; its choices become buttons that send their intents. */
function renderWalk(cur) {
  const w = cur.walk;
  const step = w.step;
  const walk = byId('walk');
  walk.dataset.step = step ? String(step.index + 1) : '0';
  walk.dataset.phase = w.phase;
  walk.setAttribute('aria-busy', String(w.phase === 'busy'));
  byId('step-number').textContent = `Lab ${w.lab.id}: ${w.lab.title}${step ? ` · step ${step.index + 1} of ${w.lab.steps}` : ''}`;
  byId('step-title').textContent = step?.title ?? w.lab.title;
  byId('busy').textContent = w.phase === 'busy' ? `${w.doing ?? 'working'}…` : '';
  const key = `${cur.slug} ${step?.index} ${w.phase}`;
  byId('explain').replaceChildren(...(step ? paragraphs(step.explain) : paragraphs(w.lab.intro)));
  byId('commands').replaceChildren(...(step?.actions ?? []).map(actionItem));
  // The prediction: lettered choices, none chosen, before anything runs.
  const p = step?.prediction;
  const asking = w.phase === 'predict' && !!p;
  show(byId('predict'), asking);
  if (asking && page.stepKey !== key) {
    byId('predict-q').textContent = p.question;
    byId('predict-choices').replaceChildren(
      ...p.choices.map((/** @type {any} */ c) =>
        el('label', { class: 'choice' }, [
          el('input', { type: 'radio', name: 'choice', value: c.key, disabled: readOnly }),
          ` ${c.key}) ${c.text}`,
        ]),
      ),
    );
  }
  const answer = byId('answer');
  show(answer, !!p?.answer);
  if (p?.answer) {
    const chosen = p.choices.find((/** @type {any} */ c) => c.key === p.chosen);
    answer.replaceChildren(
      el('p', {}, [`You predicted: ${chosen ? chosen.text : '?'} `, el('strong', {}, [p.right ? '✓ right' : '✗ not quite'])]),
      el('p', {}, [el('strong', {}, ['Answer: ']), `${p.answer}: ${p.why}`]),
    );
  }
  const task = step?.task;
  show(byId('task'), !!task);
  byId('task-text').replaceChildren(
    ...(task ? paragraphs(task.prompt) : []),
    ...(task?.outcome
      ? [el('p', { class: 'outcome' }, [task.outcome === 'done' ? '✓ task done' : 'done for you: the task counts as not done'])]
      : []),
  );
  // Once the task is over, there is no Check to press.
  show(byId('task-how'), !!task && !task.outcome);
  const last = task?.lastCheck;
  const hints = [...(task?.hintsShown ?? []), ...(last?.hint && !task?.hintsShown.includes(last.hint) ? [last.hint] : [])];
  show(byId('hint-text'), hints.length > 0);
  byId('hint-text').replaceChildren(...hints.map((h) => el('p', {}, ['Hint: ', ...withCode(h)])));
  const checks = [...(last ? last.checks : []), ...(step?.checks ?? [])];
  show(byId('checks-title'), checks.length > 0 || !!last);
  byId('checks-title').textContent = last
    ? `Checks (attempt ${last.attempt}${last.by === 'lab check' ? ', by lab check' : ''}: ${last.passed ? 'passed' : 'not yet'})`
    : 'Checks';
  byId('checks').replaceChildren(
    ...checks.map(checkItem),
    ...(step?.now ?? []).map((/** @type {any} */ n) =>
      el('li', { 'data-status': n.holds ? 'met' : 'not met' }, [
        el('span', { class: 'verdict' }, [n.holds ? '✓ met now' : '✗ not met now']),
        el('span', { class: 'expected' }, [n.expected]),
        !n.holds && n.seen.length ? el('span', { class: 'seen' }, [n.seen.slice(0, 3).join('\n')]) : undefined,
      ]),
    ),
  );
  // What the student can do now: the walk's own choices (a letter goes through the form above; a shell is the
  // terminal beside; quit is the Stop button).
  byId('actions').replaceChildren(
    ...(readOnly ? [] : w.choices)
      .filter((/** @type {any} */ c) => !['answer', 'quit'].includes(c.intent.type))
      .map((/** @type {any} */ c) => {
        const b = el('button', { type: 'button', 'data-intent': c.intent.type, 'data-view': c.intent.view ?? c.intent.node }, [c.label]);
        b.addEventListener('click', () => {
          if (c.intent.type === 'shell') {
            select(c.intent.node);
            page.terms.get(c.intent.node)?.focus();
            return;
          }
          void act(() => post('/api/me/walk', c.intent));
        });
        return b;
      }),
  );
  const view = byId('view');
  show(view, !!w.view);
  view.replaceChildren(
    ...(w.view?.machines ?? []).flatMap((/** @type {any} */ m) =>
      m.commands.map((/** @type {any} */ c) => el('div', {}, [el('code', {}, [`${m.node}$ ${c.command}`]), el('pre', {}, [c.output])])),
    ),
  );
  const sc = w.score;
  byId('score').textContent = `Score: ${scoreWords(sc)}`;
  show(byId('notes'), !!w.ended?.notes?.length);
  byId('notes').replaceChildren(...(w.ended?.notes ?? []).map((/** @type {string} */ n) => el('li', {}, [n])));
  page.stepKey = key;
  // A new check's result (its hint, then its checks) sits under the step's buttons, below the fold of the walk's
  // panel at 1280x800: brought into view in that panel, where the student who pressed Check is looking.
  const checkKey = last ? `${cur.slug} ${step?.index} ${last.attempt}` : '';
  if (last && checkKey !== page.checkKey) {
    const target = hints.length ? byId('hint-text') : byId('checks-title');
    walk.scrollTop = Math.max(0, target.offsetTop - 8);
  }
  page.checkKey = checkKey;
}

/** A terminal per machine, tabs to choose; made once per lab, kept across state updates. */
function ensureTerminals(cur) {
  const key = `${cur.slug} ${cur.nodes.map((/** @type {any} */ n) => `${n.node}=${n.addresses.join(',')}`).join(' ')}`;
  if (key === page.termKey) return;
  disposeTerminals();
  page.termKey = key;
  const tabs = byId('term-tabs');
  const boxes = byId('term-boxes');
  for (const n of cur.nodes) {
    const id = `term-${n.node}`;
    const tab = el(
      'button',
      { type: 'button', role: 'tab', id: `tab-${n.node}`, 'aria-controls': id, 'aria-selected': 'false', 'data-node': n.node },
      [`${n.node} `, el('small', {}, [n.addresses.join(', ')])],
    );
    tab.addEventListener('click', () => select(n.node));
    tab.addEventListener('keydown', (e) => {
      const nodes = cur.nodes.map((/** @type {any} */ x) => x.node);
      const i = nodes.indexOf(n.node);
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        const next = nodes[(i + (e.key === 'ArrowRight' ? 1 : nodes.length - 1)) % nodes.length];
        select(next);
        byId(`tab-${next}`).focus();
      }
    });
    tabs.append(tab);
    const box = el('div', { class: 'term', id, role: 'tabpanel', 'aria-labelledby': `tab-${n.node}`, 'data-node': n.node });
    boxes.append(box);
    const url = readOnly
      ? `/ws/watch?student=${encodeURIComponent(student ?? '')}&node=${encodeURIComponent(n.node)}`
      : `/ws/term?node=${encodeURIComponent(n.node)}`;
    const view = new TermView(box, {
      url,
      readOnly,
      label: `Terminal on the ${n.node}${readOnly ? ' (read-only)' : ''}`,
      onStatus: (s) => box.setAttribute('data-status', s),
      onLeave: () => /** @type {HTMLElement | null} */ (byId('actions').querySelector('button') ?? byId('walk')).focus(),
    });
    view.onCtrl = (on) => byId('keys').querySelector('[data-key="ctrl"]')?.setAttribute('aria-pressed', String(on));
    page.terms.set(n.node, view);
  }
  select(page.active && page.terms.has(page.active) ? page.active : cur.nodes[0].node);
}

/** @param {string} node */
function select(node) {
  page.active = node;
  for (const [n, view] of page.terms) {
    const on = n === node;
    byId(`tab-${n}`).setAttribute('aria-selected', String(on));
    byId(`tab-${n}`).tabIndex = on ? 0 : -1;
    show(byId(`term-${n}`), on);
    if (on) view.fitNow();
  }
}

function disposeTerminals() {
  for (const t of page.terms.values()) t.dispose();
  page.terms.clear();
  page.termKey = '';
  byId('term-tabs').replaceChildren();
  byId('term-boxes').replaceChildren();
}

/** The live view comes on the page's one event stream (a browser holds at most six per server). */
function listenLive(/** @type {EventSource} */ es) {
  es.addEventListener('view', (e) => {
    page.view = JSON.parse(/** @type {MessageEvent} */ (e).data);
    renderSides(byId('sides'), page.view.sides, page.diagram);
    drawLadder();
  });
  es.addEventListener('ladder', (e) => {
    page.ladder = JSON.parse(/** @type {MessageEvent} */ (e).data);
    drawLadder();
  });
  // The ladder is drawn to its box's width: drawn again when that changes (the window, or the panel shown).
  const box = byId('ladder');
  let width = box.clientWidth;
  new ResizeObserver(() => {
    if (box.clientWidth !== width) {
      width = box.clientWidth;
      drawLadder();
    }
  }).observe(box);
}

function drawLadder() {
  if (!page.view || !page.ladder) return;
  /** @type {Record<string, string[]>} */
  const addresses = {};
  for (const s of page.view.sides) addresses[s.node] = s.addresses;
  renderLadder(byId('ladder'), byId('ladder-head'), page.ladder, addresses, { follow: true });
  byId('wire-count').textContent = `${page.ladder.segments} segment${page.ladder.segments === 1 ? '' : 's'}`;
}

function render(st) {
  page.state = st;
  byId('title').textContent = st.class.title;
  document.title = `${st.class.title} · tcplab`;
  byId('who').textContent = readOnly
    ? `watching ${st.student.name} (${st.student.id}), read-only`
    : `${st.student.name} (${st.student.id})`;
  notice(st.notice ?? st.error);
  renderLabs(st);
  const cur = st.current;
  const running = cur?.status === 'running';
  show(byId('stop'), !!cur && !readOnly);
  byId('stop').textContent = cur?.status === 'queued' ? 'Leave the queue' : 'Stop my lab';
  show(byId('walk'), running);
  show(byId('terminals'), running);
  show(byId('live'), running);
  document.body.dataset.lab = running ? 'running' : (cur?.status ?? 'none');
  if (running) {
    setStatus('live', `Lab ${cur.lab.id} running`);
    renderWalk(cur);
    ensureTerminals(cur);
    const idle = cur.idle;
    show(byId('idle'), !!idle?.warning && !readOnly);
    if (idle?.warning)
      byId('idle-text').textContent =
        `Nothing typed or clicked for a while: your lab stops at ${new Date(idle.stopAt).toLocaleTimeString()} unless you carry on.`;
  } else {
    disposeTerminals();
    page.view = undefined;
    page.ladder = undefined;
    show(byId('idle'), false);
    if (cur?.status === 'starting') setStatus('connecting', `Starting Lab ${cur.lab?.id ?? ''}…`);
    else if (cur?.status === 'queued')
      setStatus('connecting', `The host is full (${cur.running} of ${cur.limit} labs running): you are number ${cur.place} in the queue`);
    else setStatus('live', 'ready');
  }
}

function wire() {
  byId('predict').addEventListener('submit', (e) => {
    e.preventDefault();
    const chosen = /** @type {HTMLInputElement | null} */ (byId('predict').querySelector('input[name="choice"]:checked'));
    if (!chosen) {
      byId('busy').textContent = 'Choose a letter first: nothing is chosen for you.';
      return;
    }
    void act(() => post('/api/me/walk', { type: 'answer', key: chosen.value }));
  });
  byId('stop').addEventListener('click', () => act(() => post('/api/me/stop')));
  byId('notice-ok').addEventListener('click', () => (readOnly ? notice(undefined) : act(() => post('/api/me/dismiss'))));
  byId('idle-ok').addEventListener('click', () => act(() => post('/api/me/touch')));
  const keys = byId('keys');
  keys.addEventListener('click', (e) => {
    const b = /** @type {HTMLElement} */ (e.target).closest('button');
    const view = page.active ? page.terms.get(page.active) : undefined;
    if (!b || !view) return;
    const key = b.dataset.key;
    if (key === 'ctrl') view.setCtrl(!view.ctrl);
    else if (key && KEYS[key]) view.send(KEYS[key]);
    if (b.id !== 'paste' && b.id !== 'reader') view.focus();
  });
  byId('copy').addEventListener('click', async () => {
    const view = page.active ? page.terms.get(page.active) : undefined;
    const text = view?.copy() ?? '';
    if (!text) return void (byId('busy').textContent = 'Select some text in the terminal first.');
    await navigator.clipboard?.writeText(text).catch(() => undefined);
  });
  byId('paste').addEventListener('click', async () => {
    const view = page.active ? page.terms.get(page.active) : undefined;
    const text = await navigator.clipboard?.readText?.().catch(() => undefined);
    if (text && view) return view.send(text);
    // Without clipboard access (plain http, or refused): a box to paste into.
    show(byId('paste-box'), true);
    byId('paste-text').focus();
  });
  byId('paste-send').addEventListener('click', () => {
    const box = /** @type {HTMLTextAreaElement} */ (byId('paste-text'));
    const view = page.active ? page.terms.get(page.active) : undefined;
    view?.send(box.value);
    box.value = '';
    show(byId('paste-box'), false);
    view?.focus();
  });
  byId('reader').addEventListener('click', () => {
    const on = byId('reader').getAttribute('aria-pressed') !== 'true';
    byId('reader').setAttribute('aria-pressed', String(on));
    for (const t of page.terms.values()) t.screenReader(on);
  });
  if (readOnly) for (const b of keys.querySelectorAll('button')) /** @type {HTMLButtonElement} */ (b).disabled = true;
}

async function main() {
  wire();
  page.diagram = await (await fetch('/ui/diagram.svg')).text();
  const first = await getJson(readOnly ? `${base}/state` : '/api/me');
  setCsrf(first.csrf);
  render(first.state);
  const es = new EventSource(`${base}/events`);
  es.addEventListener('state', (e) => render(JSON.parse(/** @type {MessageEvent} */ (e).data)));
  listenLive(es);
  es.addEventListener('error', () => {
    if (es.readyState === EventSource.CLOSED) setStatus('lost', 'no connection: reload the page');
    else setStatus('lost', 'reconnecting…');
  });
}

main().catch((e) => {
  setStatus('lost');
  notice(`the page could not start: ${e instanceof Error ? e.message : String(e)}`);
});
