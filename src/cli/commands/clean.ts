// `lab clean`: remove everything tcplab created, found by label, also after a crash (--stale: only instances
// whose process is gone).
import { addRemoved, describeRemoved, removeInstance, type Removed } from '../../engine/teardown.js';
import { listInstances } from '../../engine/cleanup.js';
import { LABEL } from '../../plan/plan.js';
import { defineCommand } from '../command.js';

export const cleanCommand = defineCommand({
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
