// The instructor's dashboard: one row per student, live (an event stream), stuck students first; watch a
// student's page and terminals read-only, stop a lab; the gradebook from live work or from a replay of the
// recorded commands, in the formats `lab grade --submissions` writes.
/* global window, EventSource */
import { byId, el, getJson, post, setCsrf } from './api.js';

/** @param {number | undefined} s */
function duration(s) {
  if (s === undefined) return '';
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** Each lab's number by its slug (from /api/class): the dashboard names labs as the Lab column does. */
const labNumbers = new Map();

/** @param {any[]} rows */
function renderRows(rows) {
  const sorted = [...rows].sort((a, b) => Number(!!b.stuck) - Number(!!a.stuck));
  const body = byId('row-body');
  body.replaceChildren(
    ...sorted.map((r) => {
      const watch = el(
        'a',
        { href: `/watch/${encodeURIComponent(r.id)}`, target: '_blank', rel: 'noopener', class: 'button', 'aria-label': `Watch ${r.name}` },
        ['Watch'],
      );
      const stop = el('button', { type: 'button', disabled: r.status === 'none', 'aria-label': `Stop ${r.name}'s lab` }, ['Stop lab']);
      stop.addEventListener('click', async () => {
        if (!window.confirm(`Stop ${r.name}'s lab? Their progress is kept.`)) return;
        await post(`/api/class/students/${encodeURIComponent(r.id)}/stop`).catch((e) => (byId('grade-status').textContent = e.message));
      });
      const lab = r.lab
        ? `Lab ${r.lab.id}${r.status === 'queued' ? ` (queued, #${r.queuePlace})` : r.status === 'starting' ? ' (starting)' : ''}`
        : '—';
      return el('tr', { 'data-student': r.id, 'data-status': r.status, class: r.stuck ? 'stuck' : '' }, [
        el('th', { scope: 'row', class: 'student' }, [
          // A long name (up to 60 characters) is cut with an ellipsis; the whole of it is the tooltip.
          el('span', { class: 'name', title: r.name }, [r.name]),
          ' ',
          el('small', {}, [r.id]),
          r.online ? el('span', { class: 'online', title: 'page open' }, [' ●']) : undefined,
        ]),
        el('td', {}, [lab]),
        el('td', {}, [r.step ? `${r.step.number}/${r.step.total} ${r.step.title}` : '']),
        el('td', { class: 'tasks' }, [r.tasks ? `${r.tasks.done}/${r.tasks.total}` : '']),
        el('td', {}, [String(r.attempts)]),
        el('td', {}, [duration(r.onStepS)]),
        // None asked yet is not "0/0" (which reads as a verdict).
        el('td', {}, [r.predictions?.asked ? `${r.predictions.right}/${r.predictions.asked}` : '']),
        el('td', { class: 'stuck-cell' }, [r.stuck ? `stuck: ${r.stuck}` : '']),
        el('td', { class: 'completed', title: r.completed.join(', ') }, [
          r.completed.map((/** @type {string} */ slug) => (labNumbers.has(slug) ? `Lab ${labNumbers.get(slug)}` : slug)).join(', '),
        ]),
        el('td', {}, [watch, ' ', stop]),
      ]);
    }),
  );
  const running = rows.filter((r) => r.status === 'running').length;
  const queued = rows.filter((r) => r.status === 'queued').length;
  const stuck = rows.filter((r) => r.stuck).length;
  byId('counts').textContent = `${rows.length} students · ${running} labs running · ${queued} waiting · ${stuck} stuck`;
}

function gradeLinks() {
  const slug = /** @type {HTMLSelectElement} */ (byId('grade-lab')).value;
  byId('csv').setAttribute('href', `/api/class/gradebook/${slug}.csv`);
  byId('junit').setAttribute('href', `/api/class/gradebook/${slug}.xml`);
  byId('replay-csv').setAttribute('href', `/api/class/gradebook/${slug}.csv?from=replay`);
  return slug;
}

async function main() {
  const cls = await getJson('/api/class');
  setCsrf(cls.csrf);
  byId('title').textContent = `${cls.title}: dashboard`;
  byId('meta').textContent = `${cls.joinCode ? `join code ${cls.joinCode} · ` : ''}at most ${cls.limits.runningLabs} labs at once`;
  for (const l of cls.labs) labNumbers.set(l.slug, l.id);
  const select = /** @type {HTMLSelectElement} */ (byId('grade-lab'));
  select.replaceChildren(...cls.labs.map((/** @type {any} */ l) => el('option', { value: l.slug }, [`Lab ${l.id}: ${l.title}`])));
  select.addEventListener('change', gradeLinks);
  gradeLinks();
  renderRows(cls.rows);
  byId('export').addEventListener('click', async () => {
    const r = await post(`/api/class/gradebook/${gradeLinks()}/export`).catch((e) => ({ error: e.message }));
    byId('grade-status').textContent = r.error ?? `Written to ${r.dir}`;
  });
  byId('replay').addEventListener('click', async () => {
    const r = await post(`/api/class/gradebook/${gradeLinks()}/replay`).catch((e) => ({ message: e.message }));
    byId('grade-status').textContent = r.message ?? r.state;
  });
  byId('stop-all').addEventListener('click', async () => {
    if (!window.confirm("Stop every student's lab? Their progress is kept.")) return;
    const r = await post('/api/class/stop-all').catch((e) => ({ error: e.message }));
    byId('grade-status').textContent = r.error ?? `Stopped ${r.stopped} lab${r.stopped === 1 ? '' : 's'}`;
  });
  const es = new EventSource('/api/class/events');
  es.addEventListener('open', () => {
    byId('status').dataset.status = 'live';
    byId('status').textContent = 'live';
  });
  es.addEventListener('rows', (e) => renderRows(JSON.parse(/** @type {MessageEvent} */ (e).data)));
  es.addEventListener('replay', (e) => {
    const r = JSON.parse(/** @type {MessageEvent} */ (e).data);
    byId('grade-status').textContent =
      `Replay of ${r.slug}: ${r.state}${r.message ? `: ${r.message}` : ''}${r.dir ? ` (written to ${r.dir})` : ''}`;
    byId('replay-csv').hidden = r.state !== 'done';
  });
  es.addEventListener('error', () => {
    byId('status').dataset.status = 'lost';
    byId('status').textContent = 'reconnecting…';
  });
}

main().catch((e) => {
  byId('status').dataset.status = 'lost';
  byId('status').textContent = `could not start: ${e instanceof Error ? e.message : String(e)}`;
});
