// `lab shell`: a shell on a machine of your running lab, from any terminal.
import { LabError } from '../../errors.js';
import { defineCommand } from '../command.js';
import { ALL_OPTION, parseNode, pickInstance, shellSession } from '../live.js';
import { labCommand } from '../invocation.js';
import { terminalWidth, wrapText } from '../wrap.js';

export const shellCommand = defineCommand({
  name: 'shell',
  usage: 'shell <client|server|firewall> [instance] [--all]',
  summary: 'a shell on one machine of your running lab (docker exec -it)',
  help:
    "Opens bash on a machine of your running lab, as root with the lab's capabilities (NET_ADMIN, NET_RAW): run\n" +
    'iptables, ss, netstat, nc, ps there. Only /tmp is writable. Without an instance, only your own labs (started\n' +
    "by your OS user) are candidates; --all considers everybody's. With several running, name the instance\n" +
    '(`lab status` lists them). When the lab ends while the shell is open, the shell ends and says why.',
  options: { ...ALL_OPTION },
  async run(ctx, values, positionals) {
    if (positionals.length < 1 || positionals.length > 2)
      throw new LabError('lab shell takes a machine and, optionally, an instance', `for example \`${labCommand()} shell client\``);
    const node = parseNode(positionals[0]);
    const li = await pickInstance(ctx.runtime, positionals[1], { all: !!values.all });
    return shellSession(ctx.runtime, li, node, (s) => ctx.err.write(wrapText(ctx.errStyle.dim(s), terminalWidth(ctx.err)) + '\n'));
  },
});
