// The JSON Schema for editors, generated from the zod schema so the two can never drift.
import { z } from 'zod';
import { LabSchema } from './schema.js';

function labJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(LabSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, title: 'tcplab lab file' };
}

export function labJsonSchemaText(): string {
  return JSON.stringify(labJsonSchema(), null, 2) + '\n';
}
