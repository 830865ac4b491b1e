// A real Chromium for the page tests (driven by playwright-core), started the same way by every file.
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { expect, it } from 'vitest';
import { required } from './docker.js';

export const CHROMIUM = process.env.TCPLAB_CHROMIUM ?? '/usr/bin/chromium';
/** No sandbox (root in CI), nothing that reaches out to the network on its own. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A TCP port on 127.0.0.1 that nothing listens on now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Inside a describe: without Chromium, one test that says so, skipped (failed with LAB_REQUIRE_DOCKER=1, as
 *  in CI), and true: the caller returns before declaring its own tests. */
export function withoutChromium(): boolean {
  if (existsSync(CHROMIUM)) return false;
  (required ? it : it.skip)(`needs Chromium at ${CHROMIUM} (apt-get install -y chromium; TCPLAB_CHROMIUM names another)`, () => {
    expect(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`).toBe(true);
  });
  return true;
}
