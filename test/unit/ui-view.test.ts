// The live page's view, from observations recorded in the real image (test/fixtures/capture): what it lights,
// which checks hold, the ladder rows, and where the walk is.
import { describe, expect, it } from 'vitest';
import type { NodeName } from '../../src/lab/schema.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { planLab } from '../../src/plan/plan.js';
import type { NodeSnapshot } from '../../src/grade/grade.js';
import type { Socket } from '../../src/observe/ss.js';
import { LabRecorder } from '../../src/trace/recorder.js';
import { segmentLabel } from '../../src/report/ladder-text.js';
import {
  buildView,
  checkView,
  ladderView,
  MAX_SOCKETS_LISTED,
  paragraphs,
  recentTransitions,
  RECENT_MS,
  type ViewInput,
} from '../../src/ui/view.js';
import { labStub, subnetsOf, topologyOf, walkOf } from '../../src/ui/attach.js';
import { loadCaptureFixture } from '../helpers/capture-fixtures.js';

type CaptureFixture = ReturnType<typeof loadCaptureFixture>;

const lab2 = resolveLab('2').lab;
const direct = loadCaptureFixture('direct');
const routed = loadCaptureFixture('routed');

/** Feed the fixture's answers from round `from` up to (not including) round `until`, as the page's watcher
 *  would; a snapshot's segments are those recorded since `from` (the step began when the page did). */
function replay(f: CaptureFixture, until = Infinity, from = 0) {
  const rec = new LabRecorder(f.topology, f.addresses);
  const snapshots = new Map<NodeName, NodeSnapshot>();
  let now = 0;
  const nodes = Object.keys(f.answers) as NodeName[];
  const rounds = Math.min(until, Math.max(...nodes.map((n) => f.answers[n]!.length)));
  for (let i = from; i < rounds; i++)
    for (const n of nodes) {
      const a = f.answers[n]![i];
      if (a === undefined) continue;
      const o = rec.ingest(n, a.look, a.from);
      now = Math.max(now, o.clock);
      const commands: NonNullable<NodeSnapshot['commands']> = {};
      for (const [k, v] of Object.entries(a.look.commands)) if (v) commands[k] = v;
      snapshots.set(n, {
        node: n,
        at: i,
        sockets: a.look.sockets,
        ...(o.counters ? { counters: o.counters } : {}),
        commands,
        segments: rec.segmentsOf(n),
      });
    }
  return { rec, snapshots, now, timeline: rec.timeline() };
}

/** The first round after which the snapshots satisfy `ok`. */
function roundWhere(f: CaptureFixture, ok: (s: Map<NodeName, NodeSnapshot>) => boolean): number {
  const total = Math.max(...Object.values(f.answers).map((a) => a!.length));
  for (let i = 1; i <= total; i++) if (ok(replay(f, i).snapshots)) return i;
  throw new Error('no such round in the fixture');
}

const has = (s: Map<NodeName, NodeSnapshot>, node: NodeName, state: string) => !!s.get(node)?.sockets.some((k) => k.state === state);

function input(f: CaptureFixture, r: ReturnType<typeof replay>, over: Partial<ViewInput> = {}): ViewInput {
  return {
    instance: 'abcd1234',
    topology: f.topology,
    vars: f.vars,
    addresses: f.addresses,
    lab: lab2,
    walk: { kind: 'walking', stepIndex: 2 },
    stepStartSeen: true,
    snapshots: r.snapshots,
    timeline: r.timeline,
    now: r.now,
    capture: { off: [], dropped: 0 },
    status: 'live',
    ...over,
  };
}

