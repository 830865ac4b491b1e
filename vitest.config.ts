import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A temp folder per run (TMPDIR), checked for tcplab-* leftovers when the run ends.
    globalSetup: ['test/global-setup.ts'],
    // Docker-backed tests share one engine: one file at a time. Two at a time takes 14 minutes instead of 21, and
    // each file's labs carry its own run label (TCPLAB_RUN, test/helpers/docker.ts), but some tests act on the
    // whole engine by design: test/install's `lab clean --images` removes every lab and the image another file
    // is using, and a compose test's containers carry no maker to tell them by. Those need a phase of their own
    // before two at a time can come back.
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 300_000,
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
  },
});
