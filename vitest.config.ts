import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A temp folder per run (TMPDIR), checked for tcplab-* leftovers when the run ends.
    globalSetup: ['test/global-setup.ts'],
    // Docker-backed tests share one engine and real TCP timers: run files one at a time.
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 300_000,
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
  },
});
