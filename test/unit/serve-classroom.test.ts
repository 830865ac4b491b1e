// The hub's rules with an in-memory engine: a full host queues Starts in order and tells each student their
// place, never building more than the class allows; a lab that cannot start leaves nothing and says why; an idle
// lab is warned about, then stopped (progress kept); a restart reattaches what is still whole, removes the rest
// and tells the student; the live gradebook scores like `lab grade`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { catalogue } from '../../src/lab/catalogue.js';
import { EngineError } from '../../src/errors.js';
import { defaultClass, type ClassConfig } from '../../src/serve/class-file.js';
import { Classroom } from '../../src/serve/classroom.js';
import { Store } from '../../src/serve/store.js';
import { StateFiles } from '../../src/walk/state-files.js';
import { FakeRuntime } from '../reliability/fake-runtime.js';

const labs = catalogue().filter((l) => l.lab.id === 1 || l.lab.id === 2);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.splice(0)) await c();
});

function setup(
  limits: Partial<ClassConfig['limits']> = {},
  runtime = new FakeRuntime(),
  dir = mkdtempSync(join(tmpdir(), 'tcplab-serve-hub-')),
) {
  const cls = { ...defaultClass(dir), joinCode: 'ABCDEFGH', limits: { ...defaultClass(dir).limits, ...limits } };
  const store = new Store(dir);
  const classroom = new Classroom({ runtime, config: cls, labs, image: 'fake', store, version: 'test' });
  cleanups.push(async () => {
    await classroom.close();
  });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { classroom, store, runtime, dir, cls };
}

