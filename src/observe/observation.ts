// The wire format of `tcplab-observe` (images/node/tcplab-observe), in one place for the engine and the CLI:
// which arguments ask for what, and how its answer parses. An answer is sections, each introduced by a
// "### NAME" line: "### ss" (ss -tanoH), "### iptables" (iptables-save -c), "### command NAME" (tcplab-run
// status NAME: "running" or "exited RC", then the output). In --serve mode every answer ends with
// "### end SEQ RC", RC being ss's exit code. The segment sections ("### clock", "### segments G O", asked for
// with --segments GEN OFFSET) are read by observe/segments.ts and trace/recorder.ts.
import type { Expectation, NodeName } from '../lab/schema.js';
import { parseIptablesSave, type RuleCounter } from './iptables.js';
import { parseSs, type Socket } from './ss.js';

export const OBSERVE_PROGRAM = 'tcplab-observe';

/** What one look at a node has to include beyond its sockets. */
export interface ObserveNeed {
  iptables: boolean;
  /** Named background commands whose status to read. */
  commands: Set<string>;
  /** A segments expectation: the snapshot carries the segments since the step began. */
  segments?: boolean;
}

export interface CommandStatus {
  running: boolean;
  exit?: number;
  output: string;
}

interface Observation {
  sockets: Socket[];
  counters?: RuleCounter[];
  commands: Record<string, CommandStatus>;
}

/** Per node, what a set of expectations needs observed. */
export function needsOf(expectations: Expectation[]): Map<NodeName, ObserveNeed> {
  const needs = new Map<NodeName, ObserveNeed>();
  for (const e of expectations) {
    const n = needs.get(e.on) ?? { iptables: false, commands: new Set<string>() };
    if (e.iptables) n.iptables = true;
    if (e.command) n.commands.add(e.command.name);
    if (e.segments) n.segments = true;
    needs.set(e.on, n);
  }
  return needs;
}

const WORD = /^[A-Za-z0-9_-]+$/;

/** The arguments after the program name (also the request line of --serve mode, after its sequence number). */
export function observeArgs(need: ObserveNeed): string[] {
  const args: string[] = [];
  if (need.iptables) args.push('--iptables');
  for (const c of need.commands) args.push('--command', c);
  return plainWords(args);
}

/** One request of --serve mode: a line the observer splits on spaces, so only plain words may go in it. */
export function serveRequest(seq: number, args: string[]): string {
  return `${[seq, ...plainWords(args)].join(' ')}\n`;
}

function plainWords(args: string[]): string[] {
  for (const a of args) if (!WORD.test(a)) throw new Error(`bad observe argument ${a}`);
  return args;
}

/** Find the end of the answer to request `seq` in what has arrived so far. */
export function findAnswerEnd(buffer: string, seq: number): { text: string; exitCode: number; rest: string } | undefined {
  const m = new RegExp(`^### end ${seq} (\\d+)$`, 'm').exec(buffer);
  if (!m) return undefined;
  return { text: buffer.slice(0, m.index), exitCode: Number(m[1]), rest: buffer.slice(m.index + m[0].length).replace(/^\n/, '') };
}

export function parseObservation(text: string): Observation {
  const sections = new Map<string, string[]>();
  let current = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('### ')) {
      current = line.slice(4).trim();
      sections.set(current, []);
    } else sections.get(current)?.push(line);
  }
  const obs: Observation = { sockets: parseSs((sections.get('ss') ?? []).join('\n')), commands: {} };
  if (sections.has('iptables')) obs.counters = parseIptablesSave(sections.get('iptables')!.join('\n'));
  for (const [key, lines] of sections) {
    if (!key.startsWith('command ')) continue;
    const [status = '', ...output] = lines;
    const m = /^exited (\d+)/.exec(status);
    obs.commands[key.slice(8)] = m
      ? { running: false, exit: Number(m[1]), output: output.join('\n') }
      : { running: status === 'running', output: output.join('\n') };
  }
  return obs;
}