describe('the ladder rows', () => {
  const r = replay(direct);
  const ladder = ladderView(r.timeline);

  it('are the joined time line, labelled as the terminal ladder labels them', () => {
    const segs = ladder.rows.filter((x) => x.kind === 'segment');
    expect(segs).toHaveLength(r.timeline.transmissions.length);
    expect(segs.map((x) => x.label)).toEqual(r.timeline.transmissions.map((tx) => segmentLabel(tx)));
    expect(ladder.segments).toBe(r.timeline.transmissions.length);
    // Two connections in view: each row says which, and the legend says what each letter is.
    expect(ladder.connections.map((c) => c.tag)).toEqual(['a', 'b']);
    expect(ladder.connections[1]!.text).toMatch(/^198\.19\.118\.2:\d+ -> 198\.19\.118\.3:5555$/);
  });

  it('put each state change between the segments that caused it', () => {
    const rows = ladder.rows;
    const i = (pred: (x: (typeof rows)[number]) => boolean) => rows.findIndex(pred);
    const synSent = i((x) => x.kind === 'state' && x.node === 'client' && x.state === 'SYN_SENT' && x.tag === 'b');
    const syn = i((x) => x.kind === 'segment' && x.tag === 'b' && x.label === 'SYN seq 0' && x.from === 'client' && x.to === 'server');
    const synRecv = i((x) => x.kind === 'state' && x.node === 'server' && x.state === 'SYN_RECV');
    const synAck = i((x) => x.kind === 'segment' && x.label === 'SYN|ACK seq 0 ack 1' && x.from === 'server');
    const est = i((x) => x.kind === 'state' && x.node === 'client' && x.state === 'ESTABLISHED');
    expect(synSent).toBeGreaterThanOrEqual(0);
    expect(syn).toBe(synSent + 1);
    expect(synRecv).toBe(syn + 1);
    expect(synAck).toBeGreaterThan(synRecv);
    expect(est).toBeGreaterThan(synAck);
    // The SYNs the client's own OUTPUT chain dropped never reached the wire: their counter is the row.
    expect(rows.find((x) => x.kind === 'drop' && x.node === 'client')).toMatchObject({
      text: expect.stringMatching(/^OUTPUT dropped \d+: .*--dport 5555/),
    });
    // The listener has no peer: its row names its port.
    expect(rows[0]).toMatchObject({ kind: 'state', node: 'server', state: 'LISTEN', port: 5555, tag: '' });
    expect((rows[0] as { t: number }).t).toBeLessThan(0.5);
    expect(new Set(rows.map((x) => x.key)).size).toBe(rows.length);
  });

  it('mark where a segment died: at the firewall of a routed lab, seen on its way in', () => {
    const t = replay(routed).timeline;
    const rows = ladderView(t).rows.filter((x) => x.kind === 'segment');
    const lost = rows.filter((x) => x.kind === 'segment' && x.fate === 'lost');
    expect(lost.length).toBeGreaterThanOrEqual(2);
    for (const x of lost) expect(x).toMatchObject({ lostAt: 'firewall', note: expect.stringMatching(/dropped by the firewall/) });
    const through = rows.find((x) => x.kind === 'segment' && x.fate === 'delivered' && x.from === 'client' && x.to === 'server');
    expect(through).toMatchObject({ via: ['firewall'] });
  });

  it('send only the latest rows, and count the others', () => {
    const all = ladderView(r.timeline).rows;
    const last = ladderView(r.timeline, 5);
    expect(last.rows).toEqual(all.slice(-5).map((x) => expect.objectContaining({ key: x.key })));
    expect(last.skipped).toBe(all.length - 5);
  });
});

