// The JSON Schema for editors, generated from the zod schema so the two can never drift.
import { z } from 'zod';
import { LabSchema } from './schema.js';

function labJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(LabSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  tighten(schema);
  return { ...schema, title: 'tcplab lab file' };
}

type Node = Record<string, unknown> & { properties?: Record<string, Record<string, unknown>>; required?: string[] };

/**
 * Two rules the zod schema leaves to src/lab/rules.ts, which words them better than a parser could (a task
 * without a solution; `absent` with a count), written into the JSON Schema too, so that an editor says what
 * `lab validate` will.
 */
function tighten(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(tighten);
  if (!node || typeof node !== 'object') return;
  const n = node as Node;
  const props = n.properties;
  if (props?.prompt && props.solution && props.expect && !n.required?.includes('solution'))
    n.required = [...(n.required ?? []), 'solution'];
  const absent = props?.absent as Node | undefined;
  if (absent?.properties?.count) {
    const { count: _count, ...rest } = absent.properties;
    props!.absent = { ...absent, properties: rest };
  }
  Object.values(n).forEach(tighten);
}

export function labJsonSchemaText(): string {
  return JSON.stringify(labJsonSchema(), null, 2) + '\n';
}
