// dockerode, without loading at start what tcplab does not use. dockerode requires at its start BuildKit's gRPC
// session (@grpc/grpc-js and @grpc/proto-loader, for `docker build` v2, which tcplab never asks for), and
// docker-modem requires its ssh:// transport (ssh2 and its crypto), which only an ssh:// engine uses. Loading
// them cost every CLI start about a quarter of a CPU-second, more than the rest of dockerode. Each is given a
// stand-in in require's cache that loads the real module the first time anything touches it, so an ssh://
// engine (or a BuildKit session, were one ever used) works as before, only loaded later.
import { createRequire, Module } from 'node:module';
import { dirname } from 'node:path';
import type DockerType from 'dockerode';

const require = createRequire(import.meta.url);

/** Modules loaded on first use, each as resolved from where its requirer lives: [module, resolved from]. */
function deferrable(): [string, string][] {
  const dockerode = dirname(require.resolve('dockerode'));
  const modem = dirname(require.resolve('docker-modem', { paths: [dockerode] }));
  return [
    ['@grpc/grpc-js', dockerode],
    ['@grpc/proto-loader', dockerode],
    ['./ssh.js', modem],
  ];
}

/** Put a stand-in for `id` in require's cache; the real module replaces it, and is used, on first touch. */
function deferLoad(id: string, from: string): void {
  let path: string;
  try {
    path = require.resolve(id, { paths: [from] });
  } catch {
    return; // laid out otherwise: it loads as it always did
  }
  if (require.cache[path]) return;
  let real: unknown;
  const load = (): Record<PropertyKey, unknown> & ((...a: unknown[]) => unknown) => {
    if (real === undefined) {
      delete require.cache[path];
      real = require(path);
    }
    return real as Record<PropertyKey, unknown> & ((...a: unknown[]) => unknown);
  };
  // A function target, so that a module whose export is a function (docker-modem's ssh) can be called.
  const standIn = new Proxy(function deferred() {}, {
    get: (_t, key) => load()[key],
    has: (_t, key) => key in load(),
    apply: (_t, self, args) => Reflect.apply(load(), self, args),
    construct: (_t, args) => Reflect.construct(load(), args) as object,
  });
  const mod = new Module(path);
  mod.filename = path;
  mod.loaded = true;
  mod.exports = standIn;
  require.cache[path] = mod;
}

try {
  for (const [id, from] of deferrable()) deferLoad(id, from);
} catch {
  // dockerode or docker-modem laid out otherwise: nothing deferred, everything loads at once as before
}

export const Docker = require('dockerode') as typeof DockerType;
export type Docker = DockerType;
