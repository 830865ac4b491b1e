// The live page's files (src/ui/static) are not TypeScript, so tsc does not copy them: the build does, to
// dist/ui/static, which is what an installed package has (it ships dist/, not src/). In a clone, `lab ui`
// serves src/ui/static directly. Usage: node scripts/copy-ui-static.mjs [DEST]
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const from = join(root, 'src', 'ui', 'static');
const to = process.argv[2] ?? join(root, 'dist', 'ui', 'static');
const SERVED = new Set(['.html', '.js', '.css', '.svg', '.png', '.ico']);

rmSync(to, { recursive: true, force: true });
mkdirSync(to, { recursive: true });
for (const name of readdirSync(from)) if (SERVED.has(extname(name))) cpSync(join(from, name), join(to, name));
