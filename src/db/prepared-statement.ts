import type { Knex } from 'knex';
import type pg from 'pg';

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
 * is used. Behind PgBouncer in transaction mode, named statements need max_prepared_statements
 * above 0 (PgBouncer 1.21 or later).
 */
export class PreparedStatement<R extends object> {
  /** `query` is compiled once, here; `name` must be unique to its text within the process. */
  constructor(
    private readonly name: string,
    query: Knex.QueryBuilder,
  ) {
    const { sql, bindings } = query.toSQL().toNative();
    this.text = sql;
    this.bindings = bindings as unknown[];
  }

  private readonly text: string;
  private readonly bindings: unknown[];

  /** The rows for `values`, which replace the compiled query's bindings from the first on. */
  async rows(knex: Knex, values: unknown[]): Promise<R[]> {
    const pool = knex.client as unknown as Pool;
    const connection = await pool.acquireConnection();
    try {
      const all =
        values.length < this.bindings.length ? [...values, ...this.bindings.slice(values.length)] : values;
      return (await connection.query<R>({ name: this.name, text: this.text, values: all })).rows;
    } finally {
      void pool.releaseConnection(connection);
    }
  }
}
