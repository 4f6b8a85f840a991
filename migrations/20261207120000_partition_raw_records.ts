import type { Knex } from 'knex';

/**
 * raw_records and quarantined_records become range-partitioned by day on their landing time, so
 * retention detaches and drops whole partitions instead of deleting rows from the busiest table.
 *
 * The shape is copied at run time (LIKE, then every index and foreign key read from the catalog),
 * so the migration works whatever columns earlier migrations added. Postgres needs the partition
 * key in every unique constraint, so the primary key becomes (id, <key>); ids still come from the
 * same sequence and stay unique. A unique index or an incoming foreign key on these tables cannot
 * be carried over: the migration stops and names it rather than silently weakening it.
 *
 * Existing rows are copied into daily partitions (rows older than MAX_DAILY_DAYS go into one
 * `_legacy` partition); partitions for the next AHEAD_DAYS days are created here and then kept
 * ahead by the worker (src/records/record-retention.ts).
 */
const TABLES = [
  { table: 'raw_records', key: 'ingested_at' },
  { table: 'quarantined_records', key: 'quarantined_at' },
] as const;
const AHEAD_DAYS = 7;
const MAX_DAILY_DAYS = 366;
const DAY_MS = 86_400_000;

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
const dayStart = (t: number) => Math.floor(t / DAY_MS) * DAY_MS;
const ymd = (t: number) => new Date(t).toISOString().slice(0, 10).replace(/-/g, '');
const literal = (t: number) => `'${new Date(t).toISOString()}'`;

interface Shape {
  indexes: string[];
  foreignKeys: { name: string; def: string }[];
  primaryKey: string[];
  sequences: { sequence: string; column: string }[];
}

async function shapeOf(knex: Knex, table: string, key: string): Promise<Shape> {
  const incoming = await knex.raw<{ rows: { name: string; source: string }[] }>(
    `SELECT conname AS name, conrelid::regclass::text AS source FROM pg_constraint
      WHERE contype = 'f' AND confrelid = ?::regclass`,
    [table],
  );
  if (incoming.rows.length)
    throw new Error(
      `${table} cannot be partitioned: foreign keys reference it (${incoming.rows
        .map((r) => `${r.source}.${r.name}`)
        .join(', ')}); a partitioned table's key must include ${key}`,
    );
  const indexes = await knex.raw<{ rows: { def: string; unique: boolean; columns: string[] }[] }>(
    `SELECT pg_get_indexdef(i.indexrelid) AS def, i.indisunique AS unique,
        array(SELECT a.attname FROM pg_attribute a
              WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) AS columns
       FROM pg_index i
      WHERE i.indrelid = ?::regclass AND NOT i.indisprimary
        AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)`,
    [table],
  );
  for (const index of indexes.rows)
    if (index.unique && !index.columns.includes(key))
      throw new Error(`${table} cannot be partitioned: unique index without ${key}: ${index.def}`);
  const constraints = await knex.raw<{ rows: { name: string; type: string; def: string }[] }>(
    `SELECT conname AS name, contype AS type, pg_get_constraintdef(oid) AS def
       FROM pg_constraint WHERE conrelid = ?::regclass AND contype IN ('f', 'u', 'x')`,
    [table],
  );
  const other = constraints.rows.find((c) => c.type !== 'f');
  if (other) throw new Error(`${table} cannot be partitioned: constraint ${other.name} ${other.def}`);
  const primary = await knex.raw<{ rows: { column: string }[] }>(
    `SELECT a.attname AS column FROM pg_index i
       JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = ?::regclass AND i.indisprimary ORDER BY k.n`,
    [table],
  );
  const sequences = await knex.raw<{ rows: { sequence: string; column: string }[] }>(
    `SELECT d.objid::regclass::text AS sequence, a.attname AS column FROM pg_depend d
       JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
       JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
      WHERE d.refobjid = ?::regclass AND d.deptype = 'a'`,
    [table],
  );
  return {
    indexes: indexes.rows.map((r) => r.def),
    foreignKeys: constraints.rows.filter((c) => c.type === 'f').map(({ name, def }) => ({ name, def })),
    primaryKey: primary.rows.map((r) => r.column),
    sequences: sequences.rows,
  };
}

