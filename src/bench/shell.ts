// Runs host programs (the docker CLI, docker-compose, the tcplab CLI) as argv arrays, never through a shell.
import { execFile } from 'node:child_process';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export function run(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Ran> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(
      argv[0]!,
      argv.slice(1),
      { env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({
          code,
          stdout: String(stdout),
          stderr: String(stderr) || (err && !stderr ? err.message : ''),
          ms: performance.now() - t0,
        });
      },
    );
  });
}

/** Run and fail loudly: a baseline that silently failed would make the comparison meaningless. */
export async function must(argv: string[], opts: Parameters<typeof run>[1] = {}): Promise<Ran> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}
