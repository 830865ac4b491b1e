import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A temp folder per run (TMPDIR), checked for tcplab-* leftovers when the run ends.
    globalSetup: ['test/global-setup.ts'],
    // Two files at a time (the suite took 14 minutes instead of 21 here). Each file's labs carry its own run label
    // (TCPLAB_RUN, test/helpers/docker.ts), so one file's leftover check never takes another's lab; and a command
    // that returned always ends its process (bin/lab.js), which once, under this load, `lab ui` did not.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 300_000,
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
  },
});
