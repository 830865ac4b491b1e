// Working with a lab that is already running, from any terminal: find it, open a shell in one of its machines,
// show its rules, processes and sockets, and check a step's task against its live state.
import { spawnSync } from 'node:child_process';
import { LabError } from '../errors.js';
import type { Instance } from '../engine/instance.js';
import { attachInstance } from '../walk/session.js';
import { currentUser, isMine } from '../identity.js';
import type { EventSink } from '../engine/events.js';
import { LABEL } from '../plan/plan.js';
import { NODE_NAMES, type NodeName, type Step } from '../lab/schema.js';
import type { Socket } from '../observe/ss.js';
import { studentArgv } from '../observe/agent-protocol.js';
import { AgentClient } from '../engine/agent-client.js';
import type { Check } from '../grade/grade.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Style } from '../report/style.js';
import { stateFiles, type EndedLab, type RunningLab } from '../walk/state-files.js';
import { labCommand } from './invocation.js';
import { sideBySide } from './render.js';

export interface LiveInstance {
  instance: string;
  lab: string;
  /** The OS user who started it (its io.tcplab.owner label); undefined when it carries none. */
  user: string | undefined;
  /** node -> container name */
  nodes: Map<NodeName, string>;
  /** What the owning `lab start` recorded, when it did. */
  state?: RunningLab;
}

/** Every running lab instance on the engine (by label), with what its state file says. */
export async function liveInstances(runtime: Runtime): Promise<LiveInstance[]> {
  const containers = await runtime.listContainers({ [LABEL.managed]: 'true' });
  const byId = new Map<string, LiveInstance>();
  const states = new Map(
    stateFiles()
      .listRunning()
      .map((r) => [r.instance, r]),
  );
  for (const c of containers) {
    const id = c.labels[LABEL.instance];
    const node = c.labels[LABEL.node] as NodeName | undefined;
    if (!id || !node) continue;
    let li = byId.get(id);
    if (!li) {
      li = { instance: id, lab: c.labels[LABEL.lab] ?? '?', user: c.labels[LABEL.owner], nodes: new Map() };
      const st = states.get(id);
      if (st) li.state = st;
      byId.set(id, li);
    }
    li.nodes.set(node, c.name);
  }
  return [...byId.values()].sort((a, b) => Number(!!b.state) - Number(!!a.state) || a.instance.localeCompare(b.instance));
}

/** --all of the commands that pick an instance (shell, check, status). Without an instance named, each acts on
 *  the labs of the user who runs it (the io.tcplab.owner label), so that on a shared engine nobody enters, checks
 *  or watches somebody else's lab by accident; --all widens that to everybody's. */
export const ALL_OPTION = { all: { type: 'boolean' } } as const;

/**
 * The instance a command means: the one named (whoever owns it: naming it is asking for it), or else the only
 * one of this user's (preferring one a `lab start` owns). Other users' labs on the same engine (a classroom
 * server, another terminal's `lab grade`) are never picked unless `all` says so.
 */
export async function pickInstance(runtime: Runtime, given?: string, opts: { all?: boolean } = {}): Promise<LiveInstance> {
  const everyone = await liveInstances(runtime);
  const all = opts.all ? everyone : everyone.filter((i) => isMine(i));
  const others = everyone.filter((i) => !all.includes(i));
  if (given) {
    const found = everyone.find((i) => i.instance === given);
    if (!found)
      throw new LabError(
        `no running lab instance '${given}'`,
        all.length ? `running: ${someOf(all)}` : `start one with \`${labCommand()} start 2\``,
      );
    return found;
  }
  if (all.length === 0) {
    if (others.length)
      throw new LabError(
        `no lab of yours (${currentUser()}) is running`,
        `other users' labs are running here: ${someOf(others)}; name one to use it, or start your own with \`${labCommand()} start 2\``,
      );
    throw new LabError('no lab is running', `start one with \`${labCommand()} start 2\` (in another terminal), then come back here`);
  }
  const owned = all.filter((i) => i.state);
  if (owned.length === 1) return owned[0]!;
  if (all.length === 1) return all[0]!;
  throw new LabError(`${all.length} lab instances are running`, `name one: ${someOf(all)}`);
}

/** A few instances by name, and how many more there are (a classroom engine may run dozens). */
function someOf(list: LiveInstance[], max = 4): string {
  const shown = list.slice(0, max).map(describeInstance).join(', ');
  return list.length > max ? `${shown} and ${list.length - max} more (\`${labCommand()} status --all\` lists them)` : shown;
}

function describeInstance(i: LiveInstance): string {
  return `${i.instance} (${i.lab}${isMine(i) ? '' : `, ${i.user ? `user ${i.user}` : 'no owner'}`})`;
}

export function parseNode(text: string | undefined): NodeName {
  if (!text || !(NODE_NAMES as readonly string[]).includes(text)) {
    throw new LabError(
      `which machine? '${text ?? ''}' is not one of ${NODE_NAMES.join(', ')}`,
      `for example \`${labCommand()} shell client\``,
    );
  }
  return text as NodeName;
}

