/** A result column: the database's type name and the JSON type its values land as. */
export interface ColumnInfo {
  name: string;
  /** As the database names it (integer, timestamp with time zone, VARCHAR...). */
  dbType: string;
  /** Compared as a number (MySQL cursor comparisons need to know). */
  numeric: boolean;
  /** JSON Schema type(s) of the landed value; undefined for JSON columns (any value). */
  json?: string | string[];
}

const PG_JSON: Record<string, string | string[] | undefined> = {
  smallint: 'integer',
  integer: 'integer',
  oid: 'integer',
  // Safe integers land as numbers, larger ones as their decimal string.
  bigint: ['integer', 'string'],
  real: 'number',
  'double precision': 'number',
  // Exact: landed as the decimal string the driver gives.
  numeric: 'string',
  boolean: 'boolean',
  json: undefined,
  jsonb: undefined,
};
const PG_NUMERIC = new Set(['smallint', 'integer', 'oid', 'bigint', 'real', 'double precision', 'numeric']);

/** `dbType` is format_type(oid, NULL): `integer`, `character varying`, `numeric`, `integer[]`... */
export function pgColumn(name: string, dbType: string): ColumnInfo {
  if (dbType.endsWith('[]')) return { name, dbType, numeric: false, json: 'array' };
  const json = dbType in PG_JSON ? PG_JSON[dbType] : 'string';
  return { name, dbType, numeric: PG_NUMERIC.has(dbType), ...(json !== undefined && { json }) };
}

const MYSQL_JSON: Record<string, string | string[] | undefined> = {
  TINY: 'integer',
  SHORT: 'integer',
  LONG: 'integer',
  INT24: 'integer',
  YEAR: 'integer',
  LONGLONG: ['integer', 'string'],
  FLOAT: 'number',
  DOUBLE: 'number',
  DECIMAL: 'string',
  NEWDECIMAL: 'string',
  JSON: undefined,
};
const MYSQL_NUMERIC = new Set([
  'TINY',
  'SHORT',
  'LONG',
  'INT24',
  'YEAR',
  'LONGLONG',
  'FLOAT',
  'DOUBLE',
  'DECIMAL',
  'NEWDECIMAL',
]);

/** SQL names for the wire protocol's type codes (TEXT columns travel as BLOB with a text charset). */
const MYSQL_SQL_NAME: Record<string, string> = {
  TINY: 'tinyint',
  SHORT: 'smallint',
  LONG: 'int',
  INT24: 'mediumint',
  LONGLONG: 'bigint',
  DECIMAL: 'decimal',
  NEWDECIMAL: 'decimal',
  VAR_STRING: 'varchar',
  VARCHAR: 'varchar',
  STRING: 'char',
  DATETIME2: 'datetime',
  TIMESTAMP2: 'timestamp',
  TIME2: 'time',
  NEWDATE: 'date',
};

const MYSQL_BINARY_NAME: Record<string, string> = {
  VAR_STRING: 'varbinary',
  VARCHAR: 'varbinary',
  STRING: 'binary',
  TINY_BLOB: 'blob',
  BLOB: 'blob',
  MEDIUM_BLOB: 'blob',
  LONG_BLOB: 'blob',
};

/** `protocolType` is mysql2's type name (LONG, VAR_STRING, BLOB...); `binary` when the charset is binary. */
export function mysqlColumn(name: string, protocolType: string, binary: boolean): ColumnInfo {
  const dbType =
    (binary && MYSQL_BINARY_NAME[protocolType]) ||
    (/BLOB$/.test(protocolType) ? 'text' : (MYSQL_SQL_NAME[protocolType] ?? protocolType.toLowerCase()));
  const json = protocolType in MYSQL_JSON ? MYSQL_JSON[protocolType] : 'string';
  return { name, dbType, numeric: MYSQL_NUMERIC.has(protocolType), ...(json !== undefined && { json }) };
}

/** The columns as a JSON-Schema-like object (for schema drift); nullability is not known from a result. */
export function columnsSchema(columns: ColumnInfo[]): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const c of columns) {
    const types = c.json === undefined ? undefined : [...(Array.isArray(c.json) ? c.json : [c.json]), 'null'];
    properties[c.name] = { ...(types && { type: types }), 'x-db-type': c.dbType };
  }
  return { type: 'object', properties };
}
