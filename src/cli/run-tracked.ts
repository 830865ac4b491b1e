// What the commands that run labs share: the image (found or built), progress for commands whose stdout is a
// result, and a lab run whose instance is registered for cleanup on interrupt.
import { ensureImage } from '../engine/image.js';
import { newInstanceId } from '../engine/provision.js';
import { runLab } from '../engine/run-lab.js';
import type { LabEvent } from '../engine/events.js';
import type { Instance } from '../engine/instance.js';
import type { LabResult } from '../grade/grade.js';
import type { Lab } from '../lab/schema.js';
import type { Context } from './context.js';
import { makePlainRenderer } from './render.js';

export const IMAGE_OPTION = { 'base-image': { type: 'string' } } as const;

/** Find or build the lab image (--base-image picks another Debian-based base). */
export async function prepareImage(ctx: Context, base: string | undefined, emit: (e: LabEvent) => void): Promise<string> {
  return ensureImage(ctx.runtime, emit, { ...(base ? { base } : {}), signal: ctx.signal });
}

/** Image progress for commands whose stdout is a result: on stderr. */
export function stderrRenderer(ctx: Context) {
  return makePlainRenderer((s) => ctx.err.write(s + '\n'), ctx.errStyle, { verbose: false });
}

/** Run a lab with its instance registered for cleanup on interrupt. */
export async function runTracked(
  ctx: Context,
  lab: Lab,
  image: string,
  emit: (e: LabEvent) => void,
  opts: { keep?: boolean; student?: string; onInstance?: (i: Instance) => void } = {},
): Promise<LabResult> {
  const instance = newInstanceId();
  ctx.live.add(instance);
  try {
    return await runLab(ctx.runtime, lab, {
      image,
      emit,
      signal: ctx.signal,
      instance,
      ...(opts.keep ? { keep: true } : {}),
      ...(opts.student !== undefined ? { student: opts.student } : {}),
      ...(opts.onInstance ? { onInstance: opts.onInstance } : {}),
    });
  } finally {
    // runLab has removed it, or kept it on purpose (--keep): either way it is no longer ours to clean up on exit.
    ctx.live.delete(instance);
  }
}
