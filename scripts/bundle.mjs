// The CLI as a few files instead of about 400 (issue 16, cost). Node spends most of a command's start finding,
// reading and compiling modules one by one: tsc's output (123 files of ours) and the packages it loads (zod,
// yaml, listr2 ...). esbuild joins them into dist/bundle/: main.js, and chunks for what a command loads only
// when it needs it (the walk's prompts, the class server ...), so what was loaded late is still loaded late.
// bin/lab.js runs dist/bundle/main.js, and falls back to dist/cli/main.js where there is no bundle.
//
// Left outside, loaded from node_modules at run time as before: dockerode (src/runtime/dockerode.ts loads it
// through its own require, deferring the parts tcplab never uses) and the browser files lab serve hands out.
// Paths to tcplab's own files come from src/paths.ts, which finds package.json from wherever a chunk lies.
// Usage: node scripts/bundle.mjs   (after tsc; `npm run build` does both)
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = join(root, 'dist', 'bundle');
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: [join(root, 'dist', 'cli', 'main.js')],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // CommonJS packages inside the bundle (debug, ...) call require(); in an ES module there is none unless we
  // make one, relative to the chunk (it resolves node_modules from dist/bundle/ upwards, as dist/ did).
  banner: { js: "import { createRequire as __tcplabRequire } from 'node:module'; const require = __tcplabRequire(import.meta.url);" },
  chunkNames: 'chunk-[hash]',
  legalComments: 'none',
  logLevel: 'warning',
});
