#!/usr/bin/env node
// Thin launcher for `lab` and `tcplab`. An installed package ships dist/ (built by `npm pack`'s prepack) and
// no src/: it runs dist/ as it is, compiling nothing. In a clone of the repository (src/ next to dist/), it
// first builds dist/ when it is missing or older than a source file, so `npm ci && npx lab start 2` works and
// a `git pull` never runs stale code; there is no install-time build (no `prepare`), which would make npm list
// tcplab among the packages whose install scripts need approval. It runs the bundle (dist/bundle/main.js, a few
// files instead of about 400: scripts/bundle.mjs) when there is one at least as new as tsc's output, and tsc's
// output (dist/cli/main.js) otherwise.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const entry = join(root, 'dist', 'cli', 'main.js');
const bundle = join(root, 'dist', 'bundle', 'main.js');
const src = join(root, 'src');

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

if (existsSync(src) && (!existsSync(entry) || newest(src) > statSync(entry).mtimeMs)) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) {
    process.stderr.write('tcplab is not built yet: run `npm ci` in the tcplab folder first (it installs TypeScript).\n');
    process.exit(2);
  }
  // stderr only: stdout may be a --json document.
  process.stderr.write('tcplab: building dist/ from src/ (a clone: first run, or changed sources) ...\n');
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) {
    process.stderr.write('tcplab: the build failed (see above); `npm run build` repeats it.\n');
    process.exit(2);
  }
  // The bundle is only quicker to start: if it cannot be made (no esbuild), tsc's output runs.
  spawnSync(process.execPath, [join(root, 'scripts', 'bundle.mjs')], { stdio: ['ignore', 'ignore', 'ignore'] });
}
if (!existsSync(entry)) {
  process.stderr.write(`tcplab is incomplete: ${entry} is missing; reinstall it (npm install -g tcplab-<version>.tgz).\n`);
  process.exit(2);
}
const run = existsSync(bundle) && statSync(bundle).mtimeMs >= statSync(entry).mtimeMs ? bundle : entry;
const { main } = await import(pathToFileURL(run).href);
process.exitCode = await main(process.argv.slice(2));
// A command has done all its work when main returns: everything it starts is awaited, so the process normally
// ends right here. A handle still open (an engine request that never answered, a session a removed container
// took with it) must not keep the terminal: if the process is still alive a moment later, it ends anyway, once
// what it printed is out. DEBUG=lab names what was left open: each is a leak to fix.
setTimeout(async () => {
  if (/\blab\b/.test(process.env.DEBUG ?? ''))
    process.stderr.write(`lab: still open after the command ended: ${process.getActiveResourcesInfo().join(', ')}\n`);
  await Promise.all(
    [process.stdout, process.stderr].map(
      (s) => new Promise((resolve) => (s.destroyed || s.writableEnded ? resolve() : s.write('', () => resolve()))),
    ),
  );
  process.exit();
}, 500).unref();
