import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A temp folder per run (TMPDIR), checked for tcplab-* leftovers when the run ends.
    globalSetup: ['test/global-setup.ts'],
    // Two files at a time: most of a Docker-backed file's time is spent waiting on real TCP timers, not on the
    // CPU. Files stay apart: each one's labs are labelled with its own run mark (test/helpers/docker.ts), and
    // its leftover check counts only what it made.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 300_000,
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
  },
});
