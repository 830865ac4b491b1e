// One live page's session: look at the lab at a steady rate, turn each look into a view, hand changed views
// to the server; stop when told (Ctrl-C) or when the lab goes away, and say which on the page.
import createDebug from 'debug';
import type { Lab } from '../lab/schema.js';
import { buildView, type UiView, type Walk } from './view.js';
import type { LabWatch, Look } from './watch.js';
import type { Timeline } from '../trace/timeline.js';

const log = createDebug('lab:ui');

/** At most four views a second while the lab moves: a state a person can see come and go. */
const POLL_MS = 250;
/** Once nothing has changed for IDLE_AFTER_MS, a look waits this long for a change before it answers anyway.
 *  A look waits in the node's agent (no process, no fork), which answers the moment a segment, a state or a
 *  command changes: an idle lab kept for a class costs next to nothing, and nothing is seen later for it. */
const IDLE_POLL_MS = 5000;
const IDLE_AFTER_MS = 5000;
/** Once idle, and with nothing on the page that moves with time alone (a socket's timer counting down, an arrow
 *  of the diagram fading, a segment whose fate is not yet decided), a look waits this long. Anything a check
 *  can see ends the wait in the agent at once, and the walk moving on ends it through `walkChanges`: what is
 *  left to this interval is only what neither tells (the walk's process dying without a word). */
const QUIET_POLL_MS = 30_000;
/** Rounds in a row in which the engine could not even list the lab's containers before the page gives up. */
const MAX_ENGINE_FAILURES = 8;

/** What a session needs of a LabWatch (tests give it a recorded lab). */
export type Watch = Pick<
  LabWatch,
  | 'plan'
  | 'nodeAddresses'
  | 'now'
  | 'captureOff'
  | 'droppedSegments'
  | 'stepBegins'
  | 'look'
  | 'timeline'
  | 'present'
  | 'lastChange'
  | 'wake'
>;

interface SessionOptions {
  watch: Watch;
  lab?: Lab;
  slug: string;
  /** Where the walk is now (re-read every round: the walk moves on in another process). */
  walk: () => Walk;
  publish: (view: UiView) => void;
  signal: AbortSignal;
  pollMs?: number;
  idlePollMs?: number;
  quietPollMs?: number;
  /** Subscribes to "the walk may have moved" (its state written in another process, a step in this one); returns
   *  the unsubscribe. Each call ends the looks that wait, so the page follows the walk at once, however long
   *  they would have waited. */
  walkChanges?: (poke: () => void) => () => void;
}

type SessionEnd = { reason: 'stopped' } | { reason: 'gone' | 'unreachable'; message: string };

