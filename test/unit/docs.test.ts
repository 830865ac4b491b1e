// The documentation says what the program does: every `lab ...` command line shown in README.md and docs/*.md
// parses against the real command table (a known command, known options; read by src/cli/parse.ts, as main.ts
// reads them), every relative link and #anchor resolves, every command of `lab help` is in README's table with
// the same usage, every section README had before it was split (issue 19) is one link away from it, each
// `README "Section"` or `docs/x.md "Section"` that src/ points users at exists, and CI runs the test command
// README gives.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { optionsOf, parseCommandLine } from '../../src/cli/parse.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOCS = ['README.md', 'BENCHMARKS.md', ...readdirSync(join(ROOT, 'docs')).flatMap((f) => (f.endsWith('.md') ? [`docs/${f}`] : []))];
const text = (file: string) => readFileSync(join(ROOT, file), 'utf8');

interface Line {
  file: string;
  line: number;
  text: string;
  /** The fence's language when the line is inside a fenced block ('' for a bare fence). */
  fence?: string;
}

function lines(file: string): Line[] {
  let fence: string | undefined;
  return text(file)
    .split('\n')
    .map((t, i) => {
      const m = /^\s*```(\S*)/.exec(t);
      if (m) {
        fence = fence === undefined ? m[1]! : undefined;
        return { file, line: i + 1, text: '', fence: 'fence' };
      }
      return { file, line: i + 1, text: t, ...(fence !== undefined ? { fence } : {}) };
    });
}

// ---- Command lines ----

interface Shown {
  where: string;
  /** As written, after `lab` (or `npx lab`). */
  command: string;
}

const LAB = /^(?:npx\s+)?lab(?:\s+(.*))?$/;

/** Every `lab ...` shown: in code spans anywhere but YAML and JSON blocks, and as lines of shell and terminal blocks. */
function shownCommands(file: string): Shown[] {
  const out: Shown[] = [];
  const all = lines(file);
  for (let i = 0; i < all.length; i++) {
    const l = all[i]!;
    const where = `${l.file}:${l.line}`;
    if (l.fence === 'yaml' || l.fence === 'json') continue;
    // A shell block's lines are commands; a terminal session's (text, or no language) only after a `$ ` prompt.
    const shell = l.fence === 'sh' || l.fence === 'bash';
    if ((shell || l.fence === 'text' || l.fence === '') && (shell || l.text.startsWith('$ '))) {
      // Continued with a backslash; commands joined with && or ;; a comment to the end of the line.
      let t = l.text.replace(/^\$ /, '');
      while (t.endsWith('\\') && i + 1 < all.length) t = t.slice(0, -1) + all[++i]!.text;
      t = t.replace(/\s+#.*$/, '').replace(/\s+/g, ' ');
      for (const part of t.split(/\s(?:&&|\|\||;)\s/)) {
        const m = LAB.exec(part.trim());
        if (m) out.push({ where, command: m[1] ?? '' });
      }
    }
    // Code spans; in a table a pipe inside one is written \|.
    for (const m of l.text.matchAll(/`([^`]+)`/g)) {
      const span = LAB.exec(m[1]!.replace(/\\\|/g, '|').trim());
      if (span?.[1]) out.push({ where, command: span[1] });
    }
  }
  return out;
}

/** Split as a shell would, as far as the docs need: quotes, and the end of the command at a pipe, a redirection,
 *  a background & or a comment. */
function shellWords(command: string): string[] {
  const words: string[] = [];
  const re = /\s*(?:'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+))/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(command))) {
    const w = m[1] ?? m[2] ?? m[3]!;
    if (m[3] !== undefined && /^(?:\||\d?>|>>|&|#)/.test(w)) break;
    words.push(w);
  }
  return words;
}

/** Usage notation (`lab start <number|slug|file> [--keep]`), not a command to run: the options it names. */
const isUsage = (command: string) => /[<[]/.test(command) || /\S\|\S/.test(command);

function problemsOf(s: Shown): string[] {
  if (isUsage(s.command)) {
    const words = s.command
      .replace(/[[\]<>|()]/g, ' ')
      .split(/\s+/)
      .filter(Boolean);
    const [name, ...rest] = words;
    if (name === 'help') return [];
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) return [`${s.where}: \`lab ${s.command}\`: no command '${name}'`];
    const options = optionsOf(command);
    const known = new Set(Object.entries(options).flatMap(([long, o]) => [`--${long}`, ...(o.short ? [`-${o.short}`] : [])]));
    return rest
      .filter((w) => /^--?[a-z]/.test(w))
      .map((w) => w.replace(/=.*/, '').replace(/\.+$/, ''))
      .filter((w) => !known.has(w))
      .map((w) => `${s.where}: \`lab ${s.command}\`: lab ${name} has no option ${w}`);
  }
  const argv = shellWords(s.command);
  const parsed = parseCommandLine(argv);
  if (parsed.kind !== 'error') return [];
  // An option named in passing (`lab grade --submissions`, as prose mentions it) lacks only its value.
  if (/needs a value$/.test(parsed.message) && argv.at(-1)?.startsWith('--')) return [];
  return [`${s.where}: \`lab ${s.command}\`: ${parsed.message}`];
}

// ---- Links and anchors ----

/** The anchors GitHub gives a file's headings: lower case, punctuation dropped, each space a dash; repeats get -1, -2. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const l of lines(file)) {
    const m = l.fence === undefined ? /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(l.text) : null;
    if (!m) continue;
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

/** Every link and image of a file that is not a URL: [text](target) with target a path, #anchor or both. */
function links(file: string): { where: string; target: string }[] {
  return lines(file).flatMap((l) =>
    l.fence !== undefined
      ? []
      : [...l.text.matchAll(/!?\[(?:[^\]`]|`[^`]*`)*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
          .map((m) => m[1]!)
          .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t))
          .map((target) => ({ where: `${l.file}:${l.line}`, target })),
  );
}

function linkProblem(file: string, target: string): string | undefined {
  const [path, anchor] = target.split('#') as [string, string | undefined];
  const to = path ? relative(ROOT, resolve(dirname(join(ROOT, file)), decodeURIComponent(path))) : file;
  if (!existsSync(join(ROOT, to))) return `${to} does not exist`;
  if (anchor === undefined) return undefined;
  if (!to.endsWith('.md') || statSync(join(ROOT, to)).isDirectory()) return `#${anchor} on ${to}, which has no headings`;
  return anchors(to).has(anchor) ? undefined : `${to} has no heading #${anchor}`;
}

/** The links README makes, resolved to repository paths (file#anchor). */
function readmeTargets(): Set<string> {
  return new Set(
    links('README.md').map(({ target }) => {
      const [path, anchor] = target.split('#');
      return `${path || 'README.md'}${anchor !== undefined ? `#${anchor}` : ''}`;
    }),
  );
}

// ---- The tests ----

describe('README.md and docs/', () => {
  const shown = DOCS.flatMap(shownCommands);

  it('finds the command lines to check: README alone shows a run, a class graded, an image saved', () => {
    const readme = shown.filter((s) => s.where.startsWith('README.md:')).map((s) => s.command);
    expect(readme).toEqual(expect.arrayContaining(['start 2', 'image save tcplab-image.tar.gz']));
    expect(readme.some((c) => c.startsWith('grade 2 --submissions subs/ --gradebook grades.csv'))).toBe(true);
    expect(shown.length).toBeGreaterThan(150);
  });

  it('every `lab ...` command line shown parses: a known command with known options', () => {
    expect(shown.flatMap(problemsOf)).toEqual([]);
  });

  it('the check itself refuses an unknown command, an unknown option, and an option a usage line does not have', () => {
    const bad = (command: string) => problemsOf({ where: 'x', command });
    expect(bad('strat 2')).toEqual([expect.stringMatching(/unknown command 'strat'/)]);
    expect(bad('grade 2 --gradbook g.csv')).toEqual([expect.stringMatching(/unknown option '--gradbook'/)]);
    expect(bad('start <number|slug|file> [--kep]')).toEqual(['x: `lab start <number|slug|file> [--kep]`: lab start has no option --kep']);
    expect(bad('grade 2 --json > out.json # a comment --nope')).toEqual([]);
    expect(bad('start 2 | head')).toEqual([]);
  });

  it('every relative link and #anchor resolves', () => {
    const problems = DOCS.flatMap((file) =>
      links(file).flatMap(({ where, target }) => {
        const p = linkProblem(file, target);
        return p ? [`${where}: (${target}): ${p}`] : [];
      }),
    );
    expect(problems).toEqual([]);
    expect(linkProblem('README.md', 'docs/students.md#no-such-heading')).toMatch(/no heading/);
    expect(linkProblem('docs/students.md', '../README.md#exit-codes')).toBeUndefined();
  });

  it("README's table lists every command of `lab help`, each with the usage `lab help` gives", () => {
    const rows = lines('README.md')
      .filter((l) => l.fence === undefined && l.text.startsWith('| `lab '))
      .map((l) => /^\| `([^`]+)`/.exec(l.text)![1]!.replace(/\\\|/g, '|'));
    for (const c of COMMANDS) {
      const mine = rows.filter((r) => r === `lab ${c.name}` || r.startsWith(`lab ${c.name} `));
      expect(mine, `lab ${c.name}`).not.toEqual([]);
      if (!c.usage.includes('\n')) expect(mine, `lab ${c.name}`).toContain(`lab ${c.usage}`);
    }
  });

  it('README links every document under docs/', () => {
    const targets = [...readmeTargets()].map((t) => t.split('#')[0]);
    for (const file of DOCS.filter((d) => d !== 'README.md')) expect(targets, file).toContain(file);
  });

  it('every section README had before the split is one link away from it', () => {
    // Where each went (issue 19). A heading renamed or moved again: change its line here and README's link.
    const moved: Record<string, string> = {
      Requirements: 'docs/hosts.md#requirements',
      Install: 'docs/hosts.md#install',
      'How it works': 'docs/internals.md#how-it-works',
      Labs: 'docs/students.md#the-labs',
      'On the wire: segments, the ladder, traces': 'docs/internals.md#on-the-wire-segments-the-ladder-traces',
      'Traces for instructors': 'docs/instructors.md#traces',
      'tcpdump in `lab shell`': 'docs/internals.md#tcpdump-in-lab-shell',
      Compose: 'docs/hosts.md#compose',
      'Docker hosts': 'docs/hosts.md#docker-hosts',
      Podman: 'docs/hosts.md#podman',
      'Offline classrooms': 'docs/hosts.md#offline-classrooms',
      'Setting up': 'docs/hosts.md#setting-up',
      Students: 'docs/students.md',
      'Whose lab': 'docs/students.md#whose-lab',
      'Your student id and your variants': 'docs/students.md#your-student-id-and-your-variants',
      'Handing in': 'docs/students.md#handing-in',
      'The live page': 'docs/students.md#the-live-page',
      Instructors: 'docs/instructors.md',
      'Points: nothing for nothing': 'docs/instructors.md#points-nothing-for-nothing',
      Outputs: 'docs/instructors.md#outputs',
      'Exit status': 'docs/instructors.md#exit-status',
      'A class over a CI matrix': 'docs/instructors.md#a-class-over-a-ci-matrix-shards',
      'Untrusted answers stay inside': 'docs/instructors.md#untrusted-answers-stay-inside',
      Speed: 'docs/instructors.md#speed',
      'Writing labs': 'docs/authoring.md',
      'Reliability and safety': 'docs/reliability.md',
      'Ctrl-C': 'docs/reliability.md#ctrl-c',
      'After a crash': 'docs/reliability.md#after-a-crash',
      Isolation: 'docs/reliability.md#isolation',
      'Least privilege': 'docs/reliability.md#least-privilege',
      'Limits on lab files': 'docs/reliability.md#limits-on-lab-files',
      'Limits on output': 'docs/reliability.md#limits-on-output',
      Faults: 'docs/reliability.md#faults',
      Development: 'docs/internals.md#development',
      Benchmarks: 'docs/internals.md#benchmarks',
    };
    const targets = readmeTargets();
    const readme = anchors('README.md');
    for (const kept of ['The two commands', 'Commands', 'Exit codes'])
      expect(readme, kept).toContain(kept.toLowerCase().replace(/ /g, '-'));
    for (const [section, target] of Object.entries(moved)) {
      expect([...targets], section).toContain(target);
      expect(linkProblem('README.md', target), section).toBeUndefined();
    }
  });

  it('every README or docs section that src/ points users at (`see README "X"`, `docs/x.md "X"`) exists', () => {
    const sources = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
      );
    const refs = sources(join(ROOT, 'src')).flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/\b(README|docs\/[\w-]+\.md)(?:\)?,? "([^"]+)")?/g)].map((m) => ({
        from: relative(ROOT, f),
        doc: m[1] === 'README' ? 'README.md' : m[1]!,
        section: m[2] ?? '',
      })),
    );
    expect(refs.length).toBeGreaterThan(5);
    const headingText = (doc: string) =>
      lines(doc)
        .filter((l) => l.fence === undefined && /^#{1,6}\s/.test(l.text))
        .map((l) =>
          l.text
            .replace(/^#+\s+/, '')
            .replace(/`/g, '')
            .toLowerCase(),
        );
    const missing = refs.filter(
      (r) => !existsSync(join(ROOT, r.doc)) || !headingText(r.doc).some((h) => h.startsWith(r.section.replace(/`/g, '').toLowerCase())),
    );
    expect(missing.map((r) => `${r.from}: ${r.doc} "${r.section}"`)).toEqual([]);
  });

  it('CI runs the test command README gives', () => {
    const readme = text('README.md');
    const block = /Run the tests[\s\S]*?```sh\n(.*)\n```/.exec(readme)![1]!;
    const ci = text('.ci/run').split('\n');
    for (const command of block.split('&&').map((c) => c.trim()))
      expect(
        ci.some((l) => l.startsWith(command)),
        command,
      ).toBe(true);
  });
});

// ---- The labs' table in docs/students.md ----

describe("docs/students.md's table of the labs", () => {
  it('names, for each lab, the states `lab list` says it makes observable', async () => {
    const { catalogue, observableStates } = await import('../../src/lab/catalogue.js');
    const rows = new Map<number, string[]>();
    for (const l of lines('docs/students.md')) {
      const m = /^\| (\d+) \| `[a-z0-9-]+` \|.*\| (?:direct|routed) \| ([A-Z_, 0-9]+) \|$/.exec(l.text);
      if (m) rows.set(Number(m[1]), m[2]!.split(', ').sort());
    }
    const labs = catalogue();
    expect(rows.size).toBe(labs.length);
    for (const { lab } of labs) expect(rows.get(lab.id), `lab ${lab.id}`).toEqual([...observableStates(lab)].sort());
  });
});
