// The hub of `lab serve` (JupyterHub's shape): it knows the students, their sessions and their labs; where
// labs run stays behind src/runtime. Per student: at most one running lab, its walk (src/walk's model, the same
// as `lab start`'s: this server renders it and sends it the page's intents), a terminal per machine that
// outlives its socket, and a live view (src/ui's, built only while somebody looks). A host is never asked for more labs than the class allows: the rest wait
// in a queue, in order, and are told their place. Everything a student did is written to the state directory
// as it happens, so a restart loses nothing; labs carry labels, and a restarted server finds and reattaches
// them (or removes them and says so).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import createDebug from 'debug';
import type { LoadedLab } from '../lab/load.js';
import type { Lab, NodeName } from '../lab/schema.js';
import { LABEL, type Plan } from '../plan/plan.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Instance } from '../engine/instance.js';
import { createInstance, newInstanceId } from '../engine/provision.js';
import { removeInstance } from '../engine/teardown.js';
import { LabError } from '../errors.js';
import { processOwner, STUDENT_ID } from '../identity.js';
import type { Check, StepResult } from '../grade/grade.js';
import { gradeSubmissions, type SubmissionResult } from '../submit/batch.js';
import { runSession } from '../ui/session.js';
import { LabWatch } from '../ui/watch.js';
import type { ClassConfig } from './class-file.js';
import { liveResult, submissionText, writeExports, type ExportedFiles } from './gradebook.js';
import type { StudentRecord, Store } from './store.js';
import { Terminal } from './terminal.js';
import { attachInstance, EngineRelay, WalkSession, type WalkEvent, type WalkIntent, type WalkState } from '../walk/session.js';
import { scoreWords, StateFiles, type RunningLab } from '../walk/state-files.js';

const log = createDebug('lab:serve');
/** A student on a task step this long, or with this many failed checks on it, is shown as stuck. */
const STUCK_MS = 10 * 60_000;
const STUCK_ATTEMPTS = 3;
const SWEEP_MS = 15_000;

export type Event = { event: string; data: unknown };
type Sink = (e: Event) => void;

interface Live {
  lab: Lab;
  file: string;
  instance: Instance;
  walk: WalkSession;
  files: StateFiles;
  /** When the current step began (for the dashboard's time on the step). */
  stepSince: number;
  /** The task checks of the current step that count (the one that passed, or the solution's, as not met). */
  taskChecks: Map<string, Check[]>;
  /** Checks of tasks tried in this run. */
  attempts: number;
  /** Stopped from outside the walk (the student's Stop, the instructor, idle): what to tell, once it has ended. */
  stopping?: { message: string; how: 'student' | 'notice' };
  terminals: Map<NodeName, Terminal>;
  /** Pages showing its live view (the student's, an instructor's). */
  viewers: Set<Sink>;
  watch?: { abort: AbortController; done: Promise<void> };
  latest: Map<string, string>;
  lastActivity: number;
  warned: boolean;
}

interface Student {
  rec: StudentRecord;
  live?: Live;
  starting?: { slug: string; since: number };
  queued?: { slug: string; at: number };
  /** Pages showing this student (their event streams): the student's own, and instructors watching; each
   *  also gets the live view while a lab runs (one stream per page: a browser holds six per host). */
  pages: Map<Sink, { watcher: boolean; unwatch?: () => void }>;
  error?: string;
}

interface ClassroomOptions {
  runtime: Runtime;
  config: ClassConfig;
  /** The labs offered, in order. */
  labs: LoadedLab[];
  image: string;
  store: Store;
  version: string;
}

interface DashboardRow {
  id: string;
  name: string;
  status: 'running' | 'starting' | 'queued' | 'none';
  queuePlace?: number;
  lab?: { id: number; slug: string; title: string };
  step?: { number: number; total: number; title: string; phase: string };
  tasks?: { done: number; total: number };
  attempts: number;
  onStepS?: number;
  predictions?: { right: number; asked: number };
  stuck?: string;
  completed: string[];
  online: boolean;
  idleS?: number;
}