export async function runSession(opts: SessionOptions): Promise<SessionEnd> {
  const { watch } = opts;
  const pollMs = opts.pollMs ?? POLL_MS;
  const idlePollMs = opts.idlePollMs ?? IDLE_POLL_MS;
  const quietPollMs = opts.quietPollMs ?? QUIET_POLL_MS;
  let stepChangedAt = 0;
  let lastStep: string | undefined;
  let stepStartSeen = false;
  let lastJson = '';
  let engineFailures = 0;
  let last: UiView | undefined;

  const make = (walk: Walk, look: Look, status: UiView['status'], message?: string) =>
    buildView({
      instance: watch.plan.instance,
      topology: watch.plan.topology,
      vars: watch.plan.vars,
      addresses: watch.nodeAddresses,
      ...(opts.lab ? { lab: opts.lab } : {}),
      slug: opts.slug,
      walk,
      stepStartSeen,
      snapshots: look.snapshots,
      timeline: watch.timeline(),
      ...(watch.now !== undefined ? { now: watch.now } : {}),
      capture: { off: watch.captureOff, dropped: watch.droppedSegments },
      status,
      ...(message ? { message } : {}),
    });

  const send = (view: UiView) => {
    last = view;
    const json = JSON.stringify(view);
    if (json === lastJson) return;
    lastJson = json;
    opts.publish(view);
  };

  const finish = (end: SessionEnd): SessionEnd => {
    if (last) {
      const message = end.reason === 'stopped' ? 'lab ui was stopped; the lab itself is still running' : end.message;
      send({ ...last, status: end.reason === 'stopped' ? 'stopped' : 'gone', message });
    }
    return end;
  };

  // Only a long wait is worth ending: while the lab moves, the next look comes within pollMs anyway (and a walk
  // that prints a lot would otherwise send a wake per line).
  let waiting = 0;
  const unsubscribe = opts.walkChanges?.(() => {
    if (waiting > pollMs) void watch.wake();
  });
  try {
    return await loop();
  } finally {
    unsubscribe?.();
  }

  async function loop(): Promise<SessionEnd> {
    while (!opts.signal.aborted) {
      const started = Date.now();
      const walk = opts.walk();
      const stepKey = walk.kind === 'unknown' ? 'unknown' : `${walk.kind} ${walk.stepIndex}`;
      if (lastStep !== undefined && stepKey !== lastStep) {
        // The walk moved on while we watched: segment checks can count from here.
        watch.stepBegins();
        stepStartSeen = walk.kind !== 'unknown';
        stepChangedAt = Date.now();
      }
      lastStep = stepKey;
      const step = opts.lab && walk.kind !== 'unknown' ? opts.lab.steps[walk.stepIndex] : undefined;
      const commands = [...(step?.task?.expect ?? []), ...(step?.expect ?? [])].flatMap((e) => (e.command ? [e.command.name] : []));
      // Wait in the agents for a change, as long as the pace allows: the walk's moves in another process are
      // read each round, and a step's commands change the lab, which ends the wait.
      const idleMs = last && !movesWithTime(last, watch.timeline()) ? quietPollMs : idlePollMs;
      const waitMs = Math.max(0, pollDelay(Date.now(), Date.now(), Math.max(watch.lastChange, stepChangedAt), pollMs, idleMs));
      waiting = waitMs;
      const look = await watch.look([...new Set(commands)], { waitMs });
      if (opts.signal.aborted) break;
      if (look.failed.size) {
        let present: boolean;
        try {
          present = await watch.present();
          engineFailures = 0;
        } catch (e) {
          engineFailures++;
          log('cannot list the lab: %s', (e as Error).message);
          if (engineFailures >= MAX_ENGINE_FAILURES)
            return finish({ reason: 'unreachable', message: `the Docker engine cannot be reached: ${(e as Error).message}` });
          present = true;
        }
        if (!present)
          return finish({
            reason: 'gone',
            message: `the lab is gone: instance ${watch.plan.instance} was stopped or removed (its walk ended, or \`lab stop\`)`,
          });
        log('a look failed while the lab is still there: %o', Object.fromEntries(look.failed));
      }
      send(make(walk, look, 'live'));
      // Never more than one view per pollMs, however often the lab changes.
      const wait = pollMs - (Date.now() - started);
      if (wait > 0) await sleep(wait, opts.signal);
    }
    return finish({ reason: 'stopped' });
  }
}

/** Does the page change with time alone: a socket's timer shown counting down, an arrow of a diagram that fades
 *  (taken in the last RECENT_MS), a segment still in flight (lost or not is decided by time)? */
export function movesWithTime(view: UiView, timeline: Timeline): boolean {
  return (
    view.sides.some((side) => side.recent.length > 0 || side.sockets.some((s) => s.timer !== undefined)) ||
    timeline.transmissions.some((t) => t.fate === 'in-flight')
  );
}

/** How long to wait before the next look, which began at `started`: the short interval while something changed in
 *  the last IDLE_AFTER_MS (`lastActivity`), the long one after. */
export function pollDelay(now: number, started: number, lastActivity: number, pollMs = POLL_MS, idlePollMs = IDLE_POLL_MS): number {
  const idle = now - lastActivity > IDLE_AFTER_MS;
  return (idle ? idlePollMs : pollMs) - (now - started);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
