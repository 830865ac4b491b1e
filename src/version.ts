// tcplab's version, from package.json: `lab --version`, and what `lab submit` records in a submission.
import { readFileSync } from 'node:fs';
import { ownFile } from './paths.js';

export const VERSION = (JSON.parse(readFileSync(ownFile('package.json'), 'utf8')) as { version: string }).version;