type State = { current?: { status: string; place?: number }; notice?: string; error?: string };
const stateOf = (c: Classroom, id: string) => c.state(id) as State;

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the class hub', () => {
  it("makes a student's id from their name, accents dropped, not turned into hyphens", () => {
    const { classroom } = setup({ runningLabs: 2 });
    expect(classroom.joinWithName('Ana López').id).toMatch(/^ana-lopez-[0-9a-f]{4}$/);
    expect(classroom.joinWithName('Zoë  Çelik').id).toMatch(/^zoe-celik-[0-9a-f]{4}$/);
    expect(classroom.joinWithName('Ægir Þórsson').id).toMatch(/^gir-orsson-[0-9a-f]{4}$/);
    expect(classroom.joinWithName('李雷').id).toMatch(/^student-[0-9a-f]{4}$/);
  });

  it('queues Starts beyond the host limit, in order, and starts the next when a lab stops', async () => {
    const { classroom, runtime } = setup({ runningLabs: 2 });
    const ids = ['a', 'b', 'c', 'd'].map((n) => classroom.joinWithName(n).id);
    for (const id of ids) classroom.start(id, 'basic-states');
    await until('two running', () => ids.filter((id) => stateOf(classroom, id).current?.status === 'running').length === 2);
    expect(stateOf(classroom, ids[2]!).current).toMatchObject({ status: 'queued', place: 1 });
    expect(stateOf(classroom, ids[3]!).current).toMatchObject({ status: 'queued', place: 2 });
    expect(new Set([...runtime.containers.values()].map((c) => c.spec.labels['io.tcplab.instance'])).size).toBe(2);
    await classroom.stop(ids[0]!, 'student');
    await until('the first in the queue running', () => stateOf(classroom, ids[2]!).current?.status === 'running');
    expect(stateOf(classroom, ids[3]!).current).toMatchObject({ status: 'queued', place: 1 });
    expect(() => classroom.start(ids[1]!, 'incomplete-handshake')).toThrow(/already have another lab/);
    await classroom.stopAll();
    expect(runtime.containers.size).toBe(0);
  });

  it('tells a student why their lab could not start, and leaves nothing of it', async () => {
    const runtime = new FakeRuntime();
    runtime.before = (call) => {
      if (call === 'startContainer') throw new EngineError('Docker could not start container: out of memory');
    };
    const { classroom } = setup({}, runtime);
    const id = classroom.joinWithName('x').id;
    classroom.start(id, 'basic-states');
    await until('the failure told', () => !!stateOf(classroom, id).error);
    expect(stateOf(classroom, id).error).toMatch(/Lab 1 could not start: .*out of memory.*Nothing of it was left running/);
    expect(stateOf(classroom, id).current).toBeUndefined();
    expect(runtime.containers.size).toBe(0);
    expect(runtime.networks.size).toBe(0);
  });

  it('warns about an idle lab, then stops it and says so; any activity starts the clock again', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'Date'] });
    const { classroom, runtime } = setup({ idleMs: 10 * 60_000, idleWarningMs: 2 * 60_000 });
    const id = classroom.joinWithName('sleepy').id;
    classroom.start(id, 'basic-states');
    await vi.waitUntil(() => stateOf(classroom, id).current?.status === 'running');
    vi.advanceTimersByTime(8 * 60_000 + 20_000);
    await vi.waitUntil(() => (stateOf(classroom, id).current as { idle?: { warning: boolean } })?.idle?.warning === true);
    classroom.touch(id);
    expect((stateOf(classroom, id).current as { idle?: { warning: boolean } }).idle?.warning).toBe(false);
    vi.advanceTimersByTime(10 * 60_000 + 20_000);
    await vi.waitUntil(() => stateOf(classroom, id).current === undefined);
    expect(stateOf(classroom, id).notice).toMatch(/stopped after 10 minutes without a key typed/);
    await vi.waitUntil(() => runtime.containers.size === 0);
  });

  it('after a restart reattaches a whole lab, removes a broken one and strays, and tells that student', async () => {
    const runtime = new FakeRuntime();
    const dir = mkdtempSync(join(tmpdir(), 'tcplab-serve-hub-'));
    const first = setup({}, runtime, dir);
    const keep = first.classroom.joinWithName('keeper').id;
    const lose = first.classroom.joinWithName('loser').id;
    first.classroom.start(keep, 'basic-states');
    first.classroom.start(lose, 'basic-states');
    await until('both running', () => [keep, lose].every((id) => stateOf(first.classroom, id).current?.status === 'running'));
    // The keeper has tried two checks (the walk records each, as lab check does).
    const keptInstance = [...runtime.containers.values()].find((c) => c.spec.labels['io.tcplab.owner']!.endsWith(`/${keep}`))!.spec.labels[
      'io.tcplab.instance'
    ]!;
    const files = new StateFiles(join(dir, 'students', keep));
    files.recordAttempt(keptInstance, 'a-task', false);
    files.recordAttempt(keptInstance, 'a-task', false);
    await first.classroom.close();
    // While the server is down, one of the labs loses a machine.
    const broken = [...runtime.containers.keys()].find((n) =>
      runtime.containers.get(n)!.spec.labels['io.tcplab.owner']!.endsWith(`/${lose}`),
    )!;
    runtime.containers.delete(broken);
    const second = new Classroom({ runtime, config: first.cls, labs, image: 'fake', store: new Store(dir), version: 'test' });
    cleanups.unshift(() => second.close().then(() => undefined));
    expect(await second.recover()).toEqual({ reattached: 1, removed: 1 });
    expect(stateOf(second, keep).current?.status).toBe('running');
    // The dashboard's "Checks tried" goes on from where it was.
    expect(second.rows().find((r) => r.id === keep)?.attempts).toBe(2);
    expect(stateOf(second, lose).current).toBeUndefined();
    expect(stateOf(second, lose).notice).toMatch(/could not be kept while the server restarted, so it was removed/);
    expect([...runtime.containers.values()].every((c) => c.spec.labels['io.tcplab.owner']!.endsWith(`/${keep}`))).toBe(true);
    await second.stopAll();
  });

  it('scores live work for the gradebook as lab grade does: nothing for a walk not started', () => {
    const { classroom } = setup();
    classroom.joinWithName('idle student');
    const { results } = classroom.liveResults('basic-states');
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ gradable: false, reason: 'not started', score: 0, passed: false });
    expect(results[0]!.maxScore).toBeGreaterThan(0);
  });
});

