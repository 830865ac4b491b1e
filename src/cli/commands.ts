// One typed async function per command. Commands print; the engine only emits events.
import { resolve as resolvePath } from 'node:path';
import { LabError, formatProblem } from '../errors.js';
import { catalogue, observableStates, resolveLab } from '../lab/catalogue.js';
import { validateLabText, readLabText } from '../lab/load.js';
import type { Lab } from '../lab/schema.js';
import { formatDuration } from '../lab/duration.js';
import { describeOrigin, imageOrigin } from '../engine/image.js';
import { createInstance, newInstanceId } from '../engine/provision.js';
import type { Instance } from '../engine/instance.js';
import { describeRemoved, removeInstance, type Removed } from '../engine/teardown.js';
import { listInstances } from '../engine/cleanup.js';
import { currentUser, studentFor } from '../identity.js';
import { LABEL } from '../plan/plan.js';
import { renderLabResult } from '../report/text.js';
import { defineCommand, type Command } from './command.js';
import { composeCommand } from './compose-command.js';
import { imageCommand } from './image-command.js';
import { ladderWidth, makePlainRenderer } from './render.js';
import { gradeCommand } from './grade-command.js';
import { newCommand, submitCommand } from './submit-command.js';
import { IMAGE_OPTION, prepareImage, runTracked, stderrRenderer } from './run-tracked.js';
import { planCommand } from './plan-command.js';
import { runInteractive } from './interactive.js';
import { loadProgress, recordEnded } from './state.js';
import { labCommand } from './invocation.js';
import { reflow, terminalWidth, wrapText } from './wrap.js';
import { forgetStopped, saveHeadlessProgress, STUDENT_COMMANDS } from './student.js';
import { uiCommand } from './ui-command.js';

const list = defineCommand({
  name: 'list',
  usage: 'list [--json]',
  summary: 'the labs, and the TCP states each makes observable',
  options: {},
  async run(ctx) {
    const progress = loadProgress();
    const labs = catalogue().map(({ file, lab }) => ({
      id: lab.id,
      slug: lab.slug,
      title: lab.title,
      summary: lab.summary,
      topology: lab.topology ?? 'direct',
      states: observableStates(lab),
      steps: lab.steps.length,
      tasks: lab.steps.filter((st) => st.task).length,
      file,
      progress: progress[lab.slug] ?? null,
    }));
    if (ctx.json) {
      ctx.print(JSON.stringify(labs, null, 2));
      return 0;
    }
    for (const l of labs) {
      const p = l.progress;
      const mark = !p
        ? ''
        : p.completed
          ? ctx.style.green('  ✓ completed')
          : ctx.style.yellow(
              `  last run: ${p.last.steps.done}/${p.last.steps.total} steps, tasks ${p.last.tasks.done}/${p.last.tasks.total}`,
            );
      ctx.say(`${ctx.style.bold(String(l.id).padStart(2))}  ${l.slug.padEnd(24)} ${l.title}${mark}`);
      ctx.say(`    ${ctx.style.dim(`${l.topology}; ${l.tasks} task${l.tasks === 1 ? '' : 's'}; states: ${l.states.join(', ')}`)}`);
    }
    return 0;
  },
});

