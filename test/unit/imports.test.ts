// The layers import one way. Reads every import of src/**/*.ts (static, type-only, re-exports and dynamic
// import()) with TypeScript's own pre-processor and fails on: src/engine importing src/submit or src/cli (they
// sit above it), any import cycle, dockerode outside the runtime adapter, listr2 or inquirer outside the CLI. Type-only imports count: a type that points the wrong way is a
// dependency that points the wrong way. src/walk, the model of the walk that the terminal and the browser both
// drive, imports none of its views.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SRC = join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Each module (a path relative to the repository, e.g. src/engine/events.ts) -> what it imports: other
 * modules of src/ by the same kind of path, packages by their name. */
function importGraph(): Map<string, { local: string[]; packages: string[] }> {
  const graph = new Map<string, { local: string[]; packages: string[] }>();
  for (const file of sources(SRC)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const local: string[] = [];
    const packages: string[] = [];
    for (const { fileName: spec } of importedFiles) {
      if (spec.startsWith('.')) local.push(relative(ROOT, resolve(dirname(file), spec.replace(/\.js$/, '.ts'))));
      else if (!spec.startsWith('node:')) packages.push(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
    graph.set(relative(ROOT, file), { local, packages });
  }
  return graph;
}

/** Every cycle, once each, as the path around it (first module repeated at the end). Tarjan's strongly
 * connected components, then one shortest cycle through each component's first module. */
function cycles(graph: Map<string, { local: string[] }>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.local ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || graph.get(v)!.local.includes(v)) components.push(c.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return components.map((c) => {
    const inside = new Set(c);
    const start = c[0]!;
    const prev = new Map<string, string>();
    const queue = [start];
    while (queue.length > 0) {
      const v = queue.shift()!;
      for (const w of graph.get(v)!.local) {
        if (!inside.has(w)) continue;
        if (w === start) {
          const path = [start];
          for (let u = v; u !== start; u = prev.get(u)!) path.splice(1, 0, u);
          return [...path, start];
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    return [...c, c[0]!];
  });
}

const graph = importGraph();
const edges = [...graph].flatMap(([from, { local }]) => local.map((to) => ({ from, to })));
const under = (path: string, dir: string): boolean => path.startsWith(`src/${dir}/`);

describe('imports in src/', () => {
  it('are read: every module is found and every relative import resolves to a module of src/', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get('src/cli/main.ts')?.local.length).toBeGreaterThan(0);
    expect(edges.filter((e) => !graph.has(e.to)).map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('never go from src/engine to src/submit or src/cli', () => {
    const against = edges.filter((e) => under(e.from, 'engine') && (under(e.to, 'submit') || under(e.to, 'cli')));
    expect(against.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('never go from src/walk (the walk every view drives) to a view: src/cli, src/serve or src/ui', () => {
    const against = edges.filter((e) => under(e.from, 'walk') && ['cli', 'serve', 'ui'].some((d) => under(e.to, d)));
    expect(against.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('make no cycle, between modules or between the folders of src/ (the layers)', () => {
    expect(cycles(graph).map((c) => c.join(' -> '))).toEqual([]);
    const layer = (path: string): string => path.split('/')[1]!.replace(/\.ts$/, '');
    const layers = new Map<string, { local: string[] }>();
    for (const { from, to } of edges) {
      const entry = layers.get(layer(from)) ?? { local: [] };
      if (layer(from) !== layer(to)) entry.local.push(layer(to));
      layers.set(layer(from), entry);
    }
    expect(cycles(layers).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('bring dockerode in only through src/runtime/docker.ts (and dockerode.ts, which loads it), listr2 and inquirer only in src/cli', () => {
    const wrong = [...graph].flatMap(([from, { packages }]) =>
      packages
        .filter(
          (p) =>
            (p === 'dockerode' && from !== 'src/runtime/docker.ts' && from !== 'src/runtime/dockerode.ts') ||
            ((p === 'listr2' || p === 'inquirer' || p.startsWith('@inquirer/')) && !under(from, 'cli')),
        )
        .map((p) => `${from} imports ${p}`),
    );
    expect(wrong).toEqual([]);
  });
});

describe('the cycle finder', () => {
  it('finds a circle of three and a module importing itself, and nothing in a tree', () => {
    const g = (o: Record<string, string[]>) => new Map(Object.entries(o).map(([k, local]) => [k, { local }]));
    expect(cycles(g({ a: ['b'], b: ['c'], c: ['a'], d: ['a'] }))).toEqual([['a', 'b', 'c', 'a']]);
    expect(cycles(g({ a: ['a'], b: [] }))).toEqual([['a', 'a']]);
    expect(cycles(g({ a: ['b', 'c'], b: ['c'], c: [] }))).toEqual([]);
  });
});
