// The pages' files (src/ui/static for lab ui, src/serve/static for lab serve) are not TypeScript, so tsc does
// not copy them: the build does, to dist/ui/static and dist/serve/static, which is what an installed package
// has (it ships dist/, not src/). In a clone, both commands serve from src/ directly.
// Usage: node scripts/copy-ui-static.mjs [DEST]   (DEST: where lab ui's files go; lab serve's go beside them)
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const SERVED = new Set(['.html', '.js', '.css', '.svg', '.png', '.ico']);
const uiTo = process.argv[2] ?? join(root, 'dist', 'ui', 'static');
const serveTo = process.argv[2] ? join(dirname(uiTo), 'serve-static') : join(root, 'dist', 'serve', 'static');

for (const [from, to] of [
  [join(root, 'src', 'ui', 'static'), uiTo],
  [join(root, 'src', 'serve', 'static'), serveTo],
]) {
  rmSync(to, { recursive: true, force: true });
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) if (SERVED.has(extname(name))) cpSync(join(from, name), join(to, name));
}