const start = defineCommand({
  name: 'start',
  usage: 'start <number|slug|file> [--keep] [--yes] [--student ID]',
  summary: 'walk through a lab step by step in real containers',
  help:
    'The lab is a number (`lab start 2`), a slug or the start of one (`lab start basic`), or a lab file.\n' +
    "Builds the lab image if needed, creates the lab's machines, and runs each step: what it does, the\n" +
    "commands, both sides' sockets, and whether each expected state appeared. --keep leaves the machines running\n" +
    'afterwards (remove them with `lab stop`). At a terminal it is a guided walk: a prediction before each change,\n' +
    'a menu after each step (observe again, a shell, rules, processes, quit) and tasks you do yourself, checked\n' +
    'with `lab check` (see README "Students"). --yes, --json or no terminal: no prompts, tasks solved for you.\n' +
    'Ctrl-C, or closing the terminal, stops it at any moment: the lab is removed, what was done so far is shown,\n' +
    'and the exit code is 130 (143 for SIGTERM and SIGHUP).\n' +
    'A lab with per-student variants (a port of your own) derives them from your student id: --student ID, else\n' +
    'TCPLAB_STUDENT, else your login name. `lab submit` hands in what you typed in its tasks.',
  options: { keep: { type: 'boolean' }, yes: { type: 'boolean', short: 'y' }, student: { type: 'string' }, ...IMAGE_OPTION },
  async run(ctx, values, positionals) {
    if (positionals.length !== 1) throw new LabError('lab start takes one lab', 'for example `lab start 2`; `lab list` shows them');
    const { lab, file } = resolveLab(positionals[0]!);
    const base = values['base-image'];
    const student = studentFor(lab, values.student);
    // At a terminal, without --yes or --json, the guided walk; anywhere else no prompt at all.
    if (!values.yes && !ctx.json && process.stdin.isTTY && process.stdout.isTTY) {
      return runInteractive(ctx, lab, {
        keep: !!values.keep,
        file: resolvePath(file),
        ...(student ? { student } : {}),
        ...(base ? { base } : {}),
      });
    }
    // Text for people, fitted to the terminal when there is one (stdout; with --json it goes to stderr).
    const columns = ctx.json ? terminalWidth(ctx.err) : ctx.width;
    const write = (s: string) => ctx.info(wrapText(s, columns));
    const emit = makePlainRenderer(write, ctx.style, {
      verbose: true,
      totalSteps: lab.steps.length,
      width: ladderWidth(process.stdout.columns),
      ...(columns ? { columns } : {}),
    });
    write(ctx.style.bold(`Lab ${lab.id}: ${lab.title}`));
    write(reflow(lab.intro));
    for (const note of lab.notes ?? []) write(ctx.style.dim(`note: ${reflow(note).replace(/\n/g, ' ')}`));
    const image = await prepareImage(ctx, base, emit);
    const result = await runTracked(ctx, lab, image, emit, { keep: !!values.keep, ...(student ? { student } : {}) });
    write('');
    write(renderLabResult(result, ctx.style));
    saveHeadlessProgress(lab, result);
    if (values.keep && !ctx.signal.aborted)
      write(`The lab is still running (instance ${result.instance}); \`${labCommand()} stop ${result.instance}\` removes it.`);
    if (ctx.json) ctx.print(JSON.stringify(result, null, 2));
    return result.passed ? 0 : 1;
  },
});

function addRemoved(a: Removed, b: Removed): Removed {
  return { containers: a.containers + b.containers, networks: a.networks + b.networks };
}

const stop = defineCommand({
  name: 'stop',
  usage: 'stop [instance...] [--all]',
  summary: "remove your running lab instances (those named; with --all, everybody's)",
  help:
    'With instances named, removes those. With none, removes the instances your OS user started (the\n' +
    "io.tcplab.owner label); other users' labs on the same engine are left alone unless --all is given.\n" +
    'A shell open in a removed lab ends and says why.',
  options: { all: { type: 'boolean' } },
  async run(ctx, values, positionals) {
    if (values.all && positionals.length) throw new LabError('lab stop takes instances or --all, not both');
    let removed: Removed = { containers: 0, networks: 0 };
    const everyone = await listInstances(ctx.runtime);
    const me = currentUser();
    const ids = positionals.length ? positionals : everyone.filter((i) => values.all || i.user === me).map((i) => i.instance);
    const known = new Map(everyone.map((i) => [i.instance, i]));
    for (const id of ids) {
      // Recorded first, so that a shell open in it, which ends as soon as its machine goes, can say why.
      const info = known.get(id);
      if (info) recordEnded({ instance: id, lab: { id: 0, slug: info.lab }, how: 'stopped' });
      removed = addRemoved(removed, await removeInstance(ctx.runtime, id));
    }
    forgetStopped(ids);
    const others = positionals.length || values.all ? 0 : everyone.length - ids.length;
    if (ctx.json) ctx.print(JSON.stringify({ removed, instances: ids }));
    else {
      ctx.say(removed.containers + removed.networks ? `removed ${describeRemoved(removed)}` : 'no lab of yours is running');
      if (others)
        ctx.say(ctx.style.dim(`left ${others} instance${others === 1 ? '' : 's'} of other users running (--all removes them too)`));
    }
    return 0;
  },
});

