// `lab list`: the labs, their topology and the TCP states each makes observable, with the student's progress.
import { catalogue, observableStates } from '../../lab/catalogue.js';
import { defineCommand } from '../command.js';
import { stateFiles } from '../../walk/state-files.js';

export const listCommand = defineCommand({
  name: 'list',
  usage: 'list [--json]',
  summary: 'the labs, and the TCP states each makes observable',
  options: {},
  async run(ctx) {
    const progress = stateFiles().loadProgress();
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