describe('the machines', () => {
  it("light every current socket's state, with counts, and mark the sockets the step checks", () => {
    const n = roundWhere(direct, (s) => has(s, 'client', 'SYN_SENT') && has(s, 'server', 'LISTEN'));
    const view = buildView(input(direct, replay(direct, n), { walk: { kind: 'walking', stepIndex: 2 } }));
    const [client, server] = view.sides;
    expect(client!.node).toBe('client');
    expect(client!.counts).toEqual({ SYN_SENT: 1 });
    expect(server!.counts).toEqual({ LISTEN: 1 });
    expect(client!.sockets[0]).toMatchObject({ state: 'SYN_SENT', peer: '198.19.118.3:5555', matters: true });
    expect(server!.sockets[0]).toMatchObject({ state: 'LISTEN', local: '*:5555', matters: true });
    expect(client!.addresses).toEqual(['198.19.118.2']);
  });

  it('list at most MAX_SOCKETS_LISTED sockets, while the counts stay exact', () => {
    const socket = (i: number): Socket => ({
      state: 'TIME_WAIT',
      ssState: 'TIME-WAIT',
      recvQ: 0,
      sendQ: 0,
      local: { host: '198.19.118.2', port: 40000 + i },
      peer: { host: '198.19.118.3', port: 5555 },
      timer: { name: 'timewait', ms: 58_000, retransmits: 0 },
      line: `TIME-WAIT ${i}`,
    });
    const snapshots = new Map<NodeName, NodeSnapshot>([
      ['client', { node: 'client', at: 0, sockets: Array.from({ length: 30 }, (_, i) => socket(i)) }],
    ]);
    const view = buildView(input(direct, { ...replay(direct, 1), snapshots }));
    const client = view.sides[0]!;
    expect(client.counts).toEqual({ TIME_WAIT: 30 });
    expect(client.sockets).toHaveLength(MAX_SOCKETS_LISTED);
    expect(client.more).toBe(30 - MAX_SOCKETS_LISTED);
    expect(client.sockets[0]!.timer).toBe('timewait 58s');
    expect(view.sides[1]).toMatchObject({ node: 'server', unseen: true, counts: {} });
  });

  it('light the arrows taken in the last seconds, and only those', () => {
    const n = roundWhere(direct, (s) => has(s, 'client', 'ESTABLISHED') && has(s, 'server', 'ESTABLISHED'));
    const r = replay(direct, n);
    const recent = recentTransitions(r.timeline, 'client', r.now);
    expect(recent.map((x) => x.edge)).toContain('SYN_SENT-ESTABLISHED');
    expect(recent.at(-1)).toMatchObject({ edge: 'SYN_SENT-ESTABLISHED', from: 'SYN_SENT', to: 'ESTABLISHED' });
    expect(recentTransitions(r.timeline, 'server', r.now).map((x) => x.edge)).toContain('SYN_RECV-ESTABLISHED');
    expect(recentTransitions(r.timeline, 'client', r.now + RECENT_MS + 1000)).toEqual([]);
    expect(recentTransitions(r.timeline, 'client', undefined)).toEqual([]);
    // What was there at the first look took no arrow while the page watched: a page opened once the server
    // listens does not light CLOSED -> LISTEN.
    const listening = roundWhere(direct, (s) => has(s, 'server', 'LISTEN'));
    expect(recentTransitions(replay(direct, listening).timeline, 'server', replay(direct, listening).now).map((x) => x.edge)).toEqual([
      'CLOSED-LISTEN',
    ]);
    const late = replay(direct, listening + 1, listening - 1);
    expect(late.snapshots.get('server')!.sockets.map((k) => k.state)).toEqual(['LISTEN']);
    expect(recentTransitions(late.timeline, 'server', late.now)).toEqual([]);
  });
});

