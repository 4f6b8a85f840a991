import { vi } from 'vitest';

/**
 * knex prints its warnings (with a stack) through console.log unless its config names a logger
 * (node_modules/knex/lib/logger.js), and src/db/create-knex.ts names none. A test that takes the
 * database away on purpose expects "Acquire connection error: …" warnings: in a passing run they
 * read like failures. This collects knex's warnings for the test to look at instead of printing
 * them; anything else logged passes through. Call `restore()` in afterAll.
 */
export function captureKnexWarnings(): { warnings: string[]; restore: () => void } {
  const warnings: string[] = [];
  const original = console.log.bind(console);
  const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    const text = args.map(String).join(' ');
    // knex colours warnings (yellow) when stdout is a terminal.
    // eslint-disable-next-line no-control-regex
    if (/^(\x1b\[[0-9;]*m)?(Acquire connection error|Connection Error): /.test(text)) warnings.push(text);
    else original(...args);
  });
  return { warnings, restore: () => spy.mockRestore() };
}
