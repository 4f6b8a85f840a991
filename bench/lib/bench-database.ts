import knexFactory, { type Knex } from 'knex';
import { createKnex } from '../../src/db/create-knex';
import { migrateLatest } from '../../src/db/migrator';

export interface BenchDatabase {
  url: string;
  knex: Knex;
  drop(): Promise<void>;
}

const ADMIN_URL = process.env.BENCH_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Benchmarks talk to loopback only; refuse anything else before connecting. */
export function assertLoopback(url: string): void {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (!(host === 'localhost' || host === '::1' || /^127\./.test(host)))
    throw new Error(`benchmarks connect to loopback only, not ${host}`);
}

function admin(): Knex {
  assertLoopback(ADMIN_URL);
  return knexFactory({ client: 'pg', connection: ADMIN_URL, pool: { min: 0, max: 1 } });
}

/** A fresh database `name`, migrated to the latest schema; `drop()` removes it. */
export async function createBenchDatabase(name: string): Promise<BenchDatabase> {
  const db = admin();
  try {
    await db.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [name]);
    await db.raw('CREATE DATABASE ??', [name]);
  } finally {
    await db.destroy();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const knex = createKnex({ url: url.toString(), poolMax: 2 });
  await migrateLatest(knex);
  return {
    url: url.toString(),
    knex,
    async drop() {
      await knex.destroy();
      const cleanup = admin();
      try {
        await cleanup.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [name]);
      } finally {
        await cleanup.destroy();
      }
    },
  };
}
