// The package as a student gets it: `npm pack`, `npm install -g --prefix TMP tarball`, and the installed `lab`
// run from a folder outside the repository. Then the lab image as one file: save, `lab clean --images`, load,
// and `lab grade 1` on the loaded image (same id, no build). The image part removes the engine's tcplab images
// for a while, so it restores every one it found when it ends (CI runs test files one at a time).
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { fileURLToPath } from 'node:url';
import { imageTag } from '../../src/engine/image.js';
import { LABEL } from '../../src/plan/plan.js';
import { COMPOSE_IMAGE } from '../../src/plan/plan.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const work = mkdtempSync(join(tmpdir(), 'tcplab-install-'));
const prefix = join(work, 'prefix');
const elsewhere = mkdtempSync(join(tmpdir(), 'tcplab-elsewhere-'));
const state = join(work, 'state');
let installed = false;

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The installed command, from a folder outside the repository, with nothing of the clone on its way. */
function lab(bin: 'lab' | 'tcplab', ...args: string[]): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(join(prefix, 'bin', bin), args, {
      cwd: elsewhere,
      env: { ...process.env, NO_COLOR: '1', TCPLAB_STATE_DIR: state, PATH: `${join(prefix, 'bin')}:${process.env.PATH}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  // dist/ is fresh: `npm test` builds it first. --ignore-scripts packs it as it is instead of rebuilding the
  // working tree's dist/ under the other tests' feet.
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT });
  const tarball = join(work, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
  await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', tarball], {
    cwd: elsewhere,
    timeout: 280_000,
  });
  installed = true;
}, 300_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(elsewhere, { recursive: true, force: true });
});

describe('the packed package, installed globally', () => {
  it('ships built JavaScript, labs, the image context and the schema; no sources, no TypeScript', () => {
    const pkg = join(prefix, 'lib', 'node_modules', 'tcplab');
    for (const f of [
      'dist/cli/main.js',
      // what bin/lab.js runs: the CLI bundled into a few files (scripts/bundle.mjs), quicker to start
      'dist/bundle/main.js',
      'labs/01-basic-states.yaml',
      'images/node/Dockerfile',
      'schema/lab.schema.json',
      'schema/class.schema.json',
      'compose/routed.yaml',
      // lab serve's pages (copied by the build, as the live page's) and its xterm.js, served from node_modules.
      'dist/serve/static/student.html',
      'node_modules/@xterm/xterm/lib/xterm.mjs',
      'docs/classroom.md',
      // README's links and the commands' help point at these.
      'README.md',
      'docs/students.md',
      'docs/instructors.md',
      'docs/authoring.md',
      'docs/hosts.md',
    ])
      expect(existsSync(join(pkg, f)), f).toBe(true);
    // The live page's files: tsc does not copy them, the build does (scripts/copy-ui-static.mjs).
    const page = readdirSync(join(ROOT, 'src', 'ui', 'static')).filter((f) => /\.(html|js|css)$/.test(f));
    expect(page.length).toBeGreaterThan(0);
    for (const f of ['dist/ui/server.js', ...page.map((f) => `dist/ui/static/${f}`)]) expect(existsSync(join(pkg, f)), f).toBe(true);
    for (const f of ['src', 'test', 'tsconfig.json', 'node_modules/typescript', 'dist/bench'])
      expect(existsSync(join(pkg, f)), f).toBe(false);
    const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
    // Nothing runs at install time: no script that would compile (TypeScript is not installed with it).
    for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) expect(manifest.scripts?.[s], s).toBeUndefined();
  });

  it('`lab list --json` and `tcplab --version` work from a folder outside the repository', async () => {
    const list = await lab('lab', 'list', '--json');
    expect(list.code, list.stderr).toBe(0);
    const labs = JSON.parse(list.stdout) as { id: number; file: string }[];
    // Every lab file of the repository, by the number its name starts with: the installed package ships them all.
    const shipped = readdirSync(join(ROOT, 'labs'))
      .filter((f) => /^\d+-.*\.yaml$/.test(f))
      .map((f) => Number(f.split('-')[0]));
    expect(shipped.length).toBeGreaterThan(0);
    expect(labs.map((l) => l.id)).toEqual(shipped);
    // The labs are the installed package's own files.
    expect(labs[0]!.file.startsWith(join(prefix, 'lib', 'node_modules', 'tcplab'))).toBe(true);
    const v = await lab('tcplab', '--version');
    expect(v.stdout.trim()).toBe(version);
  });
});

describeDocker('the installed package against the engine', (env) => {
  it("`lab serve` serves its pages, lab ui's modules and xterm.js from the installed package (no src/)", async () => {
    expect(installed).toBe(true);
    const child = spawn(join(prefix, 'bin', 'lab'), ['serve', '--port', '0'], {
      cwd: elsewhere,
      env: { ...process.env, NO_COLOR: '1', TCPLAB_STATE_DIR: join(work, 'serve-state') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    try {
      const deadline = Date.now() + 30_000;
      let base: string | undefined;
      while (!base && Date.now() < deadline && child.exitCode === null) {
        base = /on (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
        if (!base) await new Promise((r) => setTimeout(r, 100));
      }
      expect(base, out).toBeDefined();
      for (const [path, text] of [
        ['/', '<html'],
        ['/join.js', ''],
        ['/ui/app.js', ''],
        ['/vendor/xterm.mjs', 'Terminal'],
      ] as const) {
        const res = await fetch(`${base}${path}`);
        expect(res.status, path).toBe(200);
        expect(await res.text(), path).toContain(text);
      }
    } finally {
      child.kill('SIGINT');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('close', r)));
    }
  });

  it('`lab grade 1 --json` passes from outside the repository', async () => {
    expect(installed).toBe(true);
    const g = await lab('lab', 'grade', '1', '--json');
    const out = JSON.parse(g.stdout || '{}') as { passed?: boolean; labs?: { instance: string }[] };
    for (const l of out.labs ?? []) env.track(l.instance);
    expect(g.code, g.stderr).toBe(0);
    expect(out.passed).toBe(true);
  });

  it('lab image save, lab clean --images, lab image load: lab grade 1 runs on the loaded image (same id, no build)', async () => {
    const rt = env.runtime;
    const tag = imageTag();
    // Every tcplab image the engine has now (other versions' too), to put back at the end whatever happens.
    const all = await Promise.all(
      (await rt.listImages({ [LABEL.managed]: 'true' })).map(async (i) => ({ ...i, tags: (await rt.inspectImage(i.id))?.tags ?? [] })),
    );
    // Untagged ones (a build's intermediate stage) cannot be saved by name, and clean --images leaves them.
    const found = all.filter((i) => i.tags.length);
    const tagsBefore = found.flatMap((i) => i.tags);
    const backup = join(work, 'backup.tar');
    if (tagsBefore.length) await rt.saveImage(tagsBefore, createWriteStream(backup));
    try {
      const file = join(elsewhere, 'tcplab-image.tar.gz');
      const saved = await lab('lab', 'image', 'save', file, '--json');
      expect(saved.code, saved.stderr).toBe(0);
      const s = JSON.parse(saved.stdout) as { id: string; tags: string[]; bytes: number };
      expect(s.tags).toEqual([tag, COMPOSE_IMAGE]);
      expect(s.bytes).toBeGreaterThan(1e6);

      const clean = await lab('lab', 'clean', '--images', '--json');
      expect(clean.code, clean.stderr).toBe(0);
      expect((JSON.parse(clean.stdout) as { images: number }).images).toBeGreaterThanOrEqual(1);
      // (Not tcplab/node:current: on a shared engine another engineer's run may tag its own image so at once.)
      expect(await rt.imageExists(tag)).toBe(false);

      const loaded = await lab('lab', 'image', 'load', file, '--json');
      expect(loaded.code, loaded.stderr).toBe(0);
      expect((JSON.parse(loaded.stdout) as { id: string; tag: string }).id).toBe(s.id);

      const g = await lab('lab', 'grade', '1', '--json');
      const out = JSON.parse(g.stdout || '{}') as { passed?: boolean; labs?: { instance: string }[] };
      for (const l of out.labs ?? []) env.track(l.instance);
      expect(g.code, g.stderr).toBe(0);
      expect(out.passed).toBe(true);
      expect(g.stderr).not.toMatch(/building the lab image/);
      expect((await rt.inspectImage(tag))?.id).toBe(s.id);

      // The wrong file gets a clear refusal, exit 2, no stack trace.
      const wrong = await lab('lab', 'image', 'load', join(prefix, 'lib', 'node_modules', 'tcplab', 'package.json'));
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toMatch(/is not an image archive/);
      expect(wrong.stderr).not.toMatch(/\n\s+at /);
    } finally {
      const missing = (await Promise.all(found.map(async (i) => ((await rt.inspectImage(i.id)) ? [] : [i.id])))).flat();
      if (missing.length) {
        const { createReadStream } = await import('node:fs');
        await rt.loadImage(createReadStream(backup), backup);
      }
    }
    for (const i of found) expect(await rt.inspectImage(i.id), `image ${i.name} restored`).toBeDefined();
  }, 600_000);
});
