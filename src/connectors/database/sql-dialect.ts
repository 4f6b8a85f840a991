import type { Dialect } from './database-url';

/** The few places where PostgreSQL and MySQL/MariaDB SQL differ for what the connector runs. */
export interface SqlDialect {
  readonly name: Dialect;
  /** Quotes one identifier; callers pass only names checked against COLUMN_NAME / TABLE_NAME. */
  quoteIdent(name: string): string;
  /** Renders `expr` as text exactly, so a cursor value survives a round trip through the state. */
  asText(expr: string): string;
  /**
   * `expr > <the first parameter>` (`>=` when `inclusive`); MySQL needs to know whether the column
   * is numeric.
   */
  greaterThanParam(expr: string, numeric: boolean, inclusive: boolean): string;
  /** Opens the transaction every read runs in: nothing a query does can write. */
  readonly beginReadOnly: string;
}

export const postgresDialect: SqlDialect = {
  name: 'postgres',
  quoteIdent: (name) => `"${name.replace(/"/g, '""')}"`,
  asText: (expr) => `CAST(${expr} AS text)`,
  // The parameter takes the column's type, so a text value compares as a timestamp, numeric, uuid...
  greaterThanParam: (expr, _numeric, inclusive) => `${expr} ${inclusive ? '>=' : '>'} $1`,
  beginReadOnly: 'BEGIN TRANSACTION READ ONLY',
};

export const mysqlDialect: SqlDialect = {
  name: 'mysql',
  quoteIdent: (name) => `\`${name.replace(/`/g, '``')}\``,
  asText: (expr) => `CAST(${expr} AS CHAR)`,
  // A numeric column compared with a string compares as DOUBLE (inexact past 2^53); DECIMAL is exact.
  greaterThanParam: (expr, numeric, inclusive) =>
    `${expr} ${inclusive ? '>=' : '>'} ${numeric ? 'CAST(? AS DECIMAL(65,30))' : '?'}`,
  beginReadOnly: 'START TRANSACTION READ ONLY',
};

export function dialectFor(name: Dialect): SqlDialect {
  return name === 'postgres' ? postgresDialect : mysqlDialect;
}
