import { CURSOR_KEY } from './read-plan';

export type Row = Record<string, unknown>;

/**
 * A driver value as plain JSON: Date → ISO string, bigint → number when it is a safe integer
 * (else its decimal string), Buffer → base64, NaN/Infinity → their names (JSON has no such numbers).
 */
export function toJsonValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value)
        : value.toString();
    case 'object':
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
      if (Buffer.isBuffer(value)) return value.toString('base64');
      if (Array.isArray(value)) return value.map(toJsonValue);
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonValue(v)]));
    default:
      return String(value);
  }
}

/** A row as the record that lands: every column, converted, without the connector's cursor column. */
export function toRecord(row: Row): Row {
  const record: Row = {};
  for (const key of Object.keys(row)) if (key !== CURSOR_KEY) record[key] = toJsonValue(row[key]);
  return record;
}
