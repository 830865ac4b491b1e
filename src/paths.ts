// Where tcplab's own files are: package.json, labs/, images/, schema/, bin/ and the pages' static files. Found
// from this module's place by walking up to tcplab's package.json, so the answer is the same whether this code
// runs from src/ (the tests), as tsc's output (dist/<dir>/<file>.js) or as one of the bundle's chunks
// (dist/bundle/, scripts/bundle.mjs), which sit at another depth.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tcplab') return dir;
      } catch {
        // not ours, or unreadable: keep walking up
      }
    }
    if (dirname(dir) === dir) throw new Error(`tcplab's package.json was not found above ${here}: the installation is incomplete`);
  }
}

/** tcplab's own folder (the clone, or the installed package). */
const ROOT = findRoot();

/** A path inside tcplab's own folder. */
export function ownFile(...parts: string[]): string {
  return join(ROOT, ...parts);
}
