// npm run schema (with the lab file's): writes schema/class.schema.json (committed; a test fails when it drifts).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { classJsonSchemaText } from './class-file.js';

const target = fileURLToPath(new URL('../../schema/class.schema.json', import.meta.url));
writeFileSync(target, classJsonSchemaText());
process.stdout.write(`wrote ${target}\n`);
