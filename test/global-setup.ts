import { randomBytes } from 'node:crypto';

/**
 * Runs once per `vitest run`: one migrated template database that every test file copies. Its
 * name is unique to the run (set in the environment before the workers start, so they inherit
 * it), so two runs on one Postgres never rebuild each other's template; teardown drops it.
 */
export default async function setup(): Promise<() => Promise<void>> {
  process.env.TEST_TEMPLATE_DATABASE ??= `sluice_test_template_${process.pid}_${randomBytes(3).toString('hex')}`;
  const { createTemplateDatabase, dropDatabase } = await import('./helpers/test-database');
  await createTemplateDatabase();
  return () => dropDatabase(process.env.TEST_TEMPLATE_DATABASE!);
}
