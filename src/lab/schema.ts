// The single source of truth for lab files. The JSON Schema in schema/lab.schema.json is generated from this
// (npm run schema) and a test fails when the committed copy drifts.
import { z } from 'zod';

/** The eleven states of the article's Table 1, with the names netstat and the article use. */
export const TCP_STATES = [
  'CLOSED',
  'LISTEN',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT_1',
  'FIN_WAIT_2',
  'CLOSE_WAIT',
  'CLOSING',
  'LAST_ACK',
  'TIME_WAIT',
] as const;
export type TcpState = (typeof TCP_STATES)[number];

export const NODE_NAMES = ['client', 'server', 'firewall'] as const;
export type NodeName = (typeof NODE_NAMES)[number];

const NodeNameSchema = z.enum(NODE_NAMES).describe('Which machine of the lab.');
const StateSchema = z.enum(TCP_STATES);
const Name = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'use lower-case letters, digits and dashes (at most 32), starting with a letter');
const Text = (max: number) => z.string().max(max, `at most ${max} characters`);
export const DURATION_PATTERN = /^(\d{1,6})(\.\d{1,3})?(ms|s|m)$/;
const Duration = z.string().regex(DURATION_PATTERN, 'a duration such as 500ms, 5s or 2m').describe('A duration: 500ms, 5s, 1.5s, 2m.');

const Arg = z
  .string()
  .max(4096, 'an argument of at most 4096 characters')
  .refine((s) => !s.includes('\0'), 'no NUL characters');
const Argv = z
  .array(Arg)
  .min(1, 'a command needs at least the program name')
  .max(128, 'at most 128 arguments')
  .describe(
    'The command as an argv array, run inside the container without a shell. Templates: {{server.ip}}, {{client.ip}}, {{firewall.ip.front}}, {{firewall.ip.back}}.',
  );

const HostPattern = String.raw`(\*|\{\{\s*(client|server|firewall)\.ip(\.(lan|front|back))?\s*\}\}|\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\])`;
// A port may be a per-student variant ({{variant.port}}): see `variants` below.
// Or a range of ports, both ends included (40000-40049: a client's ephemeral ports).
const PortPattern = String.raw`(\*|\d{1,5}(-\d{1,5})?|\{\{\s*variant\.[a-z]{1,32}\s*\}\})`;
const AddrPattern = z
  .string()
  .regex(new RegExp(`^${HostPattern}:${PortPattern}$`), 'an address such as *:5555, {{server.ip}}:5555 or 198.18.0.3:*')
  .describe('host:port; host is *, an IP or {{node.ip}}; port is *, a number, a range (40000-40049) or {{variant.NAME}}.');

/** Points a check or a task is worth when `lab grade --submissions` grades a student's work. */
const Points = z.number().min(0).max(1000);

const Count = z.union([
  z.number().int().min(0),
  z.strictObject({ min: z.number().int().min(0).optional(), max: z.number().int().min(0).optional() }),
]);

const TIMER_NAMES = ['on', 'keepalive', 'timewait', 'persist', 'off'] as const;

export const SocketMatcherSchema = z
  .strictObject({
    state: z.union([StateSchema, z.array(StateSchema).min(1)]).optional(),
    local: AddrPattern.optional(),
    peer: AddrPattern.optional(),
    sendQ: Count.optional().describe('Bytes sent and not yet acknowledged (ss Send-Q), e.g. { min: 1 }.'),
    recvQ: Count.optional().describe('Bytes received and not yet read by the program (ss Recv-Q).'),
    timer: z
      .enum(TIMER_NAMES)
      .optional()
      .describe('The running timer as ss -o shows it: on (retransmission), keepalive, timewait, persist (zero window); off: none.'),
    retransmits: Count.optional().describe(
      'Retransmissions of the unanswered segment so far: the last number of ss -o timer:(on,1.2sec,3). Resets when an ACK arrives.',
    ),
    retransTotal: Count.optional().describe(
      "Every retransmission over the connection's life: ss -i retrans:CURRENT/TOTAL. Stays after the data got through.",
    ),
    closed: z
      .enum(['first', 'second'])
      .optional()
      .describe(
        "Which side of this socket's own connection closed first, as its machine's capture saw it (loopback left out): first, its FIN left and the peer's FIN that came back acknowledged it; second, the peer's FIN came in and this side's FIN acknowledged it. A socket whose connection's FINs were not seen on the wire matches neither.",
      ),
    count: Count.optional().describe('How many sockets must match (default: at least one).'),
  })
  .describe('Which sockets: any field left out matches everything.');