describe('the gradebook from live work', () => {
  it('says of a walk still under way what it has not reached, and not that its lab stopped', async () => {
    const { liveResult } = await import('../../src/serve/gradebook.js');
    const lab = labs.find((l) => l.lab.id === 1)!.lab;
    const student = { id: 'bob', name: 'Bob' } as Parameters<typeof liveResult>[1];
    const rec = { slug: lab.slug, id: lab.id, title: lab.title, results: [], finished: false, completed: false, runs: 1 };
    const r = liveResult(lab, student, rec);
    expect(r).toMatchObject({ gradable: true, passed: false, error: `not finished: 0 of ${lab.steps.length} steps done` });
    const seen = r.tasks!.flatMap((t) => t.items.flatMap((i) => i.checks.flatMap((c) => c.seen)));
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((x) => x === "not checked: the student's walk has not reached this step")).toBe(true);
    // Every step done, the walk not ended: it says what is left to do.
    const all = lab.steps.map((s) => ({ id: s.id, title: s.title, checks: [], passed: true }));
    expect(liveResult(lab, student, { ...rec, results: all }).error).toBe(
      'not finished: every step done, but the walk not ended (Finish the lab)',
    );
  });

  it("turns a student's recorded commands into a submission that lab grade reads, without tasks tcplab did for them", async () => {
    const { readFileSync } = await import('node:fs');
    const { submissionText } = await import('../../src/serve/gradebook.js');
    const { answersOf, validateSubmissionText } = await import('../../src/submit/submission.js');
    const lab2 = labs.find((l) => l.lab.id === 2)!;
    const text = submissionText(
      lab2.lab,
      readFileSync(lab2.file, 'utf8'),
      'alice',
      {
        lab: { id: 2, slug: lab2.lab.slug, title: lab2.lab.title, file: lab2.file, hash: '' },
        tcplab: 'test',
        instance: 'x',
        updatedAt: '',
        tasks: {
          'drop-syn': {
            title: 't',
            startedAt: '',
            endedAt: '',
            passed: true,
            attempts: 2,
            answer: [{ node: 'client', lines: ['iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP'] }],
            // What the walk records now: the timeline, which the file holds as lab submit writes it.
            timeline: [
              {
                node: 'client',
                command: 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP',
                at: 0,
                end: { by: 'exit', exit: 0, at: 40 },
              },
            ],
          },
        },
      },
      'test',
    );
    const v = validateSubmissionText(text, lab2.lab);
    expect(v.ok, JSON.stringify(v)).toBe(true);
    expect(text).toMatch(/^ {4}- client: iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP$/m);
    if (v.ok)
      expect(answersOf(v.submission)['drop-syn']).toEqual([
        expect.objectContaining({ node: 'client', script: 'iptables -I OUTPUT -p tcp --dport 5555 --syn -j DROP', shell: 'bash', at: 0 }),
      ]);
  });
});

describe("a class's replay", () => {
  it("one student's record too big for a submission costs that student alone a reason; the others are replayed", async () => {
    const { StateFiles } = await import('../../src/walk/state-files.js');
    const runtime = new FakeRuntime();
    // No engine to replay on: each replayed student gets an engine: reason, quickly.
    runtime.before = (call) => {
      if (call !== 'info') throw new EngineError('no engine in this test');
    };
    const { classroom, dir } = setup({}, runtime);
    const lab1 = labs.find((l) => l.lab.id === 1)!;
    const work = (n: number) => ({
      title: 't',
      startedAt: '',
      endedAt: '',
      passed: false,
      attempts: 1,
      answer: [],
      timeline: Array.from({ length: n }, (_, i) => ({ node: 'client' as const, command: `echo ${i}`, at: i * 10 })),
    });
    const ids: string[] = [];
    for (const [name, n] of [
      ['honest student', 2],
      ['mallory', 501],
    ] as const) {
      const s = classroom.joinWithName(name);
      ids.push(s.id);
      new StateFiles(join(dir, 'students', s.id)).saveTaskWork(
        { lab: { id: 1, slug: lab1.lab.slug, title: lab1.lab.title, file: lab1.file, hash: '' }, tcplab: 'test', instance: 'x' },
        'your-turn',
        work(n),
      );
    }
    classroom.replay(lab1.lab.slug);
    await until('the replay is done', () => (classroom.replayState(lab1.lab.slug) as { state: string }).state !== 'running');
    const { results } = classroom.replayResults(lab1.lab.slug)!;
    const by = Object.fromEntries(results.map((r) => [r.student, r]));
    const [honest, mallory] = ids as [string, string];
    expect(Object.keys(by).sort()).toEqual([honest, mallory].sort());
    expect(by[mallory]).toMatchObject({ gradable: false, reason: expect.stringMatching(/do not fit in a submission/) as unknown });
    expect(by[honest]!.reason).toMatch(/^engine: /);
  });
});
