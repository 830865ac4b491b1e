import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Test files that act on the whole engine by design: test/install's `lab clean --images` removes every lab and
 * the image other files use, and a compose test's containers carry no run label (TCPLAB_RUN,
 * test/helpers/docker.ts) to tell them apart by. They run one at a time, before any other Docker-backed file.
 */
const ENGINE_WIDE = ['test/install/**/*.test.ts', 'test/docker/compose.test.ts'];
/** Tests that need no engine: they run beside the engine-wide ones. */
const NO_ENGINE = ['test/unit/**/*.test.ts', 'test/reliability/*-unit.test.ts'];

export default defineConfig({
  test: {
    // A temp folder per run (TMPDIR), checked for tcplab-* leftovers when the run ends.
    globalSetup: ['test/global-setup.ts'],
    // A student state folder per file, so that two files at a time never share a running lab or a progress record.
    setupFiles: ['test/file-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 300_000,
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
    // Two files at a time: each Docker-backed file's labs carry its own run label (TCPLAB_RUN) and each file
    // counts and removes only what it made (test/helpers/docker.ts). The suite is bound by the CPU (making and
    // removing containers, mostly): three at a time made each file 40% slower and the whole 4% faster (1420 s
    // against 1474 s, on two cores), and a busier host makes "can't tell whether it lasted" likelier. Tests that
    // grade an honest answer grade it again when that was its only miss (test/helpers/answers.ts).
    // docs/internals.md has the times.
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        extends: true,
        // One fork runs them all, one after the other (a project cannot set fileParallelism).
        test: {
          name: 'engine-wide',
          include: ENGINE_WIDE,
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 0 },
        },
      },
      { extends: true, test: { name: 'no-engine', include: NO_ENGINE, sequence: { groupOrder: 0 } } },
      {
        extends: true,
        test: {
          name: 'labs',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...ENGINE_WIDE, ...NO_ENGINE],
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
