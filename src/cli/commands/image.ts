// `lab image save FILE` / `lab image load FILE`: the lab image as one file, for classroom machines with no
// registry and no internet. Save writes exactly the image this tcplab uses (its content tag and
// tcplab/node:current); load checks the archive is that image before the engine sees it.
import { resolve } from 'node:path';
import { LabError } from '../../errors.js';
import { describeOrigin, imageOrigin, loadImageArchive, saveImageArchive } from '../../engine/image.js';
import { defineCommand } from '../command.js';
import { makePlainRenderer } from '../render.js';
import { checkOutputFile } from '../output-file.js';

const USAGE = 'image <save|load> FILE [--base-image IMAGE]';

export const imageCommand = defineCommand({
  name: 'image',
  usage: USAGE,
  summary: 'save the lab image to one file, or load it from one (classrooms without internet)',
  help:
    'lab image save FILE   writes the image this tcplab uses (built first if needed) to FILE, a `docker save`\n' +
    '                      archive with both its tags; FILE.gz or FILE.tgz is gzip-compressed.\n' +
    'lab image load FILE   checks that FILE holds exactly that image and loads it: no build, no registry.\n' +
    '                      Then `lab grade`, `lab start` and Compose use it as it is; `lab doctor` says "loaded".\n' +
    'The archive must come from the same tcplab version (the image is tagged by the content of images/node).',
  options: { 'base-image': { type: 'string' } },
  async run(ctx, values, positionals) {
    const [verb, file, ...extra] = positionals;
    if ((verb !== 'save' && verb !== 'load') || !file || extra.length)
      throw new LabError(
        `usage: lab ${USAGE}`,
        'for example `lab image save tcplab-image.tar.gz`, then on the other machine `lab image load tcplab-image.tar.gz`',
      );
    const base = values['base-image'];
    const opts = { ...(base ? { base } : {}), signal: ctx.signal };
    const path = resolve(file);
    if (verb === 'save') {
      // Before the image is built (minutes, the first time).
      checkOutputFile('lab image save', file);
      const emit = makePlainRenderer((s) => ctx.err.write(s + '\n'), ctx.errStyle, { verbose: false });
      const saved = await saveImageArchive(ctx.runtime, path, emit, opts);
      if (ctx.json) ctx.print(JSON.stringify(saved, null, 2));
      else
        ctx.print(
          `saved ${saved.tags.join(' and ')} (${saved.id.slice(0, 19)}) to ${file}: ${(saved.bytes / 1e6).toFixed(1)} MB${saved.compressed ? ', gzip' : ''}\n` +
            `on the other machine: lab image load ${file}`,
        );
      return 0;
    }
    const loaded = await loadImageArchive(ctx.runtime, path, opts);
    const origin = await imageOrigin(ctx.runtime, loaded.tag);
    if (ctx.json)
      ctx.print(JSON.stringify({ ...loaded, origin: origin?.origin, builtOn: origin?.builtOn, created: origin?.image.created }, null, 2));
    else {
      ctx.print(`loaded ${loaded.tag} from ${file}: ${origin ? describeOrigin(origin) : loaded.id}`);
      if (loaded.replaced) ctx.print(`(the tag pointed at ${loaded.replaced.slice(0, 19)} before; that image is now untagged)`);
      ctx.print(`tcplab uses it as it is, without a build: try \`lab grade 1\``);
    }
    return 0;
  },
});
