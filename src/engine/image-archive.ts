// What an image archive holds, read before it goes to the engine: `lab image load` refuses a file that is not
// a `docker save` archive, or one of some other image, with a clear message instead of loading it (and
// instead of the engine's own error). Reads the tar (plain or gzip) as a stream up to its manifest.json;
// layers are skipped, not kept in memory.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { LabError } from '../errors.js';
import { IMAGE_REPO } from '../plan/plan.js';

interface ArchiveImage {
  /** The config file's name (sha256 of the image config; the image id without "sha256:"). */
  config: string;
  repoTags: string[];
}

type ArchiveContents =
  | { kind: 'images'; images: ArchiveImage[] }
  | { kind: 'not-tar' }
  | { kind: 'no-manifest' }
  /** Ends in the middle, before its manifest: a copy cut short. */
  | { kind: 'truncated' };

const BLOCK = 512;

function octal(buf: Buffer, start: number, len: number): number {
  const text = buf
    .toString('latin1', start, start + len)
    .replace(/\0.*$/s, '')
    .trim();
  return text ? parseInt(text, 8) : 0;
}

/** A ustar/GNU header block: its checksum (bytes 148-155 read as spaces) must match. */
function validHeader(h: Buffer): boolean {
  const stored = octal(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === stored;
}

/** Parse tar blocks as they arrive; calls onFile for small files it was asked to keep. */
class TarScanner {
  private buf: Buffer = Buffer.alloc(0);
  private skip = 0;
  private collect?: { name: string; size: number; parts: Buffer[]; got: number };
  private longName?: string;
  sawHeader = false;
  invalid = false;
  done = false;
  /** The end-of-archive marker was read. */
  ended = false;

  constructor(
    private readonly want: (name: string) => boolean,
    private readonly onFile: (name: string, data: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (!this.done && !this.invalid) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, this.buf.length);
        if (this.collect) {
          const need = this.collect.size - this.collect.got;
          const take = Math.min(n, need);
          if (take > 0) this.collect.parts.push(this.buf.subarray(0, take));
          this.collect.got += take;
        }
        this.buf = this.buf.subarray(n);
        this.skip -= n;
        if (this.skip > 0) return;
        if (this.collect) {
          const c = this.collect;
          this.collect = undefined;
          if (c.name === '\0longname') this.longName = Buffer.concat(c.parts).toString('utf8').replace(/\0.*$/s, '');
          else this.onFile(c.name, Buffer.concat(c.parts));
        }
        continue;
      }
      if (this.buf.length < BLOCK) return;
      const h = this.buf.subarray(0, BLOCK);
      this.buf = this.buf.subarray(BLOCK);
      if (h.every((b) => b === 0)) {
        // End-of-archive marker.
        this.done = this.ended = this.sawHeader;
        if (!this.sawHeader) this.invalid = true;
        continue;
      }
      if (!validHeader(h)) {
        this.invalid = true;
        return;
      }
      this.sawHeader = true;
      const type = String.fromCharCode(h[156]!);
      const size = octal(h, 124, 12);
      const prefix = h.toString('utf8', 345, 500).replace(/\0.*$/s, '');
      let name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
      if (prefix) name = `${prefix}/${name}`;
      if (this.longName) {
        name = this.longName;
        this.longName = undefined;
      }
      name = name.replace(/^\.\//, '');
      this.skip = Math.ceil(size / BLOCK) * BLOCK;
      if (type === 'L') this.collect = { name: '\0longname', size, parts: [], got: 0 };
      else if ((type === '0' || type === '\0') && size <= 1 << 20 && this.want(name)) this.collect = { name, size, parts: [], got: 0 };
      if (this.skip === 0 && this.collect) {
        this.onFile(this.collect.name, Buffer.alloc(0));
        this.collect = undefined;
      }
    }
  }
}

