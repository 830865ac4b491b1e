// `lab new`: a commented starting lab file that validates (docs/authoring.md explains every field).
import { existsSync } from 'node:fs';
import { LabError } from '../../errors.js';
import { defineCommand } from '../command.js';
import { ownFile } from '../../paths.js';
import { checkOutputFile, writeOutputFile } from '../output-file.js';

/** The JSON Schema that ships with tcplab, for editors (the labs in labs/ name it relatively). */
const SCHEMA_FILE = ownFile('schema', 'lab.schema.json');

const NEW_LAB = (slug: string, id: number) => `# yaml-language-server: $schema=${SCHEMA_FILE}
# A tcplab lab, started by \`lab new ${slug}\`. Check it with \`lab validate FILE\`, run it with \`lab start FILE\`,
# grade its reference solution with \`lab grade FILE\`. docs/authoring.md explains every field.
id: ${id}
slug: ${slug}
title: A new lab
summary: One line for \`lab list\`.
topology: direct            # direct: client and server on one bridge; routed: a firewall between them
intro: |
  What the student will see and why it matters. Shown once, before the first step.
# Kernel settings per machine, set when its container is created (only net.ipv4.*, net.ipv6.*, net.core.*).
nodes:
  client:
    sysctls:
      net.ipv4.tcp_syn_retries: 3
# Per-student values: {{variant.port}} is a port of each student's own, derived from the student id.
variants:
  port: { range: [6000, 6099] }
steps:
  - id: listen
    title: The server listens
    explain: |
      Each step runs its commands (argv arrays, inside the machine named by \`on\`), then polls its
      expectations from the moment the commands are done.
    run:
      # A command that keeps running needs a name (to stop or check it later) and background: true.
      - { on: server, run: [nc, -l, "{{variant.port}}"], name: server, background: true }
    expect:
      - on: server
        socket: { state: LISTEN, local: "*:{{variant.port}}" }
        why: a passive open waits in LISTEN
  - id: close-first
    title: "Your task: leave the client in TIME_WAIT"
    explain: A task is done by the student, in \`lab shell\`, and checked with \`lab check\`.
    task:
      prompt: |
        In \`lab shell client\`, connect to {{server.ip}} port {{variant.port}}, and have the client close first.
      hints:
        - echo hi | nc -q0 {{server.ip}} {{variant.port}}
      # What \`lab grade\` and \`lab start --yes\` run instead of a student. A student's answer names no commands,
      # so no later step may stop or check a command only the solution starts: check what the answer leaves
      # (sockets, rules), or give the task a \`probe\` that tries it (docs/authoring.md, "Tasks").
      solution:
        - on: client
          run: [sh, -c, 'echo hi | nc -q0 "$0" "$1"', "{{server.ip}}", "{{variant.port}}"]
      # The task and the steps after it, up to the next task, all or nothing (default: one point per check).
      # A check may have points of its own (partial credit) only if an empty answer fails it: \`lab test\` checks.
      points: 2
      expect:
        # No \`within\`: a task's check keeps its default (docs/authoring.md, "Timing").
        # \`local\` ties the socket to the client's own address (a connection the client makes with itself, on its
        # loopback, is not this one), and \`closed: first\` to its own FINs on the wire: the client's FIN left
        # first and the server's FIN acknowledged it (docs/authoring.md, "Expectations").
        - on: client
          socket: { state: TIME_WAIT, local: "{{client.ip}}:*", peer: "{{server.ip}}:{{variant.port}}", closed: first }
          why: whoever closes first waits in TIME_WAIT
  - id: server-done
    title: The server has closed too
    explain: A step after a task also grades the task's effect, here on the lab's own command.
    expect:
      - on: server
        command: { name: server, running: false }
        why: nc -l ends once its one connection is closed by the peer
      - on: server
        absent: { state: [ESTABLISHED, CLOSE_WAIT, LAST_ACK], local: "*:{{variant.port}}" }
        why: the server closed second and keeps nothing
`;

export const newCommand = defineCommand({
  name: 'new',
  usage: 'new <slug> [-o FILE] [--id N]',
  summary: 'write a commented starting lab file that validates',
  help: "Writes <slug>.yaml (or -o FILE): a small lab with a step, a task with points and a variant, and a step\nafter it, every field commented, which a student's answer can pass. It never overwrites a file. See docs/authoring.md.",
  options: { output: { type: 'string', short: 'o' }, id: { type: 'string' } },
  async run(ctx, values, positionals) {
    const slug = positionals[0];
    if (positionals.length !== 1 || !slug || !/^[a-z][a-z0-9-]{0,31}$/.test(slug))
      throw new LabError(
        'lab new takes a slug: lower-case letters, digits and dashes, starting with a letter',
        'for example `lab new my-first-lab`',
      );
    const id = Number(values.id ?? 100);
    if (!Number.isInteger(id) || id < 1 || id > 999) throw new LabError('--id takes a lab number from 1 to 999');
    const out = values.output ?? `${slug}.yaml`;
    if (out !== '-' && existsSync(out)) throw new LabError(`${out} already exists`, 'choose another name with -o FILE');
    if (out !== '-') checkOutputFile('-o', out);
    const text = newLabText(slug, id);
    if (out === '-') ctx.out.write(text);
    else {
      writeOutputFile('-o', out, text, { flag: 'wx' });
      ctx.print(`wrote ${out}; \`lab validate ${out}\` checks it, \`lab start ${out}\` runs it`);
    }
    return 0;
  },
});

/** The file `lab new` writes (a unit test validates it). */
export function newLabText(slug: string, id: number): string {
  return NEW_LAB(slug, id);
}
