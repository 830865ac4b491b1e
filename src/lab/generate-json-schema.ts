// npm run schema: writes schema/lab.schema.json (committed; a test fails when it drifts).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { labJsonSchemaText } from './json-schema.js';

const target = fileURLToPath(new URL('../../schema/lab.schema.json', import.meta.url));
writeFileSync(target, labJsonSchemaText());
process.stdout.write(`wrote ${target}\n`);
