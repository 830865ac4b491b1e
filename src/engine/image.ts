// The lab node image: built from images/node on first use, tagged by the content of that folder (and the base
// image), so a changed Dockerfile builds a new tag and an unchanged one is reused.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Runtime } from '../runtime/runtime.js';
import type { EventSink } from './events.js';
import { COMPOSE_IMAGE, IMAGE_REPO, LABEL } from '../plan/plan.js';

export const IMAGE_DIR = fileURLToPath(new URL('../../images/node', import.meta.url));
const DEFAULT_BASE = 'debian:bookworm-slim';

interface ImageOptions {
  base?: string;
  dir?: string;
}

/** The folder the image is built from: images/node, or TCPLAB_IMAGE_DIR (tests use a throwaway one). */
function imageDir(opts: ImageOptions = {}): string {
  return opts.dir ?? process.env.TCPLAB_IMAGE_DIR ?? IMAGE_DIR;
}

export function baseImage(opts: ImageOptions = {}): string {
  return opts.base ?? process.env.TCPLAB_BASE_IMAGE ?? DEFAULT_BASE;
}

export function imageTag(opts: ImageOptions = {}): string {
  const dir = imageDir(opts);
  const h = createHash('sha256');
  h.update(`base=${baseImage(opts)}\n`);
  for (const file of walk(dir).sort()) {
    h.update(`${relative(dir, file)}\n${statSync(file).mode & 0o111 ? 'x' : '-'}\n`);
    h.update(readFileSync(file));
  }
  return `${IMAGE_REPO}:${h.digest('hex').slice(0, 12)}`;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

export async function ensureImage(runtime: Runtime, emit: EventSink, opts: ImageOptions & { signal?: AbortSignal } = {}): Promise<string> {
  const tag = imageTag(opts);
  if (await runtime.imageExists(tag)) {
    emit({ type: 'image', phase: 'found', tag });
    await runtime.tagImage?.(tag, COMPOSE_IMAGE);
    return tag;
  }
  emit({ type: 'image', phase: 'building', tag });
  await runtime.buildImage({
    contextDir: imageDir(opts),
    tag,
    buildArgs: { BASE: baseImage(opts) },
    labels: { [LABEL.managed]: 'true' },
    onLine: (line) => emit({ type: 'image-line', line }),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  emit({ type: 'image', phase: 'built', tag });
  // The content tag changes with images/; Compose files (compose/) name this stable tag instead.
  await runtime.tagImage?.(tag, COMPOSE_IMAGE);
  return tag;
}
