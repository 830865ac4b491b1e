// The lab node image: built from images/node on first use, tagged by the content of that folder (and the base
// image), so a changed Dockerfile builds a new tag and an unchanged one is reused.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createReadStream, createWriteStream, renameSync, rmSync, statSync as statFile } from 'node:fs';
import { createGunzip, createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { LabError } from '../errors.js';
import { ownFile } from '../paths.js';
import type { EngineInfo, ImageInfo, Runtime } from '../runtime/runtime.js';
import { checkArchive, isGzip, readArchive } from './image-archive.js';
import type { EventSink } from './events.js';
import { COMPOSE_IMAGE, IMAGE_REPO, LABEL } from '../plan/plan.js';

export const IMAGE_DIR = ownFile('images', 'node');
/** Set at build time: which engine built the image (its id, else its host name), and that host's name. An
 *  image loaded from an archive carries the labels of the engine that built it, so `lab doctor` can say
 *  "built here" or "loaded". */
export const BUILT_ON = { engine: 'io.tcplab.image.engine', host: 'io.tcplab.image.host' } as const;

function engineKey(info: EngineInfo): string {
  return info.id || info.name || 'unknown';
}
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
  const engine = await runtime.info();
  await runtime.buildImage({
    contextDir: imageDir(opts),
    tag,
    buildArgs: { BASE: baseImage(opts) },
    labels: { [LABEL.managed]: 'true', [BUILT_ON.engine]: engineKey(engine), [BUILT_ON.host]: engine.name ?? '' },
    onLine: (line) => emit({ type: 'image-line', line }),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  emit({ type: 'image', phase: 'built', tag });
  // The content tag changes with images/; Compose files (compose/) name this stable tag instead.
  await runtime.tagImage?.(tag, COMPOSE_IMAGE);
  return tag;
}

interface ImageOrigin {
  image: ImageInfo;
  /** built here: this engine built it; loaded: another engine did (it came in an archive); unknown: no label
   *  (built by an older tcplab, or by `docker-compose up --build`). */
  origin: 'built here' | 'loaded' | 'unknown';
  builtOn?: string;
}

/** Where the image tagged `tag` came from; undefined when it is not there. */
export async function imageOrigin(runtime: Runtime, tag: string): Promise<ImageOrigin | undefined> {
  const image = await requireImageApi(runtime, 'inspectImage').inspectImage(tag);
  if (!image) return undefined;
  const builtBy = image.labels[BUILT_ON.engine];
  if (!builtBy) return { image, origin: 'unknown' };
  const here = engineKey(await runtime.info());
  const host = image.labels[BUILT_ON.host];
  return { image, origin: builtBy === here ? 'built here' : 'loaded', builtOn: host || builtBy };
}

/** One line for people: "sha256:fd01da08d4bb, 83 MB, built here on 2026-11-26 01:31 UTC". */
export function describeOrigin(o: ImageOrigin): string {
  const when = o.image.created ? `${o.image.created.slice(0, 16).replace('T', ' ')} UTC` : 'at an unknown time';
  const what = `${o.image.id.slice(0, 19)}, ${Math.round(o.image.sizeBytes / 1e6)} MB`;
  if (o.origin === 'built here') return `${what}, built here on ${when}`;
  if (o.origin === 'loaded') return `${what}, loaded from an archive (built on ${o.builtOn} on ${when})`;
  return `${what}, built on ${when} by an earlier tcplab or by Compose (it does not say where)`;
}

function requireImageApi<K extends 'inspectImage' | 'saveImage' | 'loadImage'>(runtime: Runtime, k: K): Required<Pick<Runtime, K>> {
  if (!runtime[k]) throw new LabError(`this container engine backend cannot ${k.replace('Image', '')} images`, 'use the Docker runtime');
  return runtime as unknown as Required<Pick<Runtime, K>>;
}

interface SavedImage {
  file: string;
  tags: string[];
  id: string;
  bytes: number;
  compressed: boolean;
}

/**
 * Write the image tcplab uses (building it first if this engine has none) to FILE, under its content tag and
 * COMPOSE_IMAGE. FILE.gz/.tgz is gzip-compressed. Written to a temporary name and renamed, so an interrupted
 * save leaves no half archive that a later load would trust.
 */
export async function saveImageArchive(
  runtime: Runtime,
  file: string,
  emit: EventSink,
  opts: ImageOptions & { signal?: AbortSignal } = {},
): Promise<SavedImage> {
  const api = requireImageApi(runtime, 'saveImage');
  const tag = await ensureImage(runtime, emit, opts);
  const info = await requireImageApi(runtime, 'inspectImage').inspectImage(tag);
  const tags = [tag, COMPOSE_IMAGE];
  const compressed = /\.(t?gz)$/i.test(file);
  const partial = `${file}.partial-${process.pid}`;
  const out = createWriteStream(partial, { flags: 'wx' });
  try {
    await once(out, 'open').catch((e: Error) => {
      throw new LabError(`cannot write ${file}: ${e.message}`, 'choose a file in a folder you can write to');
    });
    if (compressed) {
      const gz = new PassThrough();
      const done = pipeline(gz, createGzip(), out);
      await api.saveImage(tags, gz, opts.signal);
      await done;
    } else await api.saveImage(tags, out, opts.signal);
    renameSync(partial, file);
  } catch (e) {
    out.destroy();
    rmSync(partial, { force: true });
    throw e;
  }
  return { file, tags, id: info?.id ?? '', bytes: statFile(file).size, compressed };
}

interface LoadedImage {
  file: string;
  tag: string;
  id: string;
  /** The tag pointed at another image before (that image is left untagged, as `docker load` does). */
  replaced?: string;
}

/** Check FILE holds the image this tcplab uses, load it, and give it COMPOSE_IMAGE too. */
export async function loadImageArchive(
  runtime: Runtime,
  file: string,
  opts: ImageOptions & { signal?: AbortSignal } = {},
): Promise<LoadedImage> {
  const api = requireImageApi(runtime, 'loadImage');
  const inspect = requireImageApi(runtime, 'inspectImage');
  let st;
  try {
    st = statFile(file);
  } catch {
    throw new LabError(`no such file: ${file}`, 'give the archive `lab image save FILE` wrote');
  }
  if (!st.isFile()) throw new LabError(`${file} is not a regular file`, 'give the archive `lab image save FILE` wrote');
  const tag = imageTag(opts);
  checkArchive(file, await readArchive(file), tag);
  const before = await inspect.inspectImage(tag);
  // Uncompressed on the way in: Docker would take gzip as it is, Podman's compatible API does not.
  const raw = createReadStream(file);
  const archive = (await isGzip(file)) ? raw.pipe(createGunzip()) : raw;
  try {
    await api.loadImage(archive, file, opts.signal);
  } finally {
    raw.destroy();
  }
  const after = await inspect.inspectImage(tag);
  if (!after)
    throw new LabError(`the engine loaded ${file} but has no ${tag} afterwards`, 'check `docker images`; then try `lab image load` again');
  await runtime.tagImage?.(tag, COMPOSE_IMAGE);
  return { file, tag, id: after.id, ...(before && before.id !== after.id ? { replaced: before.id } : {}) };
}
