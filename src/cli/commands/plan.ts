// lab plan: what `lab start` would create and run, without touching Docker (planning is pure).
import { LabError } from '../../errors.js';
import { resolveLab } from '../../lab/catalogue.js';
import { NODE_SECURITY, planLab, subnetAt } from '../../plan/plan.js';
import { fill } from '../../lab/templates.js';
import { shellQuote } from '../../plan/shell.js';
import { networksOf } from '../../lab/topology.js';
import { imageTag } from '../../engine/image.js';
import { defineCommand } from '../command.js';
import type { Action } from '../../lab/schema.js';
import { variantValues } from '../../lab/variants.js';
import { STUDENT_ID, STUDENT_ID_RULE } from '../../identity.js';

export const planCommand = defineCommand({
  name: 'plan',
  usage: 'plan <number|slug|file> [--student ID] [--json]',
  summary: 'show what a lab would create and run, without starting anything (a dry run)',
  options: { student: { type: 'string' } },
  async run(ctx, values, positionals) {
    if (positionals.length !== 1) throw new LabError('lab plan takes one lab', 'for example `lab plan 2`');
    const student = values.student as string | undefined;
    if (student !== undefined && !STUDENT_ID.test(student)) throw new LabError(`--student takes a student id: ${STUDENT_ID_RULE}`);
    const { lab } = resolveLab(positionals[0]!);
    const topology = lab.topology ?? 'direct';
    // Real subnets are picked at start from those the engine does not use; the plan shows the first candidates.
    const subnets = networksOf(topology).map((_, i) => subnetAt(i));
    const plan = planLab({ lab, instance: 'dryrun', image: imageTag(), subnets });
    // Per-student variants ({{variant.port}}) stay as written, since they depend on who runs the lab, unless
    // --student says who: then they are that student's (as lab grade and lab start --student fill them in).
    const variants = student !== undefined ? variantValues(lab, student) : {};
    if (student !== undefined) Object.assign(plan.vars, variants);
    const shown = (a: Action) =>
      a.stop
        ? `${a.on}: stop ${a.stop} (SIG${a.signal ?? 'INT'})`
        : a.write !== undefined
          ? `${a.on}: write to ${a.write}: ${JSON.stringify(fill(a.stdin ?? '', plan.vars))}`
          : `${a.on}$ ${shellQuote(a.run!.map((x) => fill(x, plan.vars)))}${a.background ? ' &' : ''}${a.stdin !== undefined ? `  (its input: ${JSON.stringify(fill(a.stdin, plan.vars))})` : ''}`;
    // A task's probe runs before each look of its checks (after the solution, or the student's work): its own
    // list, so that what the check does is told from what the step does.
    const steps = lab.steps.map((s) => ({
      id: s.id,
      title: s.title,
      actions: [...(s.run ?? []), ...(s.task?.solution ?? [])].map(shown),
      ...(s.task?.probe?.length ? { probe: s.task.probe.map(shown) } : {}),
    }));
    if (ctx.json) {
      ctx.print(JSON.stringify({ plan, security: NODE_SECURITY, steps, ...(student !== undefined ? { student, variants } : {}) }, null, 2));
      return 0;
    }
    ctx.print(ctx.style.bold(`Lab ${lab.id} (${lab.slug}), ${topology} topology; instance names use a random id, shown here as "dryrun"`));
    if (student !== undefined)
      ctx.print(
        Object.keys(variants).length
          ? `variants of student ${student}: ${Object.entries(variants)
              .map(([k, v]) => `{{${k}}} = ${v}`)
              .join(', ')}`
          : `this lab has no variants: student ${student} gets the same values as everyone`,
      );
    for (const n of plan.networks) ctx.print(`network ${n.name}  ${n.subnet}  internal`);
    for (const n of plan.nodes) {
      const sysctls = Object.entries(n.sysctls)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      ctx.print(
        `node    ${n.name}  ${n.interfaces.map((i) => `${i.ip} on ${i.network}`).join(', ')}${n.routes.length ? `  routes ${n.routes.map((r) => `${r.to} via ${r.via}`).join(', ')}` : ''}${sysctls ? `  sysctls ${sysctls}` : ''}`,
      );
    }
    ctx.print(
      ctx.style.dim(
        `every node: image ${plan.image}, student processes ${NODE_SECURITY.capAdd.join('+')} only (the agent: its own user), no-new-privileges, read-only root, ${NODE_SECURITY.memoryBytes >> 20} MiB, ${NODE_SECURITY.pidsLimit} pids`,
      ),
    );
    for (const [i, s] of steps.entries()) {
      ctx.print(`\n${i + 1}. ${s.title}`);
      for (const a of s.actions) ctx.print(`   ${a}`);
      for (const a of s.probe ?? []) ctx.print(`   ${ctx.style.dim('probe:')} ${a}`);
    }
    return 0;
  },
});