export class Classroom {
  private readonly students = new Map<string, Student>();
  private readonly queue: string[] = [];
  private readonly teachers = new Set<Sink>();
  private readonly labs: Map<string, LoadedLab>;
  private readonly abort = new AbortController();
  private building = 0;
  /** Labs being built: a server that stops waits for them to be removed (never a half-built lab). */
  private readonly builds = new Set<Promise<void>>();
  /** Labs being stopped: a server that stops lets them finish. */
  private readonly stops = new Set<Promise<void>>();
  private readonly sweep: NodeJS.Timeout;
  private rowsTimer: NodeJS.Timeout | undefined;
  private replays = new Map<
    string,
    { state: 'running' | 'done' | 'failed'; message?: string; files?: ExportedFiles; results?: SubmissionResult[] }
  >();

  constructor(private readonly o: ClassroomOptions) {
    this.labs = new Map(o.labs.map((l) => [l.lab.slug, l]));
    for (const rec of o.store.loadStudents()) this.students.set(rec.id, { rec, pages: new Map() });
    for (const r of o.config.roster) {
      const s = this.students.get(r.id);
      if (!s) this.students.set(r.id, { rec: { id: r.id, name: r.name, via: 'roster', labs: {} }, pages: new Map() });
      else s.rec.name = r.name;
    }
    this.sweep = setInterval(() => void this.sweepIdle(), SWEEP_MS);
    this.sweep.unref();
  }

  get config(): ClassConfig {
    return this.o.config;
  }

  /** The owner label of this class's labs: which class, which student. */
  private ownerOf(student: string): string {
    return `tcplab-serve/${this.o.store.classId}/${student}`;
  }

  private get occupied(): number {
    let n = this.building;
    for (const s of this.students.values()) if (s.live) n++;
    return n;
  }

  /** The labs of the class, in order. */
  offered(): { id: number; slug: string; title: string }[] {
    return [...this.labs.values()].map(({ lab }) => ({ id: lab.id, slug: lab.slug, title: lab.title }));
  }

  // ---- students ----

  /** Does the student have a lab running now? */
  running(id: string): boolean {
    return !!this.students.get(id)?.live;
  }

  has(id: string): boolean {
    return this.students.has(id);
  }

