// dockerode loads without BuildKit's gRPC and docker-modem's ssh:// transport (src/runtime/dockerode.ts): what
// tcplab does not use costs no CPU at start, and what it does use (an ssh:// engine) still works when called.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Run a script in a fresh node (the test's own process may have loaded gRPC through testcontainers). */
function fresh(script: string): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
}

describe('dockerode, loaded by src/runtime/dockerode.ts', () => {
  it('does not load gRPC or ssh2 until something uses them', () => {
    const loaded = fresh(`
      await import('./dist/runtime/docker.js');
      const { createRequire } = await import('node:module');
      const cache = createRequire(import.meta.url).cache;
      // A stand-in takes the place of a module's main file; the real module would bring its other files along.
      const stands = /@grpc\\/(grpc-js|proto-loader)\\/build\\/src\\/index\\.js$/;
      console.log(JSON.stringify(Object.keys(cache).filter((k) => /node_modules\\/(@grpc|ssh2|protobufjs)\\//.test(k) && !stands.test(k))));
    `);
    // No file of gRPC, protobufjs or ssh2 itself was loaded (touching a stand-in to test it would load it).
    expect(JSON.parse(loaded) as string[]).toEqual([]);
  });

  it('an ssh:// engine still reaches ssh2 through the stand-in: the call fails as a connection, not as a missing function', () => {
    const said = fresh(`
      const { Docker } = await import('./dist/runtime/dockerode.js');
      const d = new Docker({ protocol: 'ssh', host: '127.0.0.1', port: 1, username: 'nobody' });
      try { await d.ping(); console.log('reached'); } catch (e) { console.log(String(e.code ?? e.message)); }
    `);
    expect(said.trim()).toMatch(/ECONNREFUSED/);
  });
});