describe('the checks, now', () => {
  const connect = lab2.steps.find((s) => s.id === 'connect-dropped')!;
  const release = lab2.steps.find((s) => s.id === 'release')!;

  it("hold or not as the step's expectations evaluate on the latest look", () => {
    const n = roundWhere(direct, (s) => has(s, 'client', 'SYN_SENT') && has(s, 'server', 'LISTEN'));
    const view = buildView(input(direct, replay(direct, n), { walk: { kind: 'walking', stepIndex: lab2.steps.indexOf(connect) } }));
    expect(view.step).toMatchObject({ number: 3, total: 8, id: 'connect-dropped', title: connect.title });
    expect(view.step!.checks.map((c) => c.status)).toEqual(['met', 'met', 'met']);
    expect(view.step!.checks[0]).toMatchObject({
      node: 'client',
      expected: 'client: socket SYN_SENT, peer 198.19.118.3:5555',
      why: 'the client waits for a SYN|ACK that cannot come',
      task: false,
    });
    expect(view.step!.checks[0]!.seen[0]).toMatch(/^SYN-SENT .*198\.19\.118\.3:5555/);
    // The last step: a SYN|ACK reached the client (a segment check), and both sides are ESTABLISHED...
    const both = roundWhere(direct, (s) => has(s, 'client', 'ESTABLISHED') && has(s, 'server', 'ESTABLISHED'));
    const est = buildView(input(direct, replay(direct, both), { walk: { kind: 'walking', stepIndex: lab2.steps.indexOf(release) } }));
    expect(est.step!.checks.map((c) => [c.expected.split(' ')[1], c.status])).toEqual([
      ['at', 'met'],
      ['socket', 'met'],
      ['socket', 'met'],
    ]);
    expect(est.step!.checks[0]!.seen[0]).toMatch(/^\d+ segments?:$/);
    // ... until the recording ends with the connection closed: the socket checks no longer hold.
    const end = buildView(input(direct, replay(direct), { walk: { kind: 'finished', stepIndex: lab2.steps.indexOf(release) } }));
    expect(end.step!.checks.map((c) => c.status)).toEqual(['met', 'not met', 'not met']);
    // A page that did not see the step begin cannot count its segments.
    const missed = buildView(input(direct, replay(direct, both), { walk: { kind: 'walking', stepIndex: 7 }, stepStartSeen: false }));
    expect(missed.step!.checks.map((c) => c.status)).toEqual(['unknown', 'met', 'met']);
  });

  it("say they cannot tell what only the walk knows: a foreground command's end, segments since a step the page missed", () => {
    const r = replay(direct);
    const vars = direct.vars;
    const cmd = checkView({ snapshots: r.snapshots, vars, stepStartSeen: true }, { on: 'client', command: { name: 'probe', exit: 0 } });
    expect(cmd).toMatchObject({ status: 'unknown', note: expect.stringMatching(/only the walk that ran `probe`/) });
    const seg = { on: 'client' as const, segments: { flags: 'SYN' as const } };
    expect(checkView({ snapshots: r.snapshots, vars, stepStartSeen: false }, seg)).toMatchObject({ status: 'unknown' });
    // Seen from its start, a segment check is graded on the segments since then.
    expect(checkView({ snapshots: r.snapshots, vars, stepStartSeen: true }, seg)).toMatchObject({ status: 'met' });
    const rst = { on: 'client' as const, segments: { flags: 'RST' as const } };
    expect(checkView({ snapshots: r.snapshots, vars, stepStartSeen: true }, rst)).toMatchObject({ status: 'not met' });
    const fw = checkView({ snapshots: r.snapshots, vars, stepStartSeen: true }, { on: 'firewall', socket: { state: 'LISTEN' } });
    expect(fw).toMatchObject({ status: 'unknown', note: 'the firewall was not observed' });
  });

  it('show a task first, marked as one, with its prompt filled in', () => {
    const view = buildView(input(direct, replay(direct, 1), { walk: { kind: 'walking', stepIndex: 0 } }));
    expect(view.step!.task!.join(' ')).toContain('(198.19.118.3:5555)');
    expect(view.step!.checks[0]).toMatchObject({ task: true, node: 'client' });
    expect(view.step!.explain).toEqual([
      'DROP, not REJECT: a REJECT would tell the client, and the client would give up at once. The rule has to match the TCP segments the client sends to port 5555 (its OUTPUT chain), at least those with the SYN flag.',
    ]);
  });
});

