// npm run schema (with the lab file's): writes schema/class.schema.json (committed; a test fails when it drifts).
import { writeFileSync } from 'node:fs';
import { classJsonSchemaText } from './class-file.js';
import { ownFile } from '../paths.js';

const target = ownFile('schema', 'class.schema.json');
writeFileSync(target, classJsonSchemaText());
process.stdout.write(`wrote ${target}\n`);
