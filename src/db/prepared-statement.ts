import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type pg from 'pg';
import { isLostPreparedStatement, preparedStatementPolicy } from './prepared-statement-mode';

/** knex's pool, as its own query runner uses it. */
interface Pool {
  acquireConnection(): Promise<pg.Client>;
  releaseConnection(connection: pg.Client): Promise<void>;
}

/**
 * A statement that runs on every request of a hot read, prepared on the server by name: each
 * pooled connection has PostgreSQL parse and plan it once instead of on every call, and the query
 * goes to the connection straight from knex's pool, without knex compiling and re-binding it.
 * Connections come from and go back to that pool, so its size, acquire timeout (503) and the
 * disposal of broken connections all apply; inside a transaction the transaction's connection
 * is used.
 *
 * Behind PgBouncer in transaction mode, named statements need max_prepared_statements above 0
 * (PgBouncer 1.21 or later): without it consecutive queries of one client land on different
 * server connections, so a name prepared on one is missing on the next (or already there, from
 * another client). The pool's DATABASE_PREPARED_STATEMENTS policy decides: `off` sends the
 * compiled text unnamed (still no knex compile per call), `on` always names it, `auto` names it
 * until the first such error, retries that read unnamed and stays unnamed from then on.
 * The name carries a hash of the text, so a server connection shared with another Sluice
 * version (a rolling deploy behind a pooler) never runs a same-named statement of other text.
 */
export class PreparedStatement<R extends object> {
  /** `query` is compiled once, here; `name` (its prefix) must be unique to its text within the process. */
  constructor(name: string, query: Knex.QueryBuilder) {
    const { sql, bindings } = query.toSQL().toNative();
    this.text = sql;
    this.bindings = bindings as unknown[];
    this.name = `${name}_${createHash('sha256').update(sql).digest('hex').slice(0, 12)}`;
  }

  /** The name on the server: the given prefix and a hash of the text. */
  readonly name: string;
  private readonly text: string;
  private readonly bindings: unknown[];

  /** The rows for `values`, which replace the compiled query's bindings from the first on. */
  async rows(knex: Knex, values: unknown[]): Promise<R[]> {
    const pool = knex.client as unknown as Pool;
    const policy = preparedStatementPolicy(knex);
    const all =
      values.length < this.bindings.length ? [...values, ...this.bindings.slice(values.length)] : values;
    const named = policy.mode === 'on' || (policy.mode === 'auto' && !policy.unnamed);
    const connection = await pool.acquireConnection();
    try {
      try {
        return (
          await connection.query<R>({ ...(named ? { name: this.name } : {}), text: this.text, values: all })
        ).rows;
      } catch (err) {
        if (!named || policy.mode !== 'auto' || !isLostPreparedStatement(err)) throw err;
        if (!policy.unnamed) {
          policy.unnamed = true;
          policy.onFallback?.(err);
        }
        // A failed statement aborts the caller's transaction: only a read on its own is retried.
        if (knex.isTransaction) throw err;
        return (await connection.query<R>({ text: this.text, values: all })).rows;
      }
    } finally {
      void pool.releaseConnection(connection);
    }
  }
}