export async function isGzip(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const magic = Buffer.alloc(2);
    await fh.read(magic, 0, 2, 0);
    return magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** Read FILE's manifest.json (the list of images a `docker save` archive holds, with their names). */
export async function readArchive(file: string): Promise<ArchiveContents> {
  let manifest: Buffer | undefined;
  const scanner = new TarScanner(
    (name) => name === 'manifest.json',
    (_name, data) => {
      manifest = data;
      scanner.done = true;
    },
  );
  const raw = createReadStream(file);
  // gzip (`docker save | gzip`, or `lab image save FILE.tar.gz`): the engine takes it as it is; read through it.
  const stream: NodeJS.ReadableStream = (await isGzip(file)) ? raw.pipe(createGunzip()) : raw;
  try {
    for await (const chunk of stream) {
      scanner.push(chunk as Buffer);
      if (scanner.done || scanner.invalid) break;
    }
  } catch {
    // A gzip header on something that is not gzip, or a cut file.
    if (!manifest) scanner.invalid = true;
  } finally {
    raw.destroy();
  }
  if (scanner.invalid || !scanner.sawHeader) return { kind: 'not-tar' };
  if (!manifest) return scanner.ended ? { kind: 'no-manifest' } : { kind: 'truncated' };
  try {
    const list = JSON.parse(manifest.toString('utf8')) as { Config?: string; RepoTags?: string[] | null }[];
    if (!Array.isArray(list)) return { kind: 'no-manifest' };
    return {
      kind: 'images',
      images: list.map((m) => ({
        config: (m.Config ?? '').replace(/^blobs\/sha256\//, '').replace(/\.json$/, ''),
        repoTags: m.RepoTags ?? [],
      })),
    };
  } catch {
    return { kind: 'no-manifest' };
  }
}

/** An image name as Docker shows it: Podman writes "localhost/tcplab/node:x" (and "<registry>/library/..."
 *  for official images) where Docker writes "tcplab/node:x". A first component with a dot or a colon, or
 *  "localhost", is a registry's address (Docker's own rule for references), and is left out. */
function shortName(ref: string): string {
  return ref.replace(/^(localhost|[^/]*[.:][^/]*)\//, '').replace(/^library\//, '');
}

/**
 * Pure: is this archive the image tcplab would use (tagged `tag`)? Throws a LabError (exit 2) that says what
 * the file holds instead.
 */
export function checkArchive(file: string, contents: ArchiveContents, tag: string): ArchiveImage {
  const remake = 'make one with `lab image save FILE` on a machine that has the image (or can build it)';
  if (contents.kind === 'not-tar') throw new LabError(`${file} is not an image archive (not a tar file)`, remake);
  if (contents.kind === 'truncated')
    throw new LabError(
      `${file} is cut short: the archive ends before its manifest (an interrupted copy?)`,
      'copy the file again, or ' + remake,
    );
  if (contents.kind === 'no-manifest')
    throw new LabError(`${file} is not an image archive: a tar file, but without the manifest.json that \`docker save\` writes`, remake);
  const images = contents.images.map((i) => ({ ...i, repoTags: i.repoTags.map(shortName) }));
  const names = (i: ArchiveImage) => (i.repoTags.length ? i.repoTags.join(', ') : `an untagged image ${i.config.slice(0, 12)}`);
  if (images.length === 0) throw new LabError(`${file} holds no image`, remake);
  const ours = images.find((i) => i.repoTags.includes(tag));
  if (ours && images.length === 1) return ours;
  if (ours)
    throw new LabError(
      `${file} holds ${images.length} images (${images.map(names).join('; ')}), not only the tcplab image`,
      `lab image load takes an archive of ${tag} alone: ${remake}`,
    );
  const other = images.flatMap((i) => i.repoTags).find((t) => t.startsWith(`${IMAGE_REPO}:`) && t !== `${IMAGE_REPO}:current`);
  if (other)
    throw new LabError(
      `${file} holds ${other}, but this tcplab uses ${tag}: it was saved by another version of tcplab (or from a changed images/node, or with another --base-image)`,
      `save it again with this version (\`lab image save FILE\`), or let tcplab build it here (\`lab doctor\`)`,
    );
  throw new LabError(`${file} holds ${images.map(names).join('; ')}, not the tcplab image ${tag}`, remake);
}
