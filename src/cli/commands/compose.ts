// `lab compose <direct|routed|lab>`: print (or write) the Docker Compose file of a topology or a lab, rendered
// from the same plan the engine applies. Pure apart from reading the lab and writing the file.
import { dirname, relative, resolve, sep } from 'node:path';
import { LabError } from '../../errors.js';
import { ownFile } from '../../paths.js';
import { resolveLab } from '../../lab/catalogue.js';
import { COMPOSE_TOPOLOGIES, networkCount, planCompose, renderCompose, renderTopologyCompose, topologyLab } from '../../plan/compose.js';
import type { Topology } from '../../lab/schema.js';
import { defineCommand } from '../command.js';
import { checkOutputFile, writeOutputFile } from '../output-file.js';

export const composeCommand = defineCommand({
  name: 'compose',
  usage: 'compose <direct|routed|lab> [--output FILE] [--subnets A,B] [--instance ID]',
  summary: 'print the Docker Compose file of a topology or a lab (for classrooms without tcplab)',
  help:
    'Renders a Compose file (format 2.4, for docker-compose v1 or docker compose v2) from the same plan `lab start`\n' +
    'applies: image, capabilities, security options, sysctls, internal networks, fixed subnets and addresses.\n' +
    '`lab compose direct` and `lab compose routed` reproduce compose/direct.yaml and compose/routed.yaml;\n' +
    "`lab compose 6` adds Lab 6's sysctls. --subnets picks other /24s (one per network), --instance other names.",
  options: { output: { type: 'string', short: 'o' }, subnets: { type: 'string' }, instance: { type: 'string' } },
  async run(ctx, values, positionals) {
    if (positionals.length !== 1)
      throw new LabError('lab compose takes one topology or lab', 'for example `lab compose routed` or `lab compose 6`');
    const ref = positionals[0]!;
    if (values.output) checkOutputFile('--output', values.output);
    const isTopology = (COMPOSE_TOPOLOGIES as string[]).includes(ref);
    const lab = isTopology ? topologyLab(ref as Topology) : resolveLab(ref).lab;
    const topology = lab.topology ?? 'direct';
    const subnets = values.subnets === undefined ? undefined : values.subnets.split(',');
    if (subnets && (subnets.length !== networkCount(topology) || subnets.some((s) => !/^198\.(18|19)\.\d{1,3}\.0\/24$/.test(s)))) {
      throw new LabError(
        `--subnets needs ${networkCount(topology)} /24 subnet(s) in 198.18.0.0/15 for the ${topology} topology`,
        'for example --subnets 198.19.251.0/24,198.19.252.0/24',
      );
    }
    const instance = values.instance;
    if (instance !== undefined && !/^[a-z0-9][a-z0-9-]{0,31}$/.test(instance)) {
      throw new LabError('--instance takes lower-case letters, digits and dashes', 'for example --instance class1');
    }
    const text =
      isTopology && !subnets && !instance
        ? renderTopologyCompose(topology)
        : renderCompose(planCompose({ lab, ...(instance ? { instance } : {}), ...(subnets ? { subnets } : {}) }), {
            buildContext: buildContext(values.output),
            source: `lab compose ${ref}`,
          });
    if (values.output) {
      writeOutputFile('--output', values.output, text);
      ctx.info(`wrote ${values.output}`);
    } else ctx.print(text.trimEnd());
    return 0;
  },
});

/** Where the image's files are, for `up --build`: relative to a file written inside tcplab's own folder (as
 *  the committed compose/ files are), absolute otherwise. A lab outside tcplab's folder, or a file saved
 *  anywhere, gets the installed tool's images/node, never a path that only fits the clone. */
function buildContext(output: string | undefined): string {
  const images = ownFile('images', 'node');
  if (output === undefined) return images;
  const dir = dirname(resolve(output));
  const root = ownFile();
  return dir === root || dir.startsWith(root + sep) ? relative(dir, images) : images;
}
