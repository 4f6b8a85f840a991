import type { DatabaseSettings } from './database-settings';
import type { SqlDialect } from './sql-dialect';

const ALIAS = 'sluice_src';
/** Extra column carrying the cursor value as exact text; removed from the record before landing. */
export const CURSOR_KEY = '__sluice_cursor';

/**
 * The table or the user's query as a derived table. The query sits on lines of its own so a
 * trailing `-- comment` in it cannot swallow the closing parenthesis.
 */
function relation(settings: DatabaseSettings, d: SqlDialect): string {
  if (settings.table) {
    const quoted = settings.table.split('.').map(d.quoteIdent).join('.');
    return `${quoted} AS ${ALIAS}`;
  }
  return `(\n${settings.query}\n) AS ${ALIAS}`;
}

/** First rows of the source (LIMIT 0: just its columns). */
export function sampleSql(settings: DatabaseSettings, d: SqlDialect, limit: number): string {
  return `SELECT * FROM ${relation(settings, d)} LIMIT ${Math.max(0, Math.trunc(limit))}`;
}

/** Every row, in the source's own order: a full refresh. */
export function fullSql(settings: DatabaseSettings, d: SqlDialect): string {
  return `SELECT * FROM ${relation(settings, d)}`;
}

/**
 * Rows from (`from`: inclusive) or after (`after`: strict) the parameter, in cursor order. Rows whose
 * cursor is NULL cannot be placed in that order and are not read by an incremental sync.
 */
export function incrementalSql(
  settings: DatabaseSettings & { cursorColumn: string },
  d: SqlDialect,
  options: { bound: 'from' | 'after' | undefined; numeric: boolean },
): string {
  const column = `${ALIAS}.${d.quoteIdent(settings.cursorColumn)}`;
  const after = options.bound
    ? ` AND ${d.greaterThanParam(column, options.numeric, options.bound === 'from')}`
    : '';
  return (
    `SELECT ${ALIAS}.*, ${d.asText(column)} AS ${d.quoteIdent(CURSOR_KEY)} ` +
    `FROM ${relation(settings, d)} WHERE ${column} IS NOT NULL${after} ORDER BY ${column}`
  );
}
