// What docs/authoring.md says of tcplab, checked against tcplab: a QA tester who wrote labs from the docs alone
// met templates the docs never named, a required field they never said was required, a `write:` that could
// not work, and a tcplab-sock program that never ended.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkTemplates } from '../../src/lab/rules.js';
import { validateLabText } from '../../src/lab/load.js';

const docs = readFileSync(new URL('../../docs/authoring.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');
const source = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** The templates `lab validate` says a lab of this topology knows. */
function known(topology: 'direct' | 'routed'): string[] {
  const [problem] = checkTemplates({ topology, steps: [{ explain: '{{no.such}}' }] });
  return problem!.message.replace(/^.* knows /, '').split(', ');
}

const LAB = `id: 100
slug: tiny
title: T
summary: S
intro: I
steps:
  - id: listen
    title: L
    explain: E
    expect:
      - { on: server, socket: { state: LISTEN } }
`;

describe('docs/authoring.md', () => {
  it('names every template the unknown-template error lists, per-network addresses included', () => {
    const all = [...new Set([...known('direct'), ...known('routed')])];
    expect(all).toEqual(expect.arrayContaining(['{{client.ip.lan}}', '{{firewall.ip.back}}']));
    expect(all.filter((t) => !docs.includes(`\`${t}\``))).toEqual([]);
  });

  it('says that intro and each step explain are required, and they are', () => {
    expect(validateLabText(LAB).problems).toEqual([]);
    expect(validateLabText(LAB.replace('intro: I\n', '')).problems).not.toEqual([]);
    expect(validateLabText(LAB.replace('    explain: E\n', '')).problems).not.toEqual([]);
    expect(docs).toMatch(
      /`intro` \(shown once, before the first step\) and `steps` are required; so are each step's `id`, `title` and `explain`/,
    );
  });

  it('says that a background command given stdin: has its input closed, so write: needs one started without', () => {
    // The agent keeps a background command's input open only when no stdin was given.
    expect(source('images/node/tcplab-agent.c')).toMatch(/keep_open = background && !in;/);
    expect(docs).toMatch(/A background command given `stdin:` has its input closed after that text/);
    expect(docs).toMatch(/`write:` works only on one started without `stdin:`/);
  });

  it('says that tcplab-sock halfclose keeps running after EOF until stopped', () => {
    const halfclose = /def halfclose\(args\):([\s\S]*?)\ndef /.exec(source('images/node/tcplab-sock'))![1]!;
    expect(halfclose).toMatch(/EOF[\s\S]*break[\s\S]*hold\(\)/);
    expect(docs).toMatch(/`tcplab-sock halfclose [^|]*\|[^|]*after EOF it keeps running, its socket open, until stopped/);
  });
});