const clean = defineCommand({
  name: 'clean',
  usage: 'clean [--stale] [--images] [instance...]',
  summary: 'remove everything tcplab created, also after a crash (with --images, its images too)',
  help:
    'With no instance named, removes every lab instance on the engine. --stale removes only instances whose\n' +
    'process on this host is gone (killed, crashed) and that were not kept with `lab start --keep`; with\n' +
    'instances named, only those. --images also removes the lab images.',
  options: { images: { type: 'boolean' }, stale: { type: 'boolean' } },
  async run(ctx, values, positionals) {
    let removed: Removed = { containers: 0, networks: 0 };
    let instances: string[] = [];
    if (values.stale || positionals.length > 0) {
      const all = await listInstances(ctx.runtime);
      instances = all
        .filter((i) => (!values.stale || i.status === 'stale') && (positionals.length === 0 || positionals.includes(i.instance)))
        .map((i) => i.instance);
      for (const id of instances) removed = addRemoved(removed, await removeInstance(ctx.runtime, id));
    } else removed = await removeInstance(ctx.runtime);
    let images = 0;
    if (values.images) {
      for (const img of await ctx.runtime.listImages({ [LABEL.managed]: 'true' })) {
        await ctx.runtime.removeImage(img.id);
        images++;
      }
    }
    if (ctx.json) ctx.print(JSON.stringify({ removed, images, ...(values.stale || positionals.length ? { instances } : {}) }));
    else {
      const which = instances.length ? ` (instances ${instances.join(', ')})` : '';
      ctx.print(`removed ${describeRemoved(removed)}${which}${values.images ? ` and ${images} images` : ''}`);
    }
    return 0;
  },
});

const validate = defineCommand({
  name: 'validate',
  usage: 'validate <file...> [--json]',
  summary: 'check lab files and report every problem with file:line (exit 2 when a file has problems)',
  options: {},
  async run(ctx, _values, positionals) {
    if (positionals.length === 0) throw new LabError('lab validate needs lab files', 'for example `lab validate labs/*.yaml`');
    const reports = positionals.map((file) => {
      const text = readLabText(file);
      if (typeof text !== 'string') return { file, ok: false, problems: [text.problem], warnings: [] };
      const v = validateLabText(text);
      return { file, ok: v.problems.length === 0, problems: v.problems, warnings: v.warnings };
    });
    if (ctx.json) ctx.print(JSON.stringify(reports, null, 2));
    else {
      for (const r of reports) {
        if (r.ok) ctx.print(`${ctx.style.green('ok')} ${r.file}`);
        for (const p of r.problems) ctx.print(formatProblem(r.file, p));
        for (const w of r.warnings) ctx.print(`${ctx.style.yellow('warning:')} ${formatProblem(r.file, w)}`);
      }
    }
    // A bad lab file is exit 2, as for every other command (README "Exit codes").
    return reports.every((r) => r.ok) ? 0 : 2;
  },
});

interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

/** A lab that only brings up the direct topology: what `lab doctor` probes with. */
const PROBE_LAB: Lab = {
  id: 999,
  slug: 'doctor',
  title: 'doctor',
  summary: '',
  intro: '',
  topology: 'direct',
  nodes: { client: { sysctls: { 'net.ipv4.tcp_syn_retries': 2 } } },
  steps: [{ id: 'probe', title: 'probe', explain: '' }],
};

/** An address outside every lab (TEST-NET-1, RFC 5737): a lab node must have no route to it. */
const OUTSIDE_ADDRESS = '192.0.2.1';

