// What one look at a node has to include, from a set of expectations. The look itself is the agent's
// (agent-protocol.ts).
import type { Expectation, NodeName } from '../lab/schema.js';

/** What one look at a node has to include beyond its sockets. */
export interface ObserveNeed {
  iptables: boolean;
  /** Named commands whose status to read. */
  commands: Set<string>;
  /** A segments expectation, or a socket's `closed`: the snapshot carries the segments since the step began. */
  segments?: boolean;
  /** The snapshot says how many of the agent's commands' processes are runnable: Instance.waitFor asks it of
   *  every node while an expectation must hold for a while (see decide()). */
  runnable?: boolean;
}

/** Per node, what a set of expectations needs observed. */
export function needsOf(expectations: Expectation[]): Map<NodeName, ObserveNeed> {
  const needs = new Map<NodeName, ObserveNeed>();
  for (const e of expectations) {
    const n = needs.get(e.on) ?? { iptables: false, commands: new Set<string>() };
    if (e.iptables) n.iptables = true;
    if (e.command) n.commands.add(e.command.name);
    // Which side closed first is read from the socket's own segments.
    if (e.segments || (e.socket ?? e.absent)?.closed) n.segments = true;
    needs.set(e.on, n);
  }
  return needs;
}
