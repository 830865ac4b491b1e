// `lab image load` reads an archive's manifest before the engine sees it. Fixtures are real tar files made
// with tar(1), laid out as `docker save` lays them out (layers first, manifest.json near the end).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { checkArchive, readArchive } from '../../src/engine/image-archive.js';
import { BUILT_ON, describeOrigin, imageOrigin } from '../../src/engine/image.js';
import { LabError } from '../../src/errors.js';
import type { ImageInfo, Runtime } from '../../src/runtime/runtime.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-archive-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const TAG = 'tcplab/node:0123456789ab';

/** A docker-save-like tar: a big "layer" first (so the manifest is found past data that must be skipped). */
function archive(name: string, manifest: unknown, opts: { layerBytes?: number; longName?: boolean } = {}): string {
  const root = join(dir, `${name}.d`);
  const layerDir = join(root, opts.longName ? 'a'.repeat(120) : 'f00d');
  mkdirSync(layerDir, { recursive: true });
  writeFileSync(join(layerDir, 'layer.tar'), Buffer.alloc(opts.layerBytes ?? 300_000, 7));
  writeFileSync(join(root, 'abc.json'), '{}');
  if (manifest !== undefined)
    writeFileSync(join(root, 'manifest.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  const file = join(dir, `${name}.tar`);
  const entries = [opts.longName ? 'a'.repeat(120) : 'f00d', 'abc.json', ...(manifest !== undefined ? ['manifest.json'] : [])];
  execFileSync('tar', ['-cf', file, '-C', root, ...entries]);
  return file;
}

const ours = [{ Config: 'abc.json', RepoTags: [TAG, 'tcplab/node:current'], Layers: ['f00d/layer.tar'] }];

async function verdict(file: string): Promise<string> {
  try {
    checkArchive(file, await readArchive(file), TAG);
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(LabError);
    expect((e as LabError).exitCode).toBe(2);
    return (e as LabError).message;
  }
}

describe('image archives', () => {
  it('the tcplab image with both its tags is accepted, plain or gzip-compressed', async () => {
    const file = archive('ours', ours);
    expect(await readArchive(file)).toEqual({ kind: 'images', images: [{ config: 'abc', repoTags: [TAG, 'tcplab/node:current'] }] });
    expect(await verdict(file)).toBe('ok');
    const gz = join(dir, 'ours.tar.gz');
    writeFileSync(gz, gzipSync(readFileSync(file)));
    expect(await verdict(gz)).toBe('ok');
  });

  it('names as Podman writes them (localhost/tcplab/node:...) are the same image', async () => {
    const file = archive('podman', [{ Config: 'abc.json', RepoTags: [`localhost/${TAG}`, 'localhost/tcplab/node:current'], Layers: [] }]);
    expect(await verdict(file)).toBe('ok');
    expect(
      await verdict(
        archive('podman-debian', [{ Config: 'abc.json', RepoTags: ['registry.example:5000/library/debian:bookworm-slim'], Layers: [] }]),
      ),
    ).toMatch(/holds debian:bookworm-slim, not/);
  });

  it('GNU long names before the manifest are skipped correctly', async () => {
    expect(await verdict(archive('long', ours, { longName: true }))).toBe('ok');
  });

  it('an archive of another image names what it holds', async () => {
    const file = archive('debian', [{ Config: 'abc.json', RepoTags: ['debian:bookworm-slim'], Layers: [] }]);
    expect(await verdict(file)).toMatch(/holds debian:bookworm-slim, not the tcplab image tcplab\/node:0123456789ab/);
  });

  it('a tcplab image of another version says so (the content tag differs)', async () => {
    const file = archive('older', [{ Config: 'abc.json', RepoTags: ['tcplab/node:ffffffffffff', 'tcplab/node:current'], Layers: [] }]);
    expect(await verdict(file)).toMatch(/holds tcplab\/node:ffffffffffff, but this tcplab uses tcplab\/node:0123456789ab/);
  });

  it('an archive with other images besides ours is refused (load would bring them all)', async () => {
    const file = archive('two', [...ours, { Config: 'def.json', RepoTags: ['debian:bookworm-slim'], Layers: [] }]);
    expect(await verdict(file)).toMatch(/holds 2 images/);
  });

  it('not a tar, a tar without manifest.json, bad JSON, gzip of junk, a cut archive: each a clear message', async () => {
    const junk = join(dir, 'junk.tar');
    writeFileSync(junk, 'this is not a tar file\n'.repeat(100));
    expect(await verdict(junk)).toMatch(/is not an image archive \(not a tar file\)/);
    expect(await verdict(archive('nomanifest', undefined))).toMatch(/without the manifest\.json/);
    expect(await verdict(archive('badjson', '{not json'))).toMatch(/without the manifest\.json/);
    const gzJunk = join(dir, 'junk.gz');
    writeFileSync(gzJunk, gzipSync(Buffer.from('hello')));
    expect(await verdict(gzJunk)).toMatch(/not a tar file/);
    const cut = join(dir, 'cut.tar');
    writeFileSync(cut, readFileSync(archive('whole', ours, { layerBytes: 600_000 })).subarray(0, 200_000));
    expect(await verdict(cut)).toMatch(/cut short/);
    const empty = join(dir, 'empty.tar');
    writeFileSync(empty, '');
    expect(await verdict(empty)).toMatch(/not a tar file/);
  });
});

describe('where the image came from (lab doctor)', () => {
  const image = (labels: Record<string, string>): ImageInfo => ({
    id: 'sha256:' + 'e'.repeat(64),
    tags: [TAG],
    labels,
    created: '2026-11-26T01:31:00Z',
    sizeBytes: 83e6,
  });
  const runtime = (engineId: string, img?: ImageInfo) =>
    ({
      info: async () => ({ version: '20.10', apiVersion: '1.41', os: 'linux', kernel: '6', id: engineId, name: 'this-host' }),
      inspectImage: async () => img,
    }) as unknown as Runtime;

  it('built here: the label names this engine', async () => {
    const o = await imageOrigin(runtime('ENGINE-A', image({ [BUILT_ON.engine]: 'ENGINE-A', [BUILT_ON.host]: 'this-host' })), TAG);
    expect(o?.origin).toBe('built here');
    expect(describeOrigin(o!)).toMatch(/built here on 2026-11-26 01:31 UTC/);
  });

  it('loaded: built by another engine, named by its host', async () => {
    const o = await imageOrigin(runtime('ENGINE-B', image({ [BUILT_ON.engine]: 'ENGINE-A', [BUILT_ON.host]: 'teacher-laptop' })), TAG);
    expect(o?.origin).toBe('loaded');
    expect(describeOrigin(o!)).toMatch(/loaded from an archive \(built on teacher-laptop/);
  });

  it('no label: origin unknown; no image: undefined', async () => {
    expect((await imageOrigin(runtime('X', image({})), TAG))?.origin).toBe('unknown');
    expect(await imageOrigin(runtime('X', undefined), TAG)).toBeUndefined();
  });
});
