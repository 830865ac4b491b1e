// docs/authoring.md: every YAML snippet in it loads. A whole lab as it is; a submission against the lab it
// names; a fragment (steps, commands, expectations, a lab's nodes or variants) inside a lab that provides what
// it names: every machine, the named commands it stops or checks, the variants it uses.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { validateLabText } from '../../src/lab/load.js';
import { resolveLab } from '../../src/lab/catalogue.js';
import { validateSubmissionText } from '../../src/submit/submission.js';
import { formatProblem } from '../../src/errors.js';

const doc = readFileSync(new URL('../../docs/authoring.md', import.meta.url), 'utf8');
const snippets = [...doc.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => ({
  text: m[1]!,
  line: doc.slice(0, m.index).split('\n').length + 1,
}));

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const KINDS = ['socket', 'absent', 'iptables', 'command', 'segments'];

/** The named commands a fragment stops or checks, and on which machine. */
function referencedNames(v: unknown, out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(v)) v.forEach((x) => referencedNames(x, out));
  else if (isObj(v)) {
    if (typeof v.stop === 'string') out.set(v.stop, String(v.on));
    if (isObj(v.command) && typeof v.command.name === 'string') out.set(v.command.name, String(v.on));
    Object.values(v).forEach((x) => referencedNames(x, out));
  }
  return out;
}

const checksSomething = [{ on: 'client', absent: { local: '*:1' } }];

/** A lab around a fragment, or undefined when the fragment is not one this page should contain. */
function around(text: string): string | undefined {
  const data = parse(text) as unknown;
  const base: Obj = { id: 900, slug: 'docs', title: 'docs', summary: 's', intro: 'i', topology: 'routed' };
  const variants = [...text.matchAll(/\{\{\s*variant\.([a-z]+)\s*\}\}/g)].map((m) => m[1]!);
  if (variants.length) base.variants = Object.fromEntries(variants.map((n) => [n, { range: [6000, 6099] }]));
  const names = referencedNames(data);
  const setup = {
    id: 'setup',
    title: 'named commands the fragment uses',
    explain: 'e',
    run: [...names].map(([name, on]) => ({ on, run: ['sleep', '60'], name, background: true })),
    expect: checksSomething,
  };
  const lab = (steps: unknown[], extra: Obj = {}) =>
    stringify({ ...base, ...extra, steps: [setup, ...steps] }, { aliasDuplicateObjects: false });
  if (isObj(data) && ('nodes' in data || 'variants' in data) && !('steps' in data))
    return lab([{ id: 'x', title: 't', explain: 'e', expect: checksSomething }], data);
  if (!Array.isArray(data) || data.length === 0 || !data.every(isObj)) return undefined;
  if (data.every((x) => 'title' in x)) return lab(data);
  if (data.every((x) => KINDS.some((k) => k in x))) return lab([{ id: 'x', title: 't', explain: 'e', expect: data }]);
  if (data.every((x) => 'run' in x || 'stop' in x || 'write' in x))
    return lab([{ id: 'x', title: 't', explain: 'e', run: data, expect: checksSomething }]);
  return undefined;
}

describe('docs/authoring.md', () => {
  it('has YAML snippets to check, including a whole lab and a submission', () => {
    expect(snippets.length).toBeGreaterThan(12);
    expect(snippets.some((s) => /^steps:/m.test(s.text))).toBe(true);
    expect(snippets.some((s) => /^student:/m.test(s.text))).toBe(true);
  });

  for (const s of snippets) {
    it(`the snippet at line ${s.line} loads`, () => {
      const data = parse(s.text) as unknown;
      if (isObj(data) && 'student' in data) {
        const r = validateSubmissionText(s.text, resolveLab(String(data.lab)).lab);
        expect(r.ok ? [] : r.problems.map((p) => formatProblem('snippet', p))).toEqual([]);
        return;
      }
      const text = isObj(data) && 'steps' in data ? s.text : around(s.text);
      expect(text, 'not a lab, a submission, or a fragment of a lab this test knows').toBeDefined();
      const v = validateLabText(text!);
      expect(
        v.problems.map((p) => formatProblem('snippet', p)),
        text,
      ).toEqual([]);
    });
  }
});
