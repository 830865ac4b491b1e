// Rules a schema cannot express: references between steps, templates, the topology's machines.
import { VARIANT_NAME, type Action, type Expectation, type Lab, type NodeName, type Topology } from './schema.js';
import { parseDuration } from './duration.js';
import { networksOf, nodesOf } from './topology.js';
import { expand, templateNames } from './templates.js';
import { variantTemplate } from './variants.js';

export interface RuleProblem {
  path: (string | number)[];
  message: string;
}

const MAX_WAIT_MS = 10 * 60_000;
/** The one state a socket can be in once `closed` can tell (src/grade/grade.ts closedOrder), and why. */
const CLOSED_STATES = { first: 'TIME_WAIT', second: 'LAST_ACK' } as const;
const CLOSED_WHY = {
  first: "its FIN left first and the peer's FIN acknowledged it",
  second: "the peer's FIN came first and this side's FIN acknowledged it",
} as const;

/** The template names a lab of this topology may use: {{client.ip}}, {{firewall.ip.front}}, {{net.lan}} ...
 *  and its own variants, {{variant.port}}. */
function templateVariables(topology: Topology, variants: string[] = []): Set<string> {
  const vars = new Set<string>(variants.map(variantTemplate));
  for (const node of nodesOf(topology)) {
    vars.add(`${node.name}.ip`);
    for (const net of node.networks) vars.add(`${node.name}.ip.${net}`);
  }
  for (const net of networksOf(topology)) vars.add(`net.${net}`);
  return vars;
}

/**
 * Every {{...}} anywhere in the file must name one of the lab's own machines or networks. This runs on the raw
 * document, before and whatever the schema says, so that a file with schema problems and template problems
 * gets both reported in one run. Templates are filled in wherever they appear: commands, standard input,
 * expectations (addresses, rule words, output patterns) and the text shown to students.
 */
