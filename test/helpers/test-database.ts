import type { Knex } from 'knex';
import { createKnex } from '../../src/db/create-knex';
import { migrateLatest, MIGRATIONS_DIR } from '../../src/db/migrator';
import { ADMIN_DATABASE_URL, TEMPLATE_DATABASE, databaseUrl, uniqueSuffix } from './test-env';
import { collectingLogger } from './test-logger';

export interface TestDatabase {
  name: string;
  url: string;
  knex: Knex;
  /** What its pool logged (knex's warnings, e.g. a refused or timed-out connection), kept off the console. */
  logs: string[];
  drop(): Promise<void>;
}

/** knex's warnings of the admin connections (a refused or rejected connect), kept off the console. */
const adminLog = collectingLogger('warn');

/**
 * Runs one statement on the admin database. Postgres is shared (other runs, benches): when every
 * connection slot is taken for a moment ("too many clients", 53300), waits and tries again, bounded,
 * rather than failing a whole test file before it starts.
 */
async function adminRaw(sql: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const db = createKnex({ url: ADMIN_DATABASE_URL, poolMax: 1, logger: adminLog.logger });
    try {
      await db.raw(sql);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '53300' || Date.now() > deadline) throw err;
    } finally {
      await db.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Drops and rebuilds the migrated template once per test run (vitest globalSetup). */
export async function createTemplateDatabase(): Promise<void> {
  await adminRaw(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`);
  await adminRaw(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  const template = createKnex({ url: databaseUrl(TEMPLATE_DATABASE), poolMax: 1, logger: adminLog.logger });
  try {
    await migrateLatest(template);
  } finally {
    await template.destroy();
  }
}

export async function dropDatabase(name: string): Promise<void> {
  await adminRaw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/**
 * A fresh database for one test file, copied from the migrated template (fast: a file copy).
 * `extraMigrations` applies migrations from another folder on top, e.g. a generated entity's.
 */
export async function createTestDatabase(extraMigrations?: string): Promise<TestDatabase> {
  const name = `sluice_test_${uniqueSuffix()}`;
  await adminRaw(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE}`);
  const url = databaseUrl(name);
  const { logger, lines: logs } = collectingLogger('warn');
  const knex = createKnex({ url, poolMax: 10, logger });
  if (extraMigrations && extraMigrations !== MIGRATIONS_DIR)
    await migrateLatest(knex, [MIGRATIONS_DIR, extraMigrations]);
  return {
    name,
    url,
    knex,
    logs,
    async drop() {
      await knex.destroy();
      await adminRaw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
