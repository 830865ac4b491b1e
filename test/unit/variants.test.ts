// Per-student variants: deterministic, within their range, different between students, and known to the rules.
import { describe, expect, it } from 'vitest';
import { resolveLab } from '../../src/lab/catalogue.js';
import { validateLabText } from '../../src/lab/load.js';
import { resolveStudent, studentFor } from '../../src/identity.js';
import { variantValues } from '../../src/lab/variants.js';
import { planLab } from '../../src/plan/plan.js';
import { expand } from '../../src/lab/templates.js';

const lab1 = resolveLab('1').lab;

const withVariants = (variants: string, use = '"*:{{variant.port}}"') => `id: 7
slug: tiny
title: Tiny
summary: s
intro: i
variants:
${variants}
steps:
  - id: one
    title: One
    explain: e
    run:
      - { on: server, run: [nc, -l, "{{variant.port}}"], name: srv, background: true }
    expect:
      - on: server
        socket: { state: LISTEN, local: ${use} }
`;

describe('variants', () => {
  it('are the same for the same student, in range, and spread over students', () => {
    const a = variantValues(lab1, 'alice');
    expect(a).toEqual(variantValues(lab1, 'alice'));
    const ports = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const p = Number(variantValues(lab1, `student${i}`)['variant.port']);
      expect(p).toBeGreaterThanOrEqual(5600);
      expect(p).toBeLessThanOrEqual(5699);
      ports.add(String(p));
    }
    // 200 students over 100 ports: a hash that spreads them hits most ports.
    expect(ports.size).toBeGreaterThan(70);
  });

  it('depend on the lab, so two labs do not hand a student the same values', () => {
    const other = { ...lab1, slug: 'another-lab' };
    const differs = ['a', 'b', 'c', 'd', 'e'].some(
      (s) => variantValues(lab1, s)['variant.port'] !== variantValues(other, s)['variant.port'],
    );
    expect(differs).toBe(true);
  });

  it('pick from choices too', () => {
    const lab = { slug: 'x', variants: { target: { choices: ['DROP', 'REJECT'] } } };
    const seen = new Set(Array.from({ length: 40 }, (_, i) => variantValues(lab, `s${i}`)['variant.target']));
    expect([...seen].sort()).toEqual(['DROP', 'REJECT']);
  });

  it('fill templates in commands and expectations through the plan', () => {
    const plan = planLab({ lab: lab1, instance: 'x', image: 'i', subnets: ['198.18.1.0/24'], variables: variantValues(lab1, 'alice') });
    const step = lab1.steps.find((s) => s.id === 'your-turn')!;
    expect(expand(step.task!.solution![0]!.run![2]!, plan.vars)).toBe(variantValues(lab1, 'alice')['variant.port']);
  });

  it('are checked: an undeclared variant, a range given backwards, a name that is not letters', () => {
    expect(validateLabText(withVariants('  port: { range: [6000, 6099] }')).problems).toEqual([]);
    expect(validateLabText(withVariants('  other: { range: [6000, 6099] }')).problems[0]!.message).toMatch(
      /unknown template \{\{variant.port\}\}.*\{\{variant.other\}\}/,
    );
    expect(validateLabText(withVariants('  port: { range: [6099, 6000] }')).problems[0]!.message).toMatch(/lowest value first/);
    expect(
      validateLabText(withVariants('  port2: { range: [1, 2] }'))
        .problems.map((p) => p.message)
        .join('\n'),
    ).toMatch(/lower-case letters only/);
    expect(validateLabText(withVariants('  port: { choices: [a, a] }')).problems[0]!.message).toMatch(/listed twice/);
  });

  it('the student: --student, else TCPLAB_STUDENT, else the login name; a bad id is a clear error', () => {
    expect(resolveStudent('bob')).toEqual({ id: 'bob', from: 'option' });
    expect(() => resolveStudent('../x')).toThrow(/cannot be a student id/);
    const saved = process.env.TCPLAB_STUDENT;
    try {
      process.env.TCPLAB_STUDENT = 'carol';
      expect(resolveStudent(undefined)).toEqual({ id: 'carol', from: 'environment' });
      expect(studentFor(lab1, undefined)).toBe('carol');
      process.env.TCPLAB_STUDENT = 'not ok';
      expect(() => studentFor(lab1, undefined)).toThrow(/TCPLAB_STUDENT/);
      // A lab without variants does not need one.
      expect(studentFor(resolveLab('2').lab, undefined)).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.TCPLAB_STUDENT;
      else process.env.TCPLAB_STUDENT = saved;
    }
  });
});
