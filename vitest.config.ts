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
        test: { name: 'unit', include: ['src/**/*.test.ts', 'workers/**/*.test.ts'] },
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
