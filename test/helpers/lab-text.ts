// The smallest lab file text around some expectations: for tests of what `lab validate` says about them.

/** A one-step lab whose step runs `run` (if given) and expects `expect` (YAML list items, indented six spaces). */
export function oneStepLab(expect: string, run?: string): string {
  return `id: 7
slug: tiny
title: Tiny
summary: s
intro: i
steps:
  - id: one
    title: One
    explain: e
${run ? `    run:\n${run}\n` : ''}    expect:
${expect}
`;
}