const TCP_FLAG_NAMES = ['SYN', 'ACK', 'FIN', 'RST', 'PSH', 'URG', 'ECE', 'CWR'] as const;
const FlagName = z.enum(TCP_FLAG_NAMES);
const Flags = z
  .union([
    z.string().regex(/^(SYN|ACK|FIN|RST|PSH|URG|ECE|CWR)(\|(SYN|ACK|FIN|RST|PSH|URG|ECE|CWR))*$/, 'flags such as SYN, SYN|ACK or FIN|ACK'),
    z.array(FlagName).min(1).max(8),
  ])
  .describe('TCP flags, written SYN|ACK or [SYN, ACK].');

/** The codes of an ICMP destination unreachable, in iptables' words without their prefix (src/observe/segments.ts). */
const ICMP_NAMES = [
  'net-unreachable',
  'host-unreachable',
  'proto-unreachable',
  'port-unreachable',
  'frag-needed',
  'net-prohibited',
  'host-prohibited',
  'admin-prohibited',
  'no-route',
  'addr-unreachable',
  'policy-fail',
  'reject-route',
  'other',
] as const;
export type IcmpName = (typeof ICMP_NAMES)[number];

export const SegmentMatcherSchema = z
  .strictObject({
    from: AddrPattern.optional().describe('The sender, host:port: {{client.ip}}:*, *:5555.'),
    to: AddrPattern.optional().describe('The receiver, host:port: {{server.ip}}:5555.'),
    dir: z
      .enum(['in', 'out'])
      .optional()
      .describe('As the machine in `on` saw it: in, arrived at it; out, it sent or forwarded it. Default: either.'),
    iface: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,15}$/, 'an interface name such as eth0, front or back')
      .optional()
      .describe("Only on this interface of `on` (a routed lab's firewall has front and back)."),
    flags: Flags.optional().describe('Every one of these flags is set.'),
    without: Flags.optional().describe('None of these flags is set: flags SYN without ACK is a connection request, not its answer.'),
    data: z.boolean().optional().describe('true: carries payload bytes; false: carries none.'),
    retransmission: z
      .boolean()
      .optional()
      .describe('true: only segments whose sequence range this machine already saw (a retransmission); false: only first sendings.'),
    ttl: z
      .strictObject({
        min: z.number().int().min(0).max(255).optional(),
        max: z.number().int().min(0).max(255).optional(),
      })
      .optional()
      .describe(
        "The IP TTL (IPv6 hop limit) the segment carried as this machine saw it: { min: 2 } leaves out segments sent with a hop limit that ends here (a sender's route with hoplimit 1 loses them at the firewall with no rule).",
      ),
    ipOptions: z
      .boolean()
      .optional()
      .describe(
        "true: only segments that carried IPv4 options (a header longer than 20 bytes); false: only segments that carried none. false leaves out segments sent with an option a router drops them for (a source route, IP_OPTIONS on the sender's socket, dies at a firewall that takes none, with no rule).",
      ),
    forwarded: z
      .boolean()
      .optional()
      .describe(
        'With dir: in. true: only segments that this machine sent on (one with the same sequence and acknowledgement numbers and length left it right after); false: only those it never sent on, half a second after they arrived: what a firewall dropped, not what it forwarded to a machine that dropped it.',
      ),
    icmp: z
      .union([z.literal(true), z.enum(ICMP_NAMES)])
      .optional()
      .describe(
        'Not TCP segments but ICMP "destination unreachable" errors about them (REJECT --reject-with icmp-...): true for any, or one code (port-unreachable, admin-prohibited, host-unreachable...). from and to are then those of the TCP conversation, as a reset would carry them: from the end the refused segment was sent to, to its sender.',
      ),
    refusal: z
      .literal(true)
      .optional()
      .describe(
        'A connection refused either way: a reset (RST), or an ICMP destination unreachable about the segment (from and to as for icmp).',
      ),
    last: Duration.optional().describe(
      'Only segments captured in this long before each look (a window that slides): what is happening now, not what a student tried earlier in the step.',
    ),
    count: Count.optional().describe('How many such segments (default: at least one).'),
  })
  .describe(
    "Segments that `on`'s capture saw since this step began. A segment its own OUTPUT chain dropped never reaches the capture (an iptables expectation counts it).",
  );

