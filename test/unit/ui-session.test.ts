// A live page's session against a recorded lab: it sends views as the lab changes, follows the walk from step
// to step, and ends, saying why on the page, when the lab goes away or when it is stopped.
import { describe, expect, it } from 'vitest';
import type { NodeName } from '../../src/lab/schema.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { planLab } from '../../src/plan/plan.js';
import type { NodeSnapshot } from '../../src/grade/grade.js';
import { LabRecorder } from '../../src/trace/recorder.js';
import { movesWithTime, pollDelay, runSession, type Watch } from '../../src/ui/session.js';
import type { Timeline } from '../../src/trace/timeline.js';
import type { UiView, Walk } from '../../src/ui/view.js';
import type { Look } from '../../src/ui/watch.js';
import { loadCaptureFixture } from '../helpers/capture-fixtures.js';

const lab = resolveLab('2').lab;
const f = loadCaptureFixture('direct');

/** A watch that replays the fixture one round per look; after `rounds` looks the lab is gone. */
function recorded(rounds: number): Watch & { stepStarts: number } {
  const rec = new LabRecorder(f.topology, f.addresses);
  const plan = planLab({ lab, instance: 'abcd1234', image: 'img', subnets: ['198.19.118.0/24'] });
  let i = 0;
  let now: number | undefined;
  const w = {
    plan,
    nodeAddresses: f.addresses,
    captureOff: [] as NodeName[],
    droppedSegments: 0,
    lastChange: 0,
    stepStarts: 0,
    get now() {
      return now;
    },
    stepBegins() {
      w.stepStarts++;
    },
    async look(): Promise<Look> {
      const snapshots = new Map<NodeName, NodeSnapshot>();
      const failed = new Map<NodeName, string>();
      for (const n of ['client', 'server'] as const) {
        const a = i < rounds ? f.answers[n]![i] : undefined;
        if (a === undefined) {
          failed.set(n, 'No such container');
          continue;
        }
        const o = rec.ingest(n, a.look, a.from);
        if (o.clock) now = Math.max(now ?? 0, o.clock);
        snapshots.set(n, { node: n, at: i, sockets: a.look.sockets, ...(o.counters ? { counters: o.counters } : {}) });
      }
      i++;
      return { snapshots, failed };
    },
    timeline: () => rec.timeline(),
    present: async () => i <= rounds,
    wake: async () => {},
  };
  return w;
}

describe('a live page session', () => {
  it('sends a view when something changed, follows the walk, and ends when the lab is gone', async () => {
    const views: UiView[] = [];
    const watch = recorded(12);
    let step = 1;
    let looks = 0;
    const walk = (): Walk => ({ kind: 'walking', stepIndex: looks++ < 4 ? step : (step = 2) });
    const end = await runSession({
      watch,
      lab,
      slug: lab.slug,
      walk,
      publish: (v) => views.push(structuredClone(v)),
      signal: new AbortController().signal,
      pollMs: 1,
      idlePollMs: 1,
    });
    expect(end).toEqual({ reason: 'gone', message: expect.stringMatching(/^the lab is gone: instance abcd1234 was stopped or removed/) });
    // One step change seen: from then on, segment checks count from it.
    expect(watch.stepStarts).toBe(1);
    expect(views.length).toBeGreaterThan(2);
    expect(views.length).toBeLessThanOrEqual(13);
    for (let i = 1; i < views.length; i++) expect(JSON.stringify(views[i])).not.toBe(JSON.stringify(views[i - 1]));
    expect(views[0]!.step!.id).toBe('listen');
    expect(views.at(-2)!.step!.id).toBe('connect-dropped');
    expect(views.at(-1)).toMatchObject({ status: 'gone', message: end.reason === 'gone' ? end.message : '' });
  });

  it('stops when told, and says the lab is still running', async () => {
    const views: UiView[] = [];
    const ac = new AbortController();
    const end = await runSession({
      watch: recorded(100),
      lab,
      slug: lab.slug,
      walk: () => ({ kind: 'finished', stepIndex: 7 }),
      publish: (v) => {
        views.push(v);
        if (views.length === 3) ac.abort('SIGINT');
      },
      signal: ac.signal,
      pollMs: 1,
      idlePollMs: 1,
    });
    expect(end).toEqual({ reason: 'stopped' });
    expect(views.at(-1)).toMatchObject({ status: 'stopped', message: 'lab ui was stopped; the lab itself is still running' });
  });

  it('once idle, waits long only while nothing on the page moves with time; the walk moving on ends the wait', async () => {
    const watch = recorded(12);
    const asked: number[] = [];
    let wakes = 0;
    let subscribed = 0;
    let poke = () => {};
    const views: UiView[] = [];
    const look = watch.look.bind(watch);
    const end = await runSession({
      watch: {
        ...watch,
        timeline: watch.timeline,
        present: watch.present,
        look: async (commands, opts) => {
          asked.push(opts?.waitMs ?? 0);
          poke(); // the walk moves on while this look waits
          return look(commands, opts);
        },
        wake: async () => {
          wakes++;
        },
      },
      lab,
      slug: lab.slug,
      walk: () => ({ kind: 'walking', stepIndex: 2 }),
      publish: (v) => views.push(structuredClone(v)),
      signal: new AbortController().signal,
      pollMs: 1,
      idlePollMs: 7,
      quietPollMs: 11,
      walkChanges: (p) => {
        subscribed++;
        poke = p;
        p(); // before any look: nothing waits, nothing to wake
        return () => subscribed--;
      },
    });
    expect(end.reason).toBe('gone');
    // Subscribed for the session's life; a poke wakes the agents' looks when one waits longer than pollMs
    // (every look here: idle from the start), and not before the first.
    expect(subscribed).toBe(0);
    expect(wakes).toBe(asked.length);
    // Idle from the start (nothing changed yet): the first look waits the short interval; each later one the
    // long interval exactly when the view before it had nothing that moves with time.
    expect(asked[0]).toBe(7);
    expect(asked).toContain(11);
    expect(asked).toContain(7);
  });

  it('a page moves with time while a timer counts down, an arrow fades or a segment is in flight', () => {
    const view = (sockets: { timer?: string }[], recent: unknown[] = []) => ({ sides: [{ sockets, recent }] }) as unknown as UiView;
    const none = { transmissions: [] } as unknown as Timeline;
    const flying = { transmissions: [{ fate: 'in-flight' }] } as unknown as Timeline;
    expect(movesWithTime(view([{}]), none)).toBe(false);
    expect(movesWithTime(view([{ timer: 'timewait 58s' }]), none)).toBe(true);
    expect(movesWithTime(view([{}], [{ edge: 'x' }]), none)).toBe(true);
    expect(movesWithTime(view([{}]), flying)).toBe(true);
  });

  it('waits in the agents for at most a quarter second while the lab moves, 5 s once nothing changed for 5 s', () => {
    const t = 1_000_000;
    // A look that took 40 ms, something new 1 s ago: the next one 210 ms later.
    expect(pollDelay(t, t - 40, t - 1000)).toBe(210);
    // Nothing new for 6 s: a wait of up to 5 s (a change ends it at once).
    expect(pollDelay(t, t - 40, t - 6000)).toBe(4960);
    // A look slower than the interval: the next one at once.
    expect(pollDelay(t, t - 400, t)).toBeLessThan(0);
  });
});
