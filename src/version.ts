// tcplab's version, from package.json: `lab --version`, and what `lab submit` records in a submission.
import { readFileSync } from 'node:fs';

export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
