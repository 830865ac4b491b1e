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
    // Three files at a time: each Docker-backed file's labs carry its own run label (TCPLAB_RUN) and each file
    // counts and removes only what it made (test/helpers/docker.ts). Most of a lab's time is TCP's timers, so
    // on two cores one of the longest files alone keeps 0.6 of a core busy, three at once 1.6 (measured), short of
    // starving the labs; a check that could not tell whether a state lasted is not a pass, and tests that grade an
    // honest answer grade it again when that was its only miss (test/helpers/answers.ts). docs/internals.md has the
    // times.
    maxWorkers: 3,
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