describe('where the walk is', () => {
  it('follows a walk that publishes its step, and keeps the last step of a kept lab', () => {
    expect(walkOf({ stepIndex: 3 }, true, 8)).toEqual({ kind: 'walking', stepIndex: 3 });
    expect(walkOf({ stepIndex: 7 }, false, 8)).toEqual({ kind: 'finished', stepIndex: 7 });
    // lab start --yes --keep, whose process has ended: the lab stays as its last step left it.
    expect(walkOf(undefined, false, 8)).toEqual({ kind: 'finished', stepIndex: 7 });
    expect(walkOf(undefined, true, 8)).toMatchObject({ kind: 'unknown', reason: expect.stringMatching(/does not publish/) });
    expect(walkOf(undefined, false, undefined)).toMatchObject({ kind: 'unknown' });
  });

  it('says so on the page, and shows no step when it cannot tell', () => {
    const r = replay(direct, 3);
    expect(buildView(input(direct, r, { walk: { kind: 'finished', stepIndex: 7 } })).walk.note).toMatch(/kept: its last step \(8 of 8\)/);
    const unknown = buildView(input(direct, r, { walk: { kind: 'unknown', reason: 'why' } }));
    expect(unknown).toMatchObject({ step: null, walk: { kind: 'unknown', note: 'why' } });
    const noLab = buildView(input(direct, r, { lab: undefined, slug: 'my-lab', walk: { kind: 'unknown', reason: 'x' } }));
    expect(noLab.lab).toEqual({ slug: 'my-lab', title: 'my-lab' });
    const gone = buildView(input(direct, r, { status: 'gone', message: 'the lab is gone' }));
    expect(gone).toMatchObject({ status: 'gone', message: 'the lab is gone' });
  });

  it('says when segments are not recorded', () => {
    const r = replay(direct, 3);
    expect(buildView(input(direct, r, { capture: { off: ['client', 'server'], dropped: 0 } })).capture).toMatchObject({
      on: false,
      note: expect.stringMatching(/no segments are recorded/),
    });
    expect(buildView(input(direct, r, { capture: { off: ['client'], dropped: 12 } })).capture).toEqual({
      on: true,
      note: 'no capture on the client; 12 older segments not kept',
    });
    expect(buildView(input(direct, r)).capture).toEqual({ on: true });
  });

  it('turns a lab file’s wrapped lines into paragraphs', () => {
    expect(paragraphs('one\ntwo\n\nthree\n  four\n')).toEqual(['one two', 'three four']);
  });
});

describe("a kept lab's plan, rebuilt from its containers", () => {
  it('finds the subnets the planner used from the addresses on each network', () => {
    for (const lab of [lab2, resolveLab('7').lab]) {
      const subnets = lab.topology === 'routed' ? ['198.18.7.0/24', '198.19.9.0/24'] : ['198.18.44.0/24'];
      const plan = planLab({ lab, instance: 'feedbeef', image: 'img', subnets });
      const attachments = Object.fromEntries(plan.nodes.flatMap((n) => n.interfaces.map((i) => [i.networkName, i.ip])));
      expect(subnetsOf(plan.topology, 'feedbeef', attachments)).toEqual(subnets);
      expect(planLab({ lab, instance: 'feedbeef', image: 'img', subnets: subnetsOf(plan.topology, 'feedbeef', attachments) })).toEqual(
        plan,
      );
    }
    expect(() => subnetsOf('direct', 'feedbeef', {})).toThrow(/no address on its network tcplab-feedbeef-lan/);
  });

  it('plans a lab whose file is unknown from its machines alone', () => {
    expect(topologyOf(['client', 'server'])).toBe('direct');
    expect(topologyOf(['client', 'firewall', 'server'])).toBe('routed');
    const plan = planLab({ lab: labStub('mine', 'routed'), instance: 'feedbeef', image: 'i', subnets: ['198.18.1.0/24', '198.18.2.0/24'] });
    expect(plan.nodes.map((n) => n.key).sort()).toEqual(['client', 'firewall', 'server']);
  });
});
