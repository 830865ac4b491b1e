// npm run schema: writes schema/lab.schema.json (committed; a test fails when it drifts).
import { writeFileSync } from 'node:fs';
import { labJsonSchemaText } from './json-schema.js';
import { ownFile } from '../paths.js';

const target = ownFile('schema', 'lab.schema.json');
writeFileSync(target, labJsonSchemaText());
process.stdout.write(`wrote ${target}\n`);