/** Swaps `table` for a copy made by `create` (given the old table's name), then restores its shape. */
async function rebuild(
  knex: Knex,
  table: string,
  shape: Shape,
  primaryKey: string[],
  create: (old: string) => Promise<void>,
): Promise<void> {
  const old = `${table}_unpartitioned`;
  await knex.raw(`LOCK TABLE ${q(table)} IN ACCESS EXCLUSIVE MODE`);
  await knex.raw(`ALTER TABLE ${q(table)} RENAME TO ${q(old)}`);
  await create(old);
  await knex.raw(`INSERT INTO ${q(table)} SELECT * FROM ${q(old)}`);
  for (const { sequence, column } of shape.sequences)
    await knex.raw(`ALTER SEQUENCE ${sequence} OWNED BY ${q(table)}.${q(column)}`);
  // Dropping the old table frees its index and constraint names for the new one.
  await knex.raw(`DROP TABLE ${q(old)}`);
  if (primaryKey.length)
    await knex.raw(
      `ALTER TABLE ${q(table)} ADD CONSTRAINT ${q(`${table}_pkey`)} PRIMARY KEY (${primaryKey.map(q).join(', ')})`,
    );
  // pg_get_indexdef names the table as it was when read: the same name the new table has now.
  // A partitioned table's index reads "ON ONLY t"; on a plain table that would mean nothing.
  for (const def of shape.indexes) await knex.raw(def.replace(/ ON ONLY /, ' ON '));
  for (const fk of shape.foreignKeys)
    await knex.raw(`ALTER TABLE ${q(table)} ADD CONSTRAINT ${q(fk.name)} ${fk.def}`);
  await knex.raw(`ANALYZE ${q(table)}`);
}

export async function up(knex: Knex): Promise<void> {
  const today = dayStart(Date.now());
  for (const { table, key } of TABLES) {
    const shape = await shapeOf(knex, table, key);
    const primaryKey = shape.primaryKey.includes(key) ? shape.primaryKey : [...shape.primaryKey, key];
    await rebuild(knex, table, shape, primaryKey, async (old) => {
      await knex.raw(
        `CREATE TABLE ${q(table)} (LIKE ${q(old)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS
          INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (${q(key)})`,
      );
      const { rows } = await knex.raw<{ rows: { first: Date | null }[] }>(
        `SELECT min(${q(key)}) AS first FROM ${q(old)}`,
      );
      const first = rows[0]?.first ? dayStart(rows[0].first.getTime()) : today;
      const dailyFrom = Math.max(Math.min(first, today), today - MAX_DAILY_DAYS * DAY_MS);
      if (first < dailyFrom)
        await knex.raw(
          `CREATE TABLE ${q(`${table}_legacy`)} PARTITION OF ${q(table)}
            FOR VALUES FROM (MINVALUE) TO (${literal(dailyFrom)})`,
        );
      for (let day = dailyFrom; day <= today + AHEAD_DAYS * DAY_MS; day += DAY_MS)
        await knex.raw(
          `CREATE TABLE ${q(`${table}_p${ymd(day)}`)} PARTITION OF ${q(table)}
            FOR VALUES FROM (${literal(day)}) TO (${literal(day + DAY_MS)})`,
        );
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const { table, key } of [...TABLES].reverse()) {
    const shape = await shapeOf(knex, table, key);
    const primaryKey = shape.primaryKey.filter((c) => c !== key);
    await rebuild(knex, table, shape, primaryKey, async (old) => {
      await knex.raw(
        `CREATE TABLE ${q(table)} (LIKE ${q(old)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS
          INCLUDING STORAGE INCLUDING COMMENTS)`,
      );
    });
    // The partitions went with the partitioned table.
  }
}