const CounterSchema = z.strictObject({
  table: z.enum(['filter', 'raw', 'mangle', 'nat']).optional(),
  chain: z.string().regex(/^[A-Za-z0-9_-]{1,28}$/, 'a chain name such as INPUT, OUTPUT or FORWARD'),
  rule: z
    .array(
      z
        .string()
        .max(200)
        // An empty word is found in every rule, so a check made of it could never tell one rule from another.
        .refine((w) => w.trim() !== '', 'an empty rule word matches every rule: give the words the rule must contain, e.g. "-j DROP"'),
    )
    .min(1)
    .max(20)
    .describe('Words that must all appear in the rule as iptables -S prints it, e.g. ["--dport 5555", "-j DROP"].'),
  packets: Count.describe('How many packets the rule must have matched.'),
});

const CommandCheckSchema = z.strictObject({
  name: Name.describe('The name given to a run action.'),
  running: z.boolean().optional(),
  exit: z.number().int().min(0).max(255).optional(),
  output: z
    .string()
    .max(500)
    .optional()
    .describe('A regular expression the command output must match; templates in it ({{server.ip}}) stand for their value as literal text.'),
});

export const ExpectationSchema = z
  .strictObject({
    on: NodeNameSchema,
    socket: SocketMatcherSchema.optional().describe('Sockets that must be present.'),
    absent: SocketMatcherSchema.optional().describe('Sockets that must not be present.'),
    iptables: CounterSchema.optional().describe('An iptables rule counter.'),
    command: CommandCheckSchema.optional().describe('A named command: running, or its exit status and output.'),
    segments: SegmentMatcherSchema.optional().describe('TCP segments on the wire, as this machine captured them since the step began.'),
    within: Duration.optional().describe('Deadline for the expectation to hold (default 5s).'),
    for: Duration.optional().describe('Once it holds, it must keep holding this long.'),
    why: Text(500).optional().describe('One line that explains the expectation to the student.'),
    points: Points.optional().describe(
      "Partial credit: what this check earns on its own when a submission meets it, part of its task's points. Only for checks the null answer (the task not done at all) fails. Without it, the check counts toward its task's all-or-nothing points.",
    ),
  })
  .superRefine((e, ctx) => {
    const kinds = (['socket', 'absent', 'iptables', 'command', 'segments'] as const).filter((k) => e[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `an expectation needs exactly one of socket, absent, iptables, command, segments (found ${kinds.length ? kinds.join(', ') : 'none'})`,
      });
    }
  });

export const ActionSchema = z
  .strictObject({
    on: NodeNameSchema,
    run: Argv.optional(),
    name: Name.optional().describe('Names a command so later steps can stop it or check it.'),
    background: z.boolean().optional().describe('Start it and go on (nc -l, a client that stays connected).'),
    stdin: Text(65536)
      .optional()
      .describe('What the command reads on standard input; without it a background command sees an open, silent terminal.'),
    timeout: Duration.optional().describe('For a foreground command: kill it after this long (default 10s).'),
    stop: Name.optional().describe('Stop the named background command, like Ctrl-C.'),
    signal: z.enum(['INT', 'TERM', 'KILL', 'HUP']).optional(),
    write: Name.optional().describe(
      'Type `stdin` into the named background command (one started without stdin), as if typed in its terminal.',
    ),
  })
  .superRefine((a, ctx) => {
    if ([a.run, a.stop, a.write].filter((x) => x !== undefined).length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'an action needs exactly one of run, stop or write' });
    }
    if (a.stop !== undefined && (a.background || a.stdin || a.timeout || a.name)) {
      ctx.addIssue({ code: 'custom', message: 'stop takes only on, stop and signal' });
    }
    if (a.write !== undefined && (a.background || a.timeout || a.name || a.signal)) {
      ctx.addIssue({ code: 'custom', message: 'write takes only on, write and stdin' });
    }
    if (a.write !== undefined && a.stdin === undefined) ctx.addIssue({ code: 'custom', message: 'write needs stdin: what to type' });
    if (a.run !== undefined && a.signal) ctx.addIssue({ code: 'custom', message: 'signal goes with stop, not run' });
    if (a.background && !a.name) ctx.addIssue({ code: 'custom', message: 'a background command needs a name' });
    if (a.background && a.timeout) ctx.addIssue({ code: 'custom', message: 'timeout is for foreground commands' });
  });

const PredictSchema = z.strictObject({
  question: Text(300),
  choices: z.array(Text(100)).min(2).max(8),
  answer: Text(100),
  why: Text(1000),
});

