import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Bounds against a hang, not speed checks: a test waits on conditions (test/helpers/until.ts),
    // and on a loaded 2-core machine (load 20+) a spawned tsx process alone can take 20 s to start.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Each file has its own database, so files run in parallel; two cores → two workers.
    maxWorkers: 2,
    // Short: a dot per test, then every failure in full and one summary. `--reporter=default` lists
    // each file and its slow tests.
    reporters: ['dot'],
    // `npm run test:unit` (make test-unit) runs the first project alone: no Postgres, Redis or browser.
    // Each project names its own files (an `include` up here would be added to both).
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'workers/**/*.test.ts'],
          // One fork per worker runs all its files, not a new fork and a fresh import of the
          // modules per file: on a loaded 2-core machine that start-up was most of the unit run
          // (90 s → 30 s at load 20). These tests share no state through modules; a test that does
          // must reset it itself.
          isolate: false,
        },
      },
      {
        extends: true,
        // One migrated template database per run, copied by every file (test/helpers/test-database.ts).
        test: { name: 'services', include: ['test/**/*.test.ts'], globalSetup: ['test/global-setup.ts'] },
      },
    ],
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts', 'workers/**/*.ts'],
      exclude: ['src/**/*.test.ts'],
      // The totals only (and json-summary for tools): the per-file table is hundreds of lines.
      reporter: ['text-summary', 'json-summary'],
      thresholds: { lines: 80 },
    },
  },
});
