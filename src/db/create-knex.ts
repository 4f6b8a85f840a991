import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { Logger } from '../logger';
import { setPreparedStatementMode, type PreparedStatementMode } from './prepared-statement-mode';

// int8 (count(*)) as a JS number: our counts stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));

export interface KnexOptions {
  url: string;
  poolMax?: number;
  /** How long a query may wait for a pool connection before failing (and the API answering 503). */
  acquireTimeoutMs?: number;
  /**
   * Where knex's own warnings go (pool acquire errors while Postgres is down, deprecations): as
   * structured log lines, not coloured console text with stack traces. Without one, knex prints.
   */
  logger?: Pick<Logger, 'warn' | 'error' | 'debug'>;
  /** DATABASE_PREPARED_STATEMENTS for this pool's PreparedStatements (default auto). */
  preparedStatements?: PreparedStatementMode;
}

const text = (message: unknown) => (message instanceof Error ? message.message : String(message));

export function createKnex({
  url,
  poolMax = 10,
  acquireTimeoutMs = 5000,
  logger,
  preparedStatements = 'auto',
}: KnexOptions): Knex {
  const knex = knexFactory({
    ...(logger
      ? {
          log: {
            warn: (m: unknown) => logger.warn({ err: text(m) }, 'knex warning'),
            error: (m: unknown) => logger.error({ err: text(m) }, 'knex error'),
            deprecate: (m: unknown) => logger.warn({ err: text(m) }, 'knex deprecation'),
            debug: (m: unknown) => logger.debug({ detail: text(m) }, 'knex debug'),
          },
        }
      : {}),
    client: 'pg',
    connection: { connectionString: url, connectionTimeoutMillis: acquireTimeoutMs },
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: acquireTimeoutMs,
  });
  setPreparedStatementMode(knex, preparedStatements, (err) =>
    logger?.warn(
      { err: text(err) },
      'named prepared statements are lost between queries (a pooler in transaction mode without ' +
        'max_prepared_statements?): the by-id read runs unnamed from now on; set ' +
        'DATABASE_PREPARED_STATEMENTS=off to start that way',
    ),
  );
  return knex;
}