const doctor = defineCommand({
  name: 'doctor',
  usage: 'doctor [--json]',
  summary: 'check the Docker engine, the image, and that a lab container can use iptables',
  options: { ...IMAGE_OPTION },
  async run(ctx, values) {
    const checks: DoctorCheck[] = [];
    const say = (c: DoctorCheck) => {
      checks.push(c);
      ctx.info(
        `${c.ok ? ctx.style.green('✓') : ctx.style.red('✗')} ${c.name}: ${c.detail}${c.fix ? `\n    ${ctx.style.dim('fix:')} ${c.fix}` : ''}`,
      );
    };
    const finish = () => {
      if (ctx.json) ctx.print(JSON.stringify({ ok: checks.every((c) => c.ok), checks }, null, 2));
      return checks.every((c) => c.ok) ? 0 : 1;
    };
    try {
      const info = await ctx.runtime.info();
      say({
        name: 'engine',
        ok: true,
        detail: `${info.product ?? 'Docker'} ${info.version}, API ${info.apiVersion}, ${info.os}, kernel ${info.kernel}${info.cgroupVersion ? `, cgroup v${info.cgroupVersion}` : ''}${info.endpoint ? `, at ${info.endpoint}` : ''}`,
      });
      const stale = (await listInstances(ctx.runtime)).filter((i) => i.status === 'stale');
      // Leftovers of a killed run are worth knowing about, not a failure of this machine.
      say({
        name: 'leftovers',
        ok: true,
        detail: stale.length
          ? `${stale.length} instance(s) whose process is gone: ${stale.map((i) => `${i.instance} (${i.lab}, was ${i.owner})`).join(', ')}`
          : 'no instance of a dead process',
        ...(stale.length ? { fix: '`lab clean --stale` removes them' } : {}),
      });
    } catch (e) {
      say({ name: 'engine', ok: false, detail: (e as Error).message, ...(e instanceof LabError && e.hint ? { fix: e.hint } : {}) });
      return finish();
    }
    let image: string;
    try {
      image = await prepareImage(ctx, values['base-image'], stderrRenderer(ctx));
      // Built here or loaded from an archive (`lab image load`): the image's labels name the engine that built it.
      const origin = await imageOrigin(ctx.runtime, image).catch(() => undefined);
      say({ name: 'image', ok: true, detail: origin ? `${image}: ${describeOrigin(origin)}` : image });
    } catch (e) {
      say({
        name: 'image',
        ok: false,
        detail: (e as Error).message,
        fix: 'the image builds from images/node on a Debian base; without a registry, `lab image load FILE` an archive saved with `lab image save` (README "Offline classrooms")',
      });
      return finish();
    }
    const id = newInstanceId();
    ctx.live.add(id);
    try {
      const t0 = performance.now();
      const inst = await createInstance(ctx.runtime, PROBE_LAB, { image, instance: id, signal: ctx.signal });
      say({
        name: 'lab network',
        ok: true,
        detail: `internal bridge ${inst.plan.networks[0]!.subnet}, two containers with NET_ADMIN only, ready in ${formatDuration(performance.now() - t0)}`,
      });
      const rule = await inst.exec('client', ['iptables', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '9', '-j', 'DROP']);
      say({
        name: 'iptables',
        ok: rule.exitCode === 0,
        detail: rule.exitCode === 0 ? 'a rule can be added inside a container' : rule.stderr.trim(),
        ...(rule.exitCode === 0
          ? {}
          : { fix: 'the kernel needs the iptables (nf_tables) modules; on Docker Desktop update to a current version' }),
      });
      const sysctl = await inst.exec('client', ['cat', '/proc/sys/net/ipv4/tcp_syn_retries']);
      say({
        name: 'per-node sysctls',
        ok: sysctl.stdout.trim() === '2',
        detail: `net.ipv4.tcp_syn_retries=${sysctl.stdout.trim()} (asked for 2)`,
      });
      const ss = await inst.exec('server', ['ss', '-tanoH']);
      say({ name: 'ss', ok: ss.exitCode === 0, detail: ss.exitCode === 0 ? 'ss runs' : ss.stderr.trim() });
      say(await isolation(inst));
    } catch (e) {
      say({
        name: 'lab network',
        ok: false,
        detail: (e as Error).message,
        fix: 'run `lab clean`, then try again; DEBUG=lab* shows every engine call',
      });
    } finally {
      await removeInstance(ctx.runtime, id).catch(() => {});
      ctx.live.delete(id);
    }
    return finish();
  },
});

/**
 * Is a lab node cut off from everything outside its lab? Asked without sending anything out: the kernel's
 * route lookup for an outside address must fail (no default route), and so must the route to the host's
 * default bridge. Then a connection to its own bridge's gateway address, which the host must not answer
 * (the bridge has no address on the host side), stays inside the bridge.
 */
export async function isolation(inst: Pick<Instance, 'exec' | 'plan'>): Promise<DoctorCheck> {
  const route = await inst.exec('client', ['ip', 'route', 'get', OUTSIDE_ADDRESS]);
  if (route.exitCode === 0) {
    return {
      name: 'isolation',
      ok: false,
      detail: `a lab node has a route out of the lab: ${route.stdout.trim()}`,
      fix: 'tcplab removes the default route of every node; an engine that re-adds one breaks isolation: report it with `lab doctor --json`',
    };
  }
  const gateway = inst.plan.networks[0]!.gateway;
  const probe = await inst.exec('client', ['nc', '-vz', '-w', '1', gateway, '22'], { timeoutMs: 5000 });
  const answered = probe.exitCode === 0 || /refused|succeeded/i.test(probe.stdout + probe.stderr);
  return answered
    ? {
        name: 'isolation',
        ok: false,
        detail: `the host answers a lab node at the bridge gateway ${gateway}: ${(probe.stderr || probe.stdout).trim()}`,
        fix: 'this engine ignores com.docker.network.bridge.inhibit_ipv4; lab nodes can reach the host',
      }
    : { name: 'isolation', ok: true, detail: `no route from a lab node to ${OUTSIDE_ADDRESS}, and the host does not answer at ${gateway}` };
}

export const COMMANDS: Command[] = [
  list,
  start,
  gradeCommand,
  planCommand,
  stop,
  clean,
  doctor,
  validate,
  composeCommand,
  imageCommand,
  ...STUDENT_COMMANDS,
  uiCommand,
  submitCommand,
  newCommand,
];
