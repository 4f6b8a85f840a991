import { createTemplateDatabase } from './helpers/test-database';

/** Runs once per `vitest run`: one migrated template database that every test file copies. */
export default async function setup(): Promise<void> {
  await createTemplateDatabase();
}
