import { PermanentSyncError } from '../connector';

/** `table` or `schema.table`: plain identifiers only, quoted per dialect when used. */
export const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/;
export const COLUMN_NAME = /^[A-Za-z_][A-Za-z0-9_$]*$/;
const QUERY_START = /^\s*(select|with)\b/i;
const MAX_QUERY = 20_000;

/** What a database source reads: a table or a query, and the column that makes syncs incremental. */
export interface DatabaseSettings {
  table?: string;
  query?: string;
  cursorColumn?: string;
  /** How far back each incremental read starts (seconds for date/time cursors, units for integers). */
  cursorLookback?: number;
}

/**
 * The metadata keys the database connector reads. Exactly one of `table` and `query`. The same
 * rules are checked again when a source is tested or synced (readDatabaseSettings), with clearer
 * messages, so a source saved before this schema existed still fails cleanly.
 */
export const databaseMetadataSchema = {
  type: 'object',
  properties: {
    table: {
      type: 'string',
      maxLength: 127,
      pattern: TABLE_NAME.source,
      description: 'Table to read, optionally schema-qualified (public.orders); names are case-sensitive.',
    },
    query: {
      type: 'string',
      minLength: 1,
      maxLength: MAX_QUERY,
      // JSON Schema patterns have no flags: spell the keywords case-insensitively.
      allOf: [
        { pattern: '^\\s*([Ss][Ee][Ll][Ee][Cc][Tt]|[Ww][Ii][Tt][Hh])\\b' },
        // At most one ';', followed only by whitespace. Written so a backtracking engine stays
        // linear: `^[^;]*;?\s*$` retried every split of a long run of spaces (quadratic).
        { pattern: '^[^;]*(?:;\\s*)?$' },
      ],
      description: 'One read-only SELECT (or WITH ... SELECT) statement; run inside a READ ONLY transaction.',
    },
    cursor_column: {
      type: 'string',
      maxLength: 63,
      pattern: COLUMN_NAME.source,
      description:
        'Column of the table or query result that only grows (id, updated_at): each sync reads rows from the last value landed (minus cursor_lookback), and rows landed already are not landed again.',
    },
    cursor_lookback: {
      type: 'number',
      minimum: 0,
      maximum: 31_536_000,
      description:
        'How far before the last landed cursor value each sync starts reading, so rows committed late with an earlier value still land: seconds for date/time cursor columns (default 300), units for integer ones (default 0). Ignored for other column types.',
    },
  },
  oneOf: [{ required: ['table'] }, { required: ['query'] }],
  additionalProperties: true,
} as const;

/** Reads and checks the metadata; a bad setting is permanent (invalid_config), retrying cannot fix it. */
export function readDatabaseSettings(metadata: Record<string, unknown> | null): DatabaseSettings {
  const meta = metadata ?? {};
  const table = optionalString(meta, 'table');
  const query = optionalString(meta, 'query');
  const cursorColumn = optionalString(meta, 'cursor_column');
  const cursorLookback = meta.cursor_lookback;
  if (
    cursorLookback !== undefined &&
    cursorLookback !== null &&
    (typeof cursorLookback !== 'number' ||
      !Number.isFinite(cursorLookback) ||
      cursorLookback < 0 ||
      cursorLookback > 31_536_000)
  )
    throw invalid(
      'metadata "cursor_lookback" must be a number from 0 to 31536000 (seconds, or integer units)',
    );
  if (table !== undefined && query !== undefined)
    throw invalid('metadata has both "table" and "query"; set one');
  if (table === undefined && query === undefined)
    throw invalid('metadata needs "table" (e.g. public.orders) or "query" (a SELECT statement)');
  if (table !== undefined && !TABLE_NAME.test(table))
    throw invalid('metadata "table" must be a name like orders or public.orders (letters, digits, _ and $)');
  if (cursorColumn !== undefined && !COLUMN_NAME.test(cursorColumn))
    throw invalid('metadata "cursor_column" must be a plain column name (letters, digits, _ and $)');
  return {
    ...(table !== undefined && { table }),
    ...(query !== undefined && { query: checkQuery(query) }),
    ...(cursorColumn !== undefined && { cursorColumn }),
    ...(typeof cursorLookback === 'number' && { cursorLookback }),
  };
}

/** One SELECT statement, returned without its optional trailing semicolon. */
function checkQuery(query: string): string {
  const text = query.trim().replace(/;\s*$/, '');
  if (text.length > MAX_QUERY) throw invalid(`metadata "query" is longer than ${MAX_QUERY} characters`);
  if (!QUERY_START.test(text))
    throw invalid('metadata "query" must be a SELECT (or WITH ... SELECT) statement');
  // Conservative on purpose: a ';' even inside a literal is refused rather than parsed per dialect.
  if (text.includes(';')) throw invalid('metadata "query" must be a single statement (no ";" inside)');
  // Would write a file on the database server; not a read.
  if (/\binto\s+(outfile|dumpfile)\b/i.test(text))
    throw invalid('metadata "query" must only read (INTO OUTFILE/DUMPFILE is not allowed)');
  return text;
}

function optionalString(meta: Record<string, unknown>, key: string): string | undefined {
  const value = meta[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !value.trim())
    throw invalid(`metadata "${key}" must be a non-empty string`);
  return value.trim();
}

function invalid(message: string): PermanentSyncError {
  return new PermanentSyncError(message, 'invalid_config');
}