  /** A student who joined with the code: a fresh id from their name, never one already taken. */
  joinWithName(name: string): StudentRecord {
    const clean = name
      .replace(/[\p{C}]/gu, '')
      .replace(/\s+/g, ' ')
      .trim()
      .slice(0, 60);
    if (!clean) throw new LabError('a name, please');
    const base =
      clean
        .normalize('NFKD')
        // "ó" is "o" and a combining accent: the accent goes, the letter stays (ana-lopez, not ana-lo-pez).
        .replace(/\p{M}+/gu, '')
        .replace(/[^A-Za-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .toLowerCase()
        .slice(0, 24) || 'student';
    let id: string;
    do id = `${base}-${newInstanceId().slice(0, 4)}`;
    while (this.students.has(id) || !STUDENT_ID.test(id));
    const rec: StudentRecord = { id, name: clean, via: 'code', joinedAt: new Date().toISOString(), labs: {} };
    this.students.set(id, { rec, pages: new Map() });
    this.o.store.saveStudent(rec);
    this.rowsChanged();
    return rec;
  }

  joined(id: string): void {
    const s = this.students.get(id);
    if (s && !s.rec.joinedAt) {
      s.rec.joinedAt = new Date().toISOString();
      this.save(s);
      this.rowsChanged();
    }
  }

  private get(id: string): Student {
    const s = this.students.get(id);
    if (!s) throw new LabError('no such student', undefined, 404);
    return s;
  }

  private save(s: Student): void {
    this.o.store.saveStudent(s.rec);
  }

  /** What a student's page shows (and what an instructor watching them sees). */
  state(id: string): unknown {
    const s = this.get(id);
    const live = s.live;
    const current = live
      ? {
          status: 'running',
          slug: live.lab.slug,
          lab: { id: live.lab.id, title: live.lab.title, intro: live.lab.intro },
          nodes: live.instance.plan.nodes.map((n) => ({ node: n.key, addresses: n.interfaces.map((i) => i.ip) })),
          walk: live.walk.state,
          idle: this.idleOf(live),
        }
      : s.starting
        ? {
            status: 'starting',
            slug: s.starting.slug,
            lab: this.labInfo(s.starting.slug),
            sinceS: Math.round((Date.now() - s.starting.since) / 1000),
          }
        : s.queued
          ? {
              status: 'queued',
              slug: s.queued.slug,
              lab: this.labInfo(s.queued.slug),
              place: this.queue.indexOf(id) + 1,
              running: this.occupied,
              limit: this.o.config.limits.runningLabs,
            }
          : undefined;
    return {
      student: { id: s.rec.id, name: s.rec.name },
      class: { title: this.o.config.title },
      labs: [...this.labs.values()].map(({ lab }) => {
        const r = s.rec.labs[lab.slug];
        const mine = s.live?.lab.slug === lab.slug;
        return {
          id: lab.id,
          slug: lab.slug,
          title: lab.title,
          summary: lab.summary,
          completed: !!r?.completed,
          score: r?.score,
          best: r?.best,
          inProgress: mine,
        };
      }),
      ...(current ? { current } : {}),
      ...(s.rec.notice ? { notice: s.rec.notice } : {}),
      ...(s.error ? { error: s.error } : {}),
    };
  }

  private labInfo(slug: string): { id: number; title: string } | undefined {
    const l = this.labs.get(slug)?.lab;
    return l ? { id: l.id, title: l.title } : undefined;
  }

  private idleOf(live: Live): { warnAt: number; stopAt: number; warning: boolean } {
    const stopAt = live.lastActivity + this.o.config.limits.idleMs;
    const warnAt = stopAt - this.o.config.limits.idleWarningMs;
    return { warnAt, stopAt, warning: Date.now() >= warnAt };
  }

  /** Tell the student's pages (and the dashboard) that something changed. */
  private changed(s: Student): void {
    if (s.pages.size) {
      const data = this.state(s.rec.id);
      for (const p of s.pages.keys()) p({ event: 'state', data });
    }
    this.rowsChanged();
  }

  /** A page of the student's opens its event stream. */
  subscribe(id: string, sink: Sink, watcher = false): () => void {
    const s = this.get(id);
    const entry: { watcher: boolean; unwatch?: () => void } = { watcher };
    s.pages.set(sink, entry);
    sink({ event: 'state', data: this.state(id) });
    if (s.live) entry.unwatch = this.watchLive(id, sink);
    this.rowsChanged();
    return () => {
      entry.unwatch?.();
      s.pages.delete(sink);
      this.rowsChanged();
    };
  }

  /** Seen something of the student's: the idle clock starts again. */
  touch(id: string): void {
    const s = this.students.get(id);
    if (!s?.live) return;
    s.live.lastActivity = Date.now();
    if (s.live.warned) {
      s.live.warned = false;
      this.changed(s);
    }
  }

  dismissNotice(id: string): void {
    const s = this.get(id);
    delete s.rec.notice;
    s.error = undefined;
    this.save(s);
    this.changed(s);
  }

  // ---- labs ----

  /** Start a lab for a student: at once if the host has room, else a place in the queue. */
  start(id: string, slug: string): void {
    const s = this.get(id);
    if (!this.labs.has(slug)) throw new LabError(`this class does not offer a lab '${slug}'`, undefined, 404);
    if (s.live || s.starting || s.queued) {
      const what = s.live?.lab.slug ?? s.starting?.slug ?? s.queued?.slug;
      throw new LabError(
        `you already have ${what === slug ? 'this lab' : `another lab (${what})`} ${s.queued ? 'waiting' : 'running'}`,
        'stop it first',
        409,
      );
    }
    s.error = undefined;
    delete s.rec.notice;
    s.queued = { slug, at: Date.now() };
    this.queue.push(id);
    this.changed(s);
    this.pump();
  }

  /** Start whoever is first in the queue while the host has room. */
  private pump(): void {
    while (this.queue.length && this.occupied < this.o.config.limits.runningLabs && this.building < this.o.config.limits.startsAtOnce) {
      const id = this.queue.shift()!;
      const s = this.students.get(id);
      if (!s?.queued) continue;
      const slug = s.queued.slug;
      s.queued = undefined;
      s.starting = { slug, since: Date.now() };
      this.building++;
      const b = this.build(s, slug).finally(() => {
        this.building--;
        this.builds.delete(b);
        if (!this.abort.signal.aborted) this.pump();
      });
      this.builds.add(b);
    }
    // Places in the queue moved: tell those still waiting.
    for (const qid of this.queue) {
      const q = this.students.get(qid);
      if (q) this.changed(q);
    }
  }

  private async build(s: Student, slug: string): Promise<void> {
    const { lab, file } = this.labs.get(slug)!;
    this.changed(s);
    try {
      const relay = new EngineRelay();
      const instance = await createInstance(this.o.runtime, lab, {
        image: this.o.image,
        emit: relay.emit,
        owner: this.ownerOf(s.rec.id),
        // Kept: `lab clean --stale` must not take a class's labs while the server restarts.
        keep: true,
        student: s.rec.id,
        signal: this.abort.signal,
        pollIntervalMs: 100,
      });
      const rec = (s.rec.labs[slug] ??= { slug, id: lab.id, title: lab.title, results: [], finished: false, completed: false, runs: 0 });
      rec.runs++;
      rec.startedAt = new Date().toISOString();
      rec.results = [];
      rec.finished = false;
      s.rec.current = { slug, instance: instance.id, plan: instance.plan, startedAt: rec.startedAt };
      s.starting = undefined;
      this.save(s);
      this.attachLive(s, lab, file, instance, relay);
      log('%s: lab %s ready (instance %s)', s.rec.id, slug, instance.id);
    } catch (e) {
      s.starting = undefined;
      s.error = this.abort.signal.aborted
        ? undefined
        : `Lab ${lab.id} could not start: ${(e as Error).message}. Nothing of it was left running; press Start to try again.`;
      log('%s: start of %s failed: %s', s.rec.id, slug, (e as Error).message);
      this.changed(s);
    }
  }

  /** The walk's own files for a student: a folder of theirs (src/walk/state-files.ts). */
  private filesOf(id: string): StateFiles {
    return new StateFiles(join(this.o.store.dir, 'students', id));
  }

  /** A lab comes to life for a student: the walk (new, or resumed from its record after a restart). */
  private attachLive(s: Student, lab: Lab, file: string, instance: Instance, relay: EngineRelay, record?: RunningLab): void {
    const files = this.filesOf(s.rec.id);
    const walk = new WalkSession({
      lab,
      file,
      instance,
      relay,
      store: files,
      owner: processOwner(),
      // The prediction's order and the variants are the student's.
      user: s.rec.id,
      student: s.rec.id,
      // Finished or quit, the walk removes the lab: the host has room for the next student.
      keep: false,
      // A page, not a command line: texts name the terminal and the Check button.
      presenceMs: 5000,
      attemptsMs: 1000,
      ...(record ? { record } : {}),
    });
    const live: Live = {
      lab,
      file,
      instance,
      walk,
      files,
      stepSince: Date.parse(record?.stepStartedAt ?? '') || Date.now(),
      taskChecks: new Map(),
      // Reattached after a restart: the checks tried so far, as the walk recorded them (every Check is).
      attempts: record ? Object.values(files.loadAttempts(instance.id)).reduce((n, a) => n + a.attempts, 0) : 0,
      terminals: new Map(),
      viewers: new Set(),
      latest: new Map(),
      lastActivity: Date.now(),
      warned: false,
    };
    s.live = live;
    walk.on((event, state) => this.walkEvent(s, live, event, state));
    for (const [sink, entry] of s.pages) entry.unwatch = this.watchLive(s.rec.id, sink);
    this.changed(s);
    void walk.start().catch((e: unknown) => log('%s: the walk could not start: %s', s.rec.id, (e as Error).message));
  }

  /** What the walk does, as the page and the gradebook need it. */
  private walkEvent(s: Student, live: Live, event: WalkEvent, state: WalkState): void {
    if (s.live !== live) return;
    const rec = s.rec.labs[live.lab.slug];
    if (event.type === 'step') {
      live.stepSince = Date.now();
      live.taskChecks.delete(event.step.id);
    } else if (event.type === 'task-checked') {
      live.attempts++;
      if (event.check.by === 'walk' && event.check.passed && state.step) live.taskChecks.set(state.step.id, event.check.checks);
    } else if (event.type === 'checks' && event.of === 'solution' && state.step)
      // The solution shows what right looks like; for the points it is the task not done.
      live.taskChecks.set(
        state.step.id,
        event.checks.map((c) => ({ ...c, passed: false })),
      );
    else if (event.type === 'phase' && event.phase === 'menu' && state.step && rec) {
      // The step is done: its checks (the task's that count, then the step's) for the scores.
      const step = state.step;
      const checks = [...(live.taskChecks.get(step.id) ?? []), ...step.checks];
      const result: StepResult = { id: step.id, title: step.title, checks, passed: checks.every((c) => c.passed) };
      rec.results = [...rec.results.filter((r) => r.id !== step.id), result];
      rec.score = state.score;
      this.save(s);
    } else if (event.type === 'ended') {
      void this.ended(s, live, event.ending);
      return;
    }
    this.changed(s);
  }

  /** The walk ended by itself: finished or quit (it removed the lab), or the lab went away from under it. */
  private async ended(s: Student, live: Live, ending: NonNullable<WalkState['ended']>): Promise<void> {
    const rec = s.rec.labs[live.lab.slug];
    if (rec) {
      rec.finished = ending.how === 'finished';
      rec.completed ||= ending.completed;
      rec.score = ending.score;
      rec.best = live.files.loadProgress()[live.lab.slug]?.best ?? ending.score;
    }
    if (live.stopping) return this.release(s, live, live.stopping.message, live.stopping.how);
    const score = scoreWords(ending.score);
    const message =
      ending.how === 'finished'
        ? `Lab ${live.lab.id} finished${ending.completed ? ' (completed)' : ''}. Score: ${score}. Its machines were removed.`
        : ending.how === 'gone'
          ? `Lab ${live.lab.id} is gone: ${ending.message ?? 'its machines were removed from outside'}. Your progress is kept; Start begins it again.`
          : `You left Lab ${live.lab.id}. Score: ${score}. Its machines were removed.`;
    await this.release(s, live, message, ending.how === 'gone' ? 'gone' : 'walk');
  }

  /** A walk intent from the student's page: the walk's own (src/walk/session.ts), refused there when it does not fit. */
  async intent(id: string, i: WalkIntent): Promise<void> {
    const s = this.get(id);
    if (!s.live) throw new LabError('no lab of yours is running', 'press Start first', 409);
    this.touch(id);
    await s.live.walk.send(i);
  }

  /** Stop a student's lab (theirs, the instructor's, idle): the walk ends as quit where it can (what was typed in
   *  a task is recorded, the score kept), or is let go in the middle of its work; the lab is removed. */
  async stop(id: string, why: 'student' | 'teacher' | 'idle'): Promise<void> {
    const s = this.get(id);
    if (s.queued) {
      s.queued = undefined;
      const i = this.queue.indexOf(id);
      if (i >= 0) this.queue.splice(i, 1);
      this.changed(s);
      this.pump();
      return;
    }
    const live = s.live;
    if (!live) return;
    const labName = `Lab ${live.lab.id}`;
    const message =
      why === 'idle'
        ? `${labName} was stopped after ${Math.round(this.o.config.limits.idleMs / 60_000)} minutes without a key typed or a button pressed. Your progress is kept; Start begins it again.`
        : why === 'teacher'
          ? `Your instructor stopped ${labName}. Your progress is kept.`
          : `You stopped ${labName}. Your progress is kept.`;
    if (live.stopping) return;
    live.stopping = { message, how: why === 'student' ? 'student' : 'notice' };
    const done = (async () => {
      const phase = live.walk.state.phase;
      // Quit where the walk can take it (what was typed in a task is recorded, the score kept, the lab removed;
      // its end releases the lab here); in the middle of its work, let it go and remove the lab.
      if (phase !== 'busy' && phase !== 'ended')
        await live.walk.send({ type: 'quit' }).catch((e: unknown) => log('%s: quit: %s', id, (e as Error).message));
      else {
        live.walk.detach();
        live.files.forgetRunning(live.instance.id);
      }
      await this.release(s, live, message, live.stopping!.how);
    })();
    this.stops.add(done);
    await done.finally(() => this.stops.delete(done));
  }

  /** The lab is over for the student: its terminals and views told, the machines removed, the next one in. */
  private async release(s: Student, live: Live, message: string, how: 'student' | 'notice' | 'walk' | 'gone'): Promise<void> {
    if (s.live !== live) return;
    s.live = undefined;
    live.walk.detach();
    for (const t of live.terminals.values()) t.end(message);
    live.watch?.abort.abort();
    for (const v of live.viewers) v({ event: 'gone', data: { message } });
    live.viewers.clear();
    for (const entry of s.pages.values()) entry.unwatch = undefined;
    delete s.rec.current;
    if (how !== 'student') s.rec.notice = message;
    this.save(s);
    this.changed(s);
    // The walk removed it when it finished or quit; otherwise (stopped mid-work, gone) whatever is left goes here.
    await removeInstance(this.o.runtime, live.instance.id).catch((e: unknown) =>
      log('%s: removing %s failed: %s', s.rec.id, live.instance.id, (e as Error).message),
    );
    this.pump();
  }

  async stopAll(): Promise<number> {
    const ids = [...this.students.values()].filter((s) => s.live || s.queued).map((s) => s.rec.id);
    await Promise.all(ids.map((id) => this.stop(id, 'teacher')));
    return ids.length;
  }

  /** The student's terminal on one of their machines; undefined when they have no lab or no such machine. */
  terminal(id: string, node: string): Terminal | undefined {
    const live = this.students.get(id)?.live;
    if (!live) return undefined;
    const n = live.instance.plan.nodes.find((x) => x.key === node);
    if (!n) return undefined;
    let t = live.terminals.get(n.key);
    if (!t) live.terminals.set(n.key, (t = new Terminal(this.o.runtime, n.name, n.key)));
    return t;
  }

  /** A page watches a student's live view (state diagrams, ladder, checks): src/ui's session, run while watched. */
  watchLive(id: string, sink: Sink): () => void {
    const live = this.students.get(id)?.live;
    if (!live) {
      sink({ event: 'gone', data: { message: 'no lab is running' } });
      return () => {};
    }
    live.viewers.add(sink);
    for (const [event, json] of live.latest) sink({ event, data: JSON.parse(json) });
    if (!live.watch) {
      const abort = new AbortController();
      const watch = new LabWatch(this.o.runtime, live.instance.plan, abort.signal);
      const done = runSession({
        watch,
        lab: live.lab,
        slug: live.lab.slug,
        walk: () => ({ kind: 'walking', stepIndex: Math.max(0, live.walk.state.step?.index ?? 0) }),
        // Twice a second while something moves (lab ui's projector page looks four times), every 3 s once quiet
        // while something on the page moves with time (a timer), and rarely once nothing does: a look waits in
        // the machines' agents, which answer when anything changes, and a step of the walk ends the wait too.
        pollMs: 500,
        idlePollMs: 3000,
        walkChanges: (poke) => live.walk.on(() => poke()),
        publish: ({ ladder, ...rest }) => {
          for (const [event, data] of [
            ['ladder', ladder],
            ['view', rest],
          ] as const) {
            const json = JSON.stringify(data);
            if (live.latest.get(event) === json) continue;
            live.latest.set(event, json);
            for (const v of live.viewers) v({ event, data });
          }
        },
        signal: abort.signal,
      })
        .then(() => undefined)
        .catch((e: unknown) => log('live view of %s: %s', id, (e as Error).message))
        .finally(() => watch.close());
      live.watch = { abort, done };
    }
    return () => {
      live.viewers.delete(sink);
      if (live.viewers.size === 0 && live.watch) {
        live.watch.abort.abort();
        live.watch = undefined;
      }
    };
  }

  // ---- idle ----

  private async sweepIdle(): Promise<void> {
    const now = Date.now();
    for (const s of this.students.values()) {
      const live = s.live;
      if (!live) continue;
      const idle = this.idleOf(live);
      if (now >= idle.stopAt) await this.stop(s.rec.id, 'idle');
      else if (now >= idle.warnAt && !live.warned) {
        live.warned = true;
        this.changed(s);
      }
    }
  }

  // ---- the dashboard ----

  subscribeTeacher(sink: Sink): () => void {
    this.teachers.add(sink);
    sink({ event: 'rows', data: this.rows() });
    return () => this.teachers.delete(sink);
  }

  private rowsChanged(): void {
    if (!this.teachers.size || this.rowsTimer) return;
    this.rowsTimer = setTimeout(() => {
      this.rowsTimer = undefined;
      const data = this.rows();
      for (const t of this.teachers) t({ event: 'rows', data });
    }, 300);
    this.rowsTimer.unref();
  }

  rows(): DashboardRow[] {
    const now = Date.now();
    return [...this.students.values()]
      .sort((a, b) => a.rec.name.localeCompare(b.rec.name) || a.rec.id.localeCompare(b.rec.id))
      .map((s) => {
        const completed = Object.values(s.rec.labs)
          .filter((l) => l.completed)
          .map((l) => l.slug);
        const row: DashboardRow = {
          id: s.rec.id,
          name: s.rec.name,
          status: s.live ? 'running' : s.starting ? 'starting' : s.queued ? 'queued' : 'none',
          attempts: 0,
          completed,
          online: [...s.pages.values()].some((p) => !p.watcher),
        };
        if (s.queued) row.queuePlace = this.queue.indexOf(s.rec.id) + 1;
        const slug = s.live?.lab.slug ?? s.starting?.slug ?? s.queued?.slug;
        const lab = slug ? this.labs.get(slug)?.lab : undefined;
        if (lab) row.lab = { id: lab.id, slug: lab.slug, title: lab.title };
        const live = s.live;
        if (live) {
          const w = live.walk.state;
          const task = w.step?.task;
          row.step = { number: (w.step?.index ?? 0) + 1, total: w.lab.steps, title: w.step?.title ?? '', phase: w.phase };
          row.tasks = w.score.tasks;
          row.predictions = w.score.predictions;
          row.attempts = live.attempts;
          const onStep = now - live.stepSince;
          row.onStepS = Math.round(onStep / 1000);
          row.idleS = Math.round((now - live.lastActivity) / 1000);
          const failed = task && !task.outcome ? task.attempts : 0;
          if (w.phase === 'task' && failed >= STUCK_ATTEMPTS) row.stuck = `${failed} checks not passed on this task`;
          else if (w.phase === 'task' && onStep >= STUCK_MS) row.stuck = `${Math.round(onStep / 60_000)} min on this task`;
        }
        return row;
      });
  }

  /** The gradebook of one lab from live work (every student of the class, started or not). */
  liveResults(slug: string): { lab: Lab; results: SubmissionResult[] } {
    const l = this.labs.get(slug);
    if (!l) throw new LabError(`this class does not offer a lab '${slug}'`, undefined, 404);
    const results = [...this.students.values()]
      .sort((a, b) => a.rec.id.localeCompare(b.rec.id))
      .map((s) => liveResult(l.lab, s.rec, s.rec.labs[slug]));
    return { lab: l.lab, results };
  }

  exportLive(slug: string): ExportedFiles {
    const { lab, results } = this.liveResults(slug);
    return writeExports(join(this.o.store.dir, 'exports', `${slug}-live-${stamp()}`), lab, results);
  }

  replayState(slug: string): unknown {
    const r = this.replays.get(slug);
    return r
      ? { state: r.state, ...(r.message ? { message: r.message } : {}), ...(r.files ? { dir: r.files.dir } : {}) }
      : { state: 'none' };
  }

  replayResults(slug: string): { lab: Lab; results: SubmissionResult[] } | undefined {
    const r = this.replays.get(slug);
    const lab = this.labs.get(slug)?.lab;
    return r?.results && lab ? { lab, results: r.results } : undefined;
  }

  /**
   * Replay every student's recorded commands of a lab through the grader (`lab grade --submissions`), in fresh
   * instances, two at a time (they count against the host like any lab); the formats go to exports/.
   */
  replay(slug: string): void {
    const l = this.labs.get(slug);
    if (!l) throw new LabError(`this class does not offer a lab '${slug}'`, undefined, 404);
    if (this.replays.get(slug)?.state === 'running') throw new LabError('a replay of this lab is already running', undefined, 409);
    const labText = readFileSync(l.file, 'utf8');
    const dir = join(this.o.store.dir, 'exports', `${slug}-replay-${stamp()}`);
    const subs = join(dir, 'submissions');
    const files: string[] = [];
    // A record that does not fit in a submission (more commands than it holds) is that student's result alone.
    const refused: SubmissionResult[] = [];
    for (const s of this.students.values()) {
      // What the walk recorded of the student's latest run of this lab (what `lab submit` would hand in).
      const work = this.filesOf(s.rec.id).loadWork(slug);
      if (!work || !Object.keys(work.tasks).length) continue;
      const path = join(subs, `${s.rec.id}.yaml`);
      let text: string;
      try {
        text = submissionText(l.lab, labText, s.rec.id, work, this.o.version);
      } catch (e) {
        if (!(e instanceof LabError)) throw e;
        refused.push({ ...liveResult(l.lab, s.rec, undefined), file: path, reason: e.message });
        continue;
      }
      writeFileSyncDeep(path, text);
      files.push(path);
    }
    const entry: { state: 'running' | 'done' | 'failed'; message?: string; files?: ExportedFiles; results?: SubmissionResult[] } = {
      state: 'running',
      message: `replaying ${files.length} student${files.length === 1 ? '' : 's'}' commands`,
    };
    this.replays.set(slug, entry);
    this.rowsChanged();
    const tracked = new Set<string>();
    void gradeSubmissions(files, {
      runtime: this.o.runtime,
      lab: l.lab,
      labText,
      image: this.o.image,
      parallel: 2,
      labTimeoutMs: 10 * 60_000,
      pollIntervalMs: 100,
      retries: 1,
      signal: this.abort.signal,
      version: this.o.version,
      track: (id) => tracked.add(id),
      untrack: (id) => tracked.delete(id),
    })
      .then(({ results: graded }) => {
        const results = [...graded, ...refused].sort((a, b) => (a.student ?? '').localeCompare(b.student ?? ''));
        entry.results = results;
        entry.files = writeExports(dir, l.lab, results);
        entry.state = 'done';
        entry.message = `${results.length} replayed; ${results.filter((r) => r.passed).length} passed`;
      })
      .catch((e: unknown) => {
        entry.state = 'failed';
        entry.message = (e as Error).message;
      })
      .finally(async () => {
        for (const id of tracked) await removeInstance(this.o.runtime, id).catch(() => undefined);
        for (const t of this.teachers) t({ event: 'replay', data: { slug, ...(this.replayState(slug) as object) } });
      });
  }

  // ---- a restart ----

  /**
   * After a restart: every student whose lab still runs gets it back (its machines carry this class's labels,
   * the plan is in their record), with the walk where it stood; a lab whose machines are gone or broken is
   * removed and the student told; machines of this class that no student's record names are removed.
   */
  async recover(): Promise<{ reattached: number; removed: number }> {
    const containers = await this.o.runtime.listContainers({ [LABEL.managed]: 'true' });
    const prefix = `tcplab-serve/${this.o.store.classId}/`;
    const ours = containers.filter((c) => c.labels[LABEL.owner]?.startsWith(prefix));
    const byInstance = new Map<string, typeof ours>();
    for (const c of ours) {
      const id = c.labels[LABEL.instance];
      if (id) byInstance.set(id, [...(byInstance.get(id) ?? []), c]);
    }
    let reattached = 0;
    let removed = 0;
    const claimed = new Set<string>();
    for (const s of this.students.values()) {
      const cur = s.rec.current;
      if (!cur) continue;
      const l = this.labs.get(cur.slug);
      const cs = byInstance.get(cur.instance) ?? [];
      const whole = cur.plan.nodes.every((n) => cs.some((c) => c.name === n.name && c.state === 'running'));
      const rec = s.rec.labs[cur.slug];
      // The walk's record (its step, phase and score) says where to carry on.
      const record = this.filesOf(s.rec.id).loadRunning(cur.instance);
      if (l && whole && rec && record && cs.every((c) => c.labels[LABEL.owner] === this.ownerOf(s.rec.id))) {
        claimed.add(cur.instance);
        const relay = new EngineRelay();
        const instance = attachInstance(this.o.runtime, cur.plan as Plan, { emit: relay.emit });
        this.attachLive(s, l.lab, l.file, instance, relay, record);
        reattached++;
        log('%s: reattached %s (%s)', s.rec.id, cur.instance, cur.slug);
      } else {
        delete s.rec.current;
        s.rec.notice = `Your lab (${l ? `Lab ${l.lab.id}` : cur.slug}) could not be kept while the server restarted, so it was removed. Your progress is kept; Start begins it again.`;
        this.save(s);
        if (cs.length) {
          claimed.add(cur.instance);
          await removeInstance(this.o.runtime, cur.instance).catch(() => undefined);
          removed++;
        }
      }
    }
    for (const id of byInstance.keys()) {
      if (claimed.has(id)) continue;
      await removeInstance(this.o.runtime, id).catch(() => undefined);
      removed++;
    }
    return { reattached, removed };
  }

  /** The server stops: labs keep running (the next `lab serve` reattaches them); nothing else is left open. */
  async close(): Promise<number> {
    clearInterval(this.sweep);
    if (this.rowsTimer) clearTimeout(this.rowsTimer);
    this.abort.abort();
    // A lab being built when the server stops is removed by its own cleanup (createInstance): wait for it.
    await Promise.allSettled([...this.builds, ...this.stops]);
    let running = 0;
    for (const s of this.students.values()) {
      const live = s.live;
      if (!live) continue;
      running++;
      for (const t of live.terminals.values()) t.end('the class server stopped; your lab keeps running: reload this page when it is back');
      live.watch?.abort.abort();
      await live.watch?.done;
      // The walk stops without ending: its record stays, and the next server resumes it.
      live.walk.detach();
    }
    this.o.store.flushSessions();
    return running;
  }
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

function writeFileSyncDeep(path: string, text: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}
