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

function admin(): Knex {
  return createKnex({ url: ADMIN_DATABASE_URL, poolMax: 1, logger: adminLog.logger });
}

/** Drops and rebuilds the migrated template once per test run (vitest globalSetup). */
export async function createTemplateDatabase(): Promise<void> {
  const db = admin();
  try {
    await db.raw(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`);
    await db.raw(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  } finally {
    await db.destroy();
  }
  const template = createKnex({ url: databaseUrl(TEMPLATE_DATABASE), poolMax: 1 });
  try {
    await migrateLatest(template);
  } finally {
    await template.destroy();
  }
}

export async function dropDatabase(name: string): Promise<void> {
  const db = admin();
  try {
    await db.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await db.destroy();
  }
}

/**
 * A fresh database for one test file, copied from the migrated template (fast: a file copy).
 * `extraMigrations` applies migrations from another folder on top, e.g. a generated entity's.
 */
export async function createTestDatabase(extraMigrations?: string): Promise<TestDatabase> {
  const name = `sluice_test_${uniqueSuffix()}`;
  const db = admin();
  try {
    await db.raw(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE}`);
  } finally {
    await db.destroy();
  }
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
      const cleanup = admin();
      try {
        await cleanup.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await cleanup.destroy();
      }
    },
  };
}
