// The current step: its number, title and explanation, the task when it has one, and each of its checks as the
// lab's kernel shows it now, with a word for the verdict (met, not met, can't tell here) beside its colour.
import { byId, h } from './dom.js';

/** @typedef {{ node: string, expected: string, status: 'met' | 'not met' | 'unknown', seen: string[], why?: string, note?: string, task: boolean }} Check */
/** @typedef {{ number: number, total: number, id: string, title: string, explain: string[], task?: string[], checks: Check[] }} Step */

const VERDICT = { met: '✓ met', 'not met': '✗ not met', unknown: "? can't tell" };

/**
 * @param {Step | null} step
 * @param {{ kind: string, note: string }} walk
 */
export function renderStep(step, walk) {
  byId('walk').textContent = walk.note;
  const task = byId('task');
  if (!step) {
    byId('step-number').textContent = '';
    byId('step-title').textContent = walk.kind === 'unknown' ? 'The current step is not known here' : 'Before the first step';
    byId('explain').replaceChildren();
    task.hidden = true;
    byId('checks-title').hidden = true;
    byId('checks').replaceChildren();
    return;
  }
  byId('step-number').textContent = `Step ${step.number} of ${step.total}${walk.kind === 'finished' ? ' (the last)' : ''}`;
  byId('step-title').textContent = step.title;
  byId('explain').replaceChildren(...step.explain.map((p) => h('p', {}, [p])));
  task.hidden = !step.task;
  task.replaceChildren(...(step.task ?? []).map((p) => h('p', {}, [p])));
  byId('checks-title').hidden = step.checks.length === 0;
  byId('checks').replaceChildren(
    ...step.checks.map((c) =>
      h('li', { 'data-status': c.status }, [
        h('span', { class: 'verdict' }, [VERDICT[c.status]]),
        h('span', { class: 'expected' }, [c.task ? `[task] ${c.expected}` : c.expected]),
        c.why ? h('span', { class: 'why' }, [c.why]) : undefined,
        c.note ? h('span', { class: 'why' }, [c.note]) : undefined,
        c.seen.length ? h('span', { class: 'seen' }, [c.seen.slice(0, 3).join('\n')]) : undefined,
      ]),
    ),
  );
}