const TaskSchema = z.strictObject({
  prompt: Text(2000).describe('What the student must do by hand, in lab shell or another terminal.'),
  hints: z.array(Text(500)).max(5).optional(),
  solution: z
    .array(z.lazy(() => ActionSchema))
    .max(20)
    .optional()
    .describe('Actions that solve the task (used with --yes).'),
  probe: z
    .array(z.lazy(() => ActionSchema))
    .max(10)
    .optional()
    .describe(
      "What every check of the task does before it looks, to try the student's work the way a user would (a connection through their rule), so that the effect is graded and not the text of a rule. Background commands it starts are stopped when the check ends.",
    ),
  expect: z.array(ExpectationSchema).min(1).max(20),
  points: Points.optional().describe(
    'What the task is worth when a submission is graded: its section (this step and the steps after it, up to the next task) earns it only when every check of the section is met, except the points single checks carry of their own. Default: one per check of the section.',
  ),
  timeout: Duration.optional().describe(
    "How long a submitted answer's commands may run on each machine before they are killed (default 30s).",
  ),
});

export const StepSchema = z.strictObject({
  id: Name,
  title: Text(200),
  explain: Text(5000),
  predict: PredictSchema.optional(),
  run: z.array(ActionSchema).max(50).optional(),
  task: TaskSchema.optional(),
  expect: z.array(ExpectationSchema).max(50).optional(),
});

const Sysctls = z
  .record(
    z
      .string()
      .regex(
        /^net\.(ipv4|ipv6|core)\.[a-z0-9_.]{1,64}$/,
        'only net.ipv4.*, net.ipv6.* and net.core.* sysctls are namespaced per container',
      ),
    z.union([z.string().max(64), z.number()]),
  )
  .describe('Kernel settings for this node, set when its container is created.');

const NodeConfigSchema = z.strictObject({ sysctls: Sysctls.optional() });

/** A per-student value, derived from the student id: {{variant.NAME}} anywhere templates apply. */
export const VARIANT_NAME = /^[a-z]{1,32}$/;
const VariantSchema = z
  .union([
    z
      .strictObject({
        range: z
          .tuple([z.number().int().min(0).max(1_000_000), z.number().int().min(0).max(1_000_000)])
          .describe('[lowest, highest], both included: a whole number from this range.'),
      })
      .describe('A whole number from a range, e.g. a port: { range: [5600, 5699] }.'),
    z
      .strictObject({
        choices: z
          .array(z.union([z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits and _ . : - (at most 64)'), z.number()]))
          .min(2)
          .max(100)
          .describe('The values to choose from.'),
      })
      .describe('One of a list: { choices: [DROP, REJECT] }.'),
  ])
  .describe('How a per-student value is chosen.');
const Variants = z
  .record(z.string().regex(VARIANT_NAME, 'a variant name is lower-case letters only (it is used as {{variant.NAME}})'), VariantSchema)
  .describe(
    "Per-student values, derived from the student id (lab start --student, lab grade --submissions): {{variant.NAME}} in prompts, commands and expectations (not in answers, which are graded as written). A student's copy of another's answer then fails, unless the two share the value.",
  );

export const LabSchema = z
  .strictObject({
    $schema: z.string().optional(),
    id: z.number().int().min(1).max(999).describe('The lab number: lab start 2.'),
    slug: Name,
    title: Text(200),
    summary: Text(500),
    source: Text(300).optional().describe('Where the lab comes from, e.g. the article exercise.'),
    topology: z
      .enum(['direct', 'routed'])
      .optional()
      .describe('direct: client and server on one bridge. routed: client and server on two bridges, a firewall routing between them.'),
    intro: Text(20000),
    notes: z.array(Text(2000)).max(20).optional().describe('Where Linux differs from RFC 793 or from the article.'),
    nodes: z
      .strictObject({
        client: NodeConfigSchema.optional(),
        server: NodeConfigSchema.optional(),
        firewall: NodeConfigSchema.optional(),
      })
      .optional(),
    variants: Variants.optional(),
    steps: z.array(StepSchema).min(1).max(100),
  })
  .describe('A tcplab lab file.');

export type Lab = z.infer<typeof LabSchema>;
export type Step = z.infer<typeof StepSchema>;
export type Task = z.infer<typeof TaskSchema>;
export type Action = z.infer<typeof ActionSchema>;
export type Expectation = z.infer<typeof ExpectationSchema>;
export type SocketMatcher = z.infer<typeof SocketMatcherSchema>;
export type SegmentMatcher = z.infer<typeof SegmentMatcherSchema>;
export type CountSpec = z.infer<typeof Count>;
export type Topology = NonNullable<Lab['topology']>;
export type Variant = z.infer<typeof VariantSchema>;
