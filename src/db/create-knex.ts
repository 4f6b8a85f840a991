import knexFactory, { type Knex } from 'knex';
import pg from 'pg';

// int8 (count(*)) as a JS number: our counts stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));

export interface KnexOptions {
  url: string;
  poolMax?: number;
  /** How long a query may wait for a pool connection before failing (and the API answering 503). */
  acquireTimeoutMs?: number;
}

export function createKnex({ url, poolMax = 10, acquireTimeoutMs = 5000 }: KnexOptions): Knex {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: url, connectionTimeoutMillis: acquireTimeoutMs },
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: acquireTimeoutMs,
  });
}