/** An interactive shell in a lab machine: the docker CLI's exec with a terminal, our stdio passed through. */
function openShell(li: LiveInstance, node: NodeName, write: (s: string) => void): number {
  const container = li.nodes.get(node);
  if (!container) throw new LabError(`this lab has no ${node}`, `its machines are ${[...li.nodes.keys()].join(', ')}`);
  const tty = !!process.stdin.isTTY;
  write(`Shell on the ${node} of lab instance ${li.instance} (${container}). Only /tmp is writable. exit or Ctrl-D returns.`);
  // As the student: root with NET_ADMIN and NET_RAW only (tcplab-agent student), like an answer in grading.
  const r = spawnSync(
    'docker',
    ['exec', tty ? '-it' : '-i', '-e', 'TERM=' + (process.env.TERM ?? 'xterm'), container, ...studentArgv(['bash', '-l'])],
    {
      stdio: 'inherit',
    },
  );
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new LabError(
      `cannot run the docker command: ${code ?? r.error.message}`,
      'lab shell needs the docker CLI on your PATH (it comes with Docker Desktop and docker.io)',
    );
  }
  return r.status ?? 1;
}

/**
 * A shell session, from the menu of the walk or from `lab shell` in another terminal: the shell, then, when it
 * ended because its machine went away (the lab finished, was quit, interrupted or stopped), a line that says
 * so, instead of a silent return to the student's own prompt.
 */
export async function shellSession(runtime: Runtime, li: LiveInstance, node: NodeName, write: (s: string) => void): Promise<number> {
  const since = Date.now();
  const status = openShell(li, node, write);
  const why = await whyShellEnded(runtime, li, node, since);
  // On a line of its own: the shell went away in the middle of its prompt.
  if (why) write(`\n${why}`);
  return status;
}

/** Did the shell end because its machine went away? What `lab start` or `lab stop` recorded, or the engine says. */
async function whyShellEnded(runtime: Runtime, li: LiveInstance, node: NodeName, since: number): Promise<string | undefined> {
  const recorded = () => {
    const ended = stateFiles().loadEnded(li.instance);
    return ended && Date.parse(ended.at) >= since ? ended : undefined;
  };
  if (recorded()) return shellEndedBecause(li, recorded());
  // Nothing recorded (`lab clean`, docker rm): ask the engine whether the machine is still there and running.
  const container = li.nodes.get(node)!;
  const c = await runtime
    .listContainers({ [LABEL.managed]: 'true', [LABEL.instance]: li.instance })
    .then((cs) => cs.find((x) => x.name === container))
    .catch(() => ({ state: 'running' }));
  return !c || c.state !== 'running' ? shellEndedBecause(li, recorded()) : undefined;
}

/** Why a shell's machine is gone, in the student's words. */
export function shellEndedBecause(li: Pick<LiveInstance, 'instance' | 'lab'>, ended: EndedLab | undefined): string {
  const lab = ended?.lab.id ? `Lab ${ended.lab.id} (${ended.lab.slug})` : `The lab ${ended?.lab.slug ?? li.lab}`;
  const why = !ended
    ? 'is gone: its machines were removed (its `lab start` ended, or `lab stop` or `lab clean` removed it)'
    : ended.how === 'finished'
      ? 'finished in its `lab start`, which removed its machines'
      : ended.how === 'quit'
        ? 'was quit in its `lab start`, which removed its machines'
        : ended.how === 'interrupted'
          ? 'was interrupted (Ctrl-C, or its terminal closed), and its machines were removed'
          : 'was removed by `lab stop`';
  return `This shell ended because ${lab} ${why} (instance ${li.instance}).`;
}

/** Sessions with agents, kept for the life of the process: `lab status --watch` looks every second. */
const agents = new Map<string, AgentClient>();

/** Every machine's TCP sockets now, as its agent reads them. */
export async function liveSockets(runtime: Runtime, li: LiveInstance): Promise<Map<NodeName, Socket[]>> {
  const out = new Map<NodeName, Socket[]>();
  await Promise.all(
    [...li.nodes].map(async ([node, c]) => {
      let agent = agents.get(c);
      if (!agent) agents.set(c, (agent = new AgentClient(runtime, c, node, { openTimeoutMs: 5000 })));
      // An instance can go away while we look (its lab finished, cut off mid-answer): show it empty, not fail.
      const look = await agent.look({}, { timeoutMs: 10_000 }).catch(() => {
        agent.close();
        agents.delete(c);
        return undefined;
      });
      out.set(node, look?.sockets ?? []);
    }),
  );
  return new Map([...out].sort());
}

export function renderSockets(
  observed: Map<NodeName, Socket[]>,
  style: Style,
  matter?: (node: NodeName, s: Socket) => boolean,
  width?: number,
): string {
  const hot = new Set<Socket>();
  if (matter) for (const [node, socks] of observed) for (const s of socks) if (matter(node, s)) hot.add(s);
  return sideBySide(observed, style, (s) => hot.has(s), width);
}

/** The engine instance for a running lab that another process started (its plan is in the state file). */
export function attach(runtime: Runtime, state: RunningLab, opts: { signal?: AbortSignal; emit?: EventSink } = {}): Instance {
  // The observers open while the check's probe starts: the expectations' deadlines run from the first look.
  return attachInstance(runtime, state.plan, opts);
}

/** A task checked against the live lab (its probe, its expectations): the one place every check goes through. */
export async function checkTask(instance: Instance, step: Step): Promise<Check[]> {
  if (!step.task) throw new LabError(`step ${step.id} has no task`);
  return instance.checkTask(step.id, step.task);
}