export function checkTemplates(data: unknown): RuleProblem[] {
  const topology: Topology = isRecord(data) && data.topology === 'routed' ? 'routed' : 'direct';
  const variants = isRecord(data) && isRecord(data.variants) ? Object.keys(data.variants).filter((k) => VARIANT_NAME.test(k)) : [];
  const vars = templateVariables(topology, variants);
  const known = [...vars].map((v) => `{{${v}}}`).join(', ');
  const problems: RuleProblem[] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    if (typeof v === 'string') {
      const shown = asWritten(path);
      if (shown && templateNames(v).length) {
        problems.push({ path, message: `templates are not filled in in ${shown}, which is shown as written: write the text without one` });
        return;
      }
      for (const name of templateNames(v)) {
        if (!vars.has(name)) problems.push({ path, message: `unknown template {{${name}}}; a ${topology} lab knows ${known}` });
      }
      // Near misses reach the container as literal text ({server.ip} is a host name nc cannot resolve).
      for (const m of v.matchAll(NEAR_MISS)) {
        const name = (m[1] ?? m[2])!.trim();
        problems.push({ path, message: `'${m[0]}' is not a template: write {{${name}}}, with two braces on each side` });
      }
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (isRecord(v)) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(data, []);
  return problems;
}

/**
 * Text shown to people as written, templates and all: the lab's title, summary and intro, a step's title, a
 * check's why, a prediction's choices and answer. Undefined: a field whose templates are filled in (commands,
 * expectations, explain, prompt, hints, a prediction's question and why, notes).
 */
function asWritten(path: (string | number)[]): string | undefined {
  const [a, , b, c, d, e] = path;
  if (path.length === 1 && (a === 'title' || a === 'summary' || a === 'intro')) return `the lab's ${a}`;
  if (a !== 'steps') return undefined;
  if (path.length === 3 && b === 'title') return "a step's title";
  if (b === 'predict' && (c === 'choices' || c === 'answer')) return `a prediction's ${c === 'answer' ? 'answer' : 'choices'}`;
  if ((b === 'expect' && path.length === 5 && d === 'why') || (b === 'task' && c === 'expect' && path.length === 6 && e === 'why'))
    return "a check's why";
  return undefined;
}

/** {{server.ip} (one closing brace), {server.ip} or ${server.ip} (one brace each side): a template mistyped. */
const NEAR_MISS =
  /\{\{\s*([a-z]+(?:\.[a-z]+)*)\s*\}(?!\})|\$?(?<!\{)\{\s*((?:client|server|firewall)\.ip(?:\.[a-z]+)?|net\.[a-z]+|variant\.[a-z]+)\s*\}(?!\})/g;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Things worth saying about a lab that do not make it unusable. */
export function checkWarnings(lab: Lab): RuleProblem[] {
  const warnings: RuleProblem[] = [];
  lab.steps.forEach((step, i) => {
    if (!step.expect?.length && !step.task) {
      warnings.push({ path: ['steps', i], message: `step '${step.id}' has no expectations: nothing is checked after it runs` });
    }
  });
  return warnings;
}

export function checkRules(lab: Lab): RuleProblem[] {
  const problems: RuleProblem[] = [];
  const topology = lab.topology ?? 'direct';
  const nodes = new Set<NodeName>(nodesOf(topology).map((n) => n.name));
  const checkNode = (node: NodeName, path: (string | number)[]) => {
    if (!nodes.has(node)) {
      problems.push({ path, message: `this lab's ${topology} topology has no ${node} (it has ${[...nodes].join(', ')})` });
    }
  };
  for (const key of Object.keys(lab.nodes ?? {}) as NodeName[]) checkNode(key, ['nodes', key]);
  for (const [name, v] of Object.entries(lab.variants ?? {})) {
    if ('range' in v && v.range[0] > v.range[1])
      problems.push({ path: ['variants', name, 'range'], message: 'give the lowest value first: [lowest, highest]' });
    if ('choices' in v && new Set(v.choices.map(String)).size !== v.choices.length)
      problems.push({ path: ['variants', name, 'choices'], message: 'a value is listed twice' });
  }

  const seenSteps = new Set<string>();
  // Named commands: name -> node that runs it, to catch a stop or check on the wrong machine.
  const named = new Map<string, NodeName>();

  // Names that only a task's solution gives: a submitted answer names no commands, so a stop, a write or a
  // command check of one passes `lab test` (which runs the solution) and fails every student.
  const solutionOnly = new Set<string>();
  const checkSolutionOnly = (name: string, path: (string | number)[]) => {
    if (solutionOnly.has(name))
      problems.push({
        path,
        message: `'${name}' is started only by a task's solution, and a student's answer names no commands: this passes lab test and fails every submission; check what the answer leaves (sockets, segments), or start the command in a probe or a step's run`,
      });
  };
  const checkAction = (a: Action, path: (string | number)[], from: 'run' | 'solution' | 'probe' = 'run') => {
    checkNode(a.on, [...path, 'on']);
    if (a.timeout) checkTimeout(a.timeout, [...path, 'timeout']);
    if (a.name) {
      const other = named.get(a.name);
      if (other && other !== a.on) problems.push({ path: [...path, 'name'], message: `'${a.name}' already names a command on ${other}` });
      if (from === 'solution' && !other) solutionOnly.add(a.name);
      else if (from !== 'solution') solutionOnly.delete(a.name);
      named.set(a.name, a.on);
    }
    if (a.stop) {
      const owner = named.get(a.stop);
      if (!owner) problems.push({ path: [...path, 'stop'], message: `no earlier command is named '${a.stop}'` });
      else if (owner !== a.on) problems.push({ path: [...path, 'on'], message: `'${a.stop}' runs on ${owner}, not ${a.on}` });
      else if (from !== 'solution') checkSolutionOnly(a.stop, [...path, 'stop']);
    }
    if (a.write && from !== 'solution') checkSolutionOnly(a.write, [...path, 'write']);
  };
  const checkDuration = (d: string, path: (string | number)[]) => {
    if (parseDuration(d) > MAX_WAIT_MS) problems.push({ path, message: 'at most 10m' });
  };
  // A timeout of nothing kills what it times at once: the command (or a student's whole answer) never runs.
  const checkTimeout = (d: string, path: (string | number)[]) => {
    checkDuration(d, path);
    if (parseDuration(d) === 0)
      problems.push({ path, message: `a timeout of ${d} kills the command before it runs: leave it out (the default) or give it more` });
  };
  const checkExpectation = (e: Expectation, path: (string | number)[]) => {
    checkNode(e.on, [...path, 'on']);
    if (e.within) checkDuration(e.within, [...path, 'within']);
    if (e.for) checkDuration(e.for, [...path, 'for']);
    const badRange = (c: unknown) =>
      typeof c === 'object' &&
      c !== null &&
      'min' in c &&
      'max' in c &&
      c.min !== undefined &&
      c.max !== undefined &&
      (c.min as number) > (c.max as number);
    // A port range (40000-40049) runs upwards, within TCP's ports.
    const endpoints = [
      ...(['local', 'peer'] as const).flatMap((f) => (['socket', 'absent'] as const).map((k) => [e[k]?.[f], [k, f]] as const)),
      ...(['from', 'to'] as const).map((f) => [e.segments?.[f], ['segments', f]] as const),
    ];
    for (const [text, at] of endpoints) {
      const range = text ? /:(\d+)-(\d+)$/.exec(text) : null;
      if (range && (Number(range[1]) > Number(range[2]) || Number(range[2]) > 65535))
        problems.push({ path: [...path, ...at], message: `the port range ${range[1]}-${range[2]} must run upwards, up to 65535` });
    }
    if (e.segments) {
      const m = e.segments;
      if (badRange(m.count)) problems.push({ path: [...path, 'segments', 'count'], message: 'min is larger than max' });
      if (badRange(m.ttl)) problems.push({ path: [...path, 'segments', 'ttl'], message: 'min is larger than max' });
      const list = (f: typeof m.flags) => (f === undefined ? [] : Array.isArray(f) ? f : f.split('|'));
      const both = list(m.flags).filter((f) => list(m.without).includes(f));
      if (both.length)
        problems.push({ path: [...path, 'segments', 'without'], message: `${both.join('|')} cannot be both set and not set` });
      // A window shorter than a second can fall between two looks (a class polls every 100 ms, and a look may
      // wait for the machine): a count of none in it would hold however much was sent.
      if (m.last !== undefined && parseDuration(m.last) < 1000)
        problems.push({ path: [...path, 'segments', 'last'], message: `last: ${m.last} is too short to see anything: give it 1s or more` });
      // Only a segment that arrived can have been sent on, or not.
      if (m.forwarded !== undefined && m.dir !== 'in')
        problems.push({ path: [...path, 'segments', 'forwarded'], message: 'forwarded is said of segments arriving: give dir: in' });
      // An ICMP error has no flags, payload or retransmissions of its own: those keys would never match one.
      const tcpOnly = (['flags', 'without', 'data', 'retransmission', 'forwarded'] as const).filter((k) => m[k] !== undefined);
      for (const k of ['icmp', 'refusal'] as const)
        if (m[k] !== undefined && tcpOnly.length)
          problems.push({ path: [...path, 'segments', k], message: `${k} cannot go with ${tcpOnly.join(', ')}: an ICMP error has none` });
      if (m.icmp !== undefined && m.refusal !== undefined)
        problems.push({
          path: [...path, 'segments', 'refusal'],
          message: 'refusal already includes ICMP errors: give icmp or refusal, not both',
        });
      if (m.iface && topology === 'direct' && !/^eth\d$/.test(m.iface))
        problems.push({ path: [...path, 'segments', 'iface'], message: `a direct lab's machines have eth0 only` });
      // A routed lab's machines see TCP on the lab's networks only (front, back; eth0 and eth1 carry the tunnels):
      // a check on another interface would never see a segment, and a count of none on it would always hold.
      const ifaces = nodesOf(topology).find((n) => n.name === e.on)?.networks ?? [];
      if (m.iface && topology === 'routed' && nodes.has(e.on) && !ifaces.includes(m.iface))
        problems.push({
          path: [...path, 'segments', 'iface'],
          message: `in a routed lab the ${e.on} ${ifaces.length === 1 ? `has one interface, ${ifaces[0]!}` : `has the interfaces ${ifaces.join(' and ')}`}: on '${m.iface}' it would never see a segment`,
        });
    }
    for (const key of ['socket', 'absent'] as const) {
      const m = e[key];
      for (const field of ['sendQ', 'recvQ', 'retransmits', 'retransTotal'] as const)
        if (badRange(m?.[field])) problems.push({ path: [...path, key, field], message: 'min is larger than max' });
      const closed = m?.state !== undefined && [m.state].flat().includes('CLOSED');
      // CLOSED is no socket at all (netstat never shows one): "no socket in CLOSED" would always hold.
      if (key === 'absent' && closed) {
        problems.push({
          path: [...path, key, 'state'],
          message: 'absent with CLOSED always holds (CLOSED means no socket); use socket: { state: CLOSED } or absent with other states',
        });
      }
      if (key === 'socket' && closed && m?.count !== undefined) {
        problems.push({ path: [...path, key, 'count'], message: 'a count cannot go with CLOSED, which means no such socket' });
      }
      if (key === 'absent' && m?.count !== undefined)
        problems.push({ path: [...path, key, 'count'], message: 'absent means no matching socket; use socket with count instead' });
      // Which side closed first is known only once both FINs went, one acknowledging the other: a socket that
      // closed first is then in TIME_WAIT, one that closed second in LAST_ACK (a simultaneous close is neither).
      if (m?.closed !== undefined && m.state !== undefined) {
        const can = CLOSED_STATES[m.closed];
        if (![m.state].flat().includes(can))
          problems.push({
            path: [...path, key, 'closed'],
            message: `closed: ${m.closed} holds only for a socket in ${can} (${CLOSED_WHY[m.closed]}); no socket in ${[m.state].flat().join(' or ')} can match`,
          });
      }
      if (
        m?.count !== undefined &&
        typeof m.count === 'object' &&
        m.count.min !== undefined &&
        m.count.max !== undefined &&
        m.count.min > m.count.max
      ) {
        problems.push({ path: [...path, key, 'count'], message: 'min is larger than max' });
      }
    }
    if (e.command) {
      const c = e.command;
      const owner = named.get(c.name);
      if (!owner) problems.push({ path: [...path, 'command', 'name'], message: `no earlier command is named '${c.name}'` });
      else if (owner !== e.on) problems.push({ path: [...path, 'on'], message: `'${c.name}' runs on ${owner}, not ${e.on}` });
      else checkSolutionOnly(c.name, [...path, 'command', 'name']);
      // A name alone holds as soon as the command has a status at all, whatever it did: it asks nothing.
      if (c.running === undefined && c.exit === undefined && c.output === undefined)
        problems.push({
          path: [...path, 'command'],
          message: `a command check must ask something: running, exit or output (with the name alone it holds once '${c.name}' has started)`,
        });
      if (c.running === true && c.exit !== undefined)
        problems.push({
          path: [...path, 'command', 'exit'],
          message: 'a running command has no exit status yet: running: true and exit never hold together',
        });
      if (c.output !== undefined) {
        const why = vacuousPattern(c.output);
        if (why) problems.push({ path: [...path, 'command', 'output'], message: why });
      }
    }
    // A count that every number meets ({}, { min: 0 }) holds with no socket or segment at all.
    const everyCount = (c: unknown) =>
      typeof c === 'object' && c !== null && (c as { max?: number }).max === undefined && !((c as { min?: number }).min ?? 0);
    if (e.socket?.count !== undefined && everyCount(e.socket.count))
      problems.push({
        path: [...path, 'socket', 'count'],
        message: 'this count holds with no socket at all: give a min of 1 or more, or a max',
      });
    if (e.segments?.count !== undefined && everyCount(e.segments.count))
      problems.push({
        path: [...path, 'segments', 'count'],
        message: 'this count holds with no segment at all: give a min of 1 or more, a max, or count: 0 for none',
      });
  };

  if (lab.steps.every((st) => !st.expect?.length && !st.task)) {
    problems.push({
      path: ['steps'],
      message: 'this lab expects nothing in any step, so grading it could never pass; give at least one step an expect list',
    });
  }
  problems.push(...checkPoints(lab));
  lab.steps.forEach((step, i) => {
    const sp = ['steps', i];
    if (seenSteps.has(step.id)) problems.push({ path: [...sp, 'id'], message: `step id '${step.id}' is used twice` });
    seenSteps.add(step.id);
    step.run?.forEach((a, j) => checkAction(a, [...sp, 'run', j]));
    if (step.task) {
      if (step.task.timeout) checkTimeout(step.task.timeout, [...sp, 'task', 'timeout']);
      if (!step.task.solution?.length) {
        problems.push({
          path: [...sp, 'task'],
          message: 'a task needs a solution, so that `lab grade` and `lab start --yes` can do it without a student',
        });
      }
      step.task.solution?.forEach((a, j) => checkAction(a, [...sp, 'task', 'solution', j], 'solution'));
      step.task.probe?.forEach((a, j) => checkAction(a, [...sp, 'task', 'probe', j], 'probe'));
      step.task.expect.forEach((e, j) => checkExpectation(e, [...sp, 'task', 'expect', j]));
    }
    step.expect?.forEach((e, j) => checkExpectation(e, [...sp, 'expect', j]));
    if (step.predict && !step.predict.choices.includes(step.predict.answer)) {
      problems.push({ path: [...sp, 'predict', 'answer'], message: 'the answer must be one of the choices' });
    }
  });
  return problems;
}

/**
 * Why an output pattern cannot tell outputs apart, or undefined when it can. A pattern that matches the empty
 * text ('', '.*', 'a?', '^') matches every output. Templates in a pattern stand for literal text (an address),
 * so they are tried as such.
 */
function vacuousPattern(pattern: string): string | undefined {
  let re: RegExp;
  try {
    re = new RegExp(expand(pattern, LITERAL_STAND_IN), 'm');
  } catch {
    return 'not a valid regular expression';
  }
  if (re.test('')) return `/${pattern}/ matches any output (it matches even an empty one): say what the output must contain`;
  return undefined;
}

/** Every template as a short literal: enough to try a pattern the way grading fills it in. */
const LITERAL_STAND_IN: Record<string, string> = new Proxy({}, { get: () => 'x' });

/**
 * Points that could be earned for nothing are refused where the file says them (docs/authoring.md, "Points"):
 * a check before the first task runs the same for every answer; a check's own points are part of its task's,
 * which must then say what the whole section is worth.
 */
function checkPoints(lab: Lab): RuleProblem[] {
  const problems: RuleProblem[] = [];
  let task: { index: number; points?: number } | undefined;
  let own: { path: (string | number)[]; points: number }[] = [];
  const close = () => {
    if (!task || own.length === 0) return;
    const sum = own.reduce((n, o) => n + o.points, 0);
    if (task.points === undefined)
      problems.push({
        path: own[0]!.path,
        message: `a check with points of its own needs its task to say what the whole task is worth: give steps[${task.index}].task points (these checks' ${sum} are part of it)`,
      });
    else if (sum > task.points + 1e-9)
      problems.push({
        path: ['steps', task.index, 'task', 'points'],
        message: `the task is worth ${task.points}, but checks of its section have ${sum} points of their own: the task's points include theirs`,
      });
  };
  lab.steps.forEach((step, i) => {
    if (step.task) {
      close();
      task = { index: i, ...(step.task.points !== undefined ? { points: step.task.points } : {}) };
      own = [];
    }
    const listed: [Expectation, (string | number)[]][] = [
      ...(step.task?.expect ?? []).map((e, j): [Expectation, (string | number)[]] => [e, ['steps', i, 'task', 'expect', j, 'points']]),
      ...(step.expect ?? []).map((e, j): [Expectation, (string | number)[]] => [e, ['steps', i, 'expect', j, 'points']]),
    ];
    for (const [e, path] of listed) {
      if (e.points === undefined || e.points === 0) continue;
      if (!task)
        problems.push({
          path,
          message: 'a check before the first task runs the same for every answer, so it cannot earn points: remove them',
        });
      else own.push({ path, points: e.points });
    }
  });
  close();
  return problems;
}
