// `lab stop`: remove lab instances: those named, or else the current user's (--all: everybody's).
import { LabError } from '../../errors.js';
import { addRemoved, describeRemoved, removeInstance, type Removed } from '../../engine/teardown.js';
import { listInstances } from '../../engine/cleanup.js';
import { currentUser } from '../../identity.js';
import { defineCommand } from '../command.js';
import { stateFiles } from '../../walk/state-files.js';

export const stopCommand = defineCommand({
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
      if (info) stateFiles().recordEnded({ instance: id, lab: { id: 0, slug: info.lab }, how: 'stopped' });
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

/** After `lab stop`: the state files of the instances it removed. */
function forgetStopped(ids: string[]): void {
  for (const r of stateFiles().listRunning()) if (ids.includes(r.instance)) stateFiles().forgetRunning(r.instance);
}
