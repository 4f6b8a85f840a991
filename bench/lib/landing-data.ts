import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { assertLoopback } from './bench-database';

const ADMIN_URL = process.env.BENCH_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The source table's name in the scratch database. */
export const SOURCE_TABLE = 'orders';

/**
 * COPY options under which a line is one field taken verbatim: CSV with a quote and a delimiter
 * that never occur in JSON text (JSON escapes every control character), so nothing is quoted or
 * escaped on the way out or in. Text format would double every backslash of the JSON.
 */
export const VERBATIM = `(FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`;
export const FIELD_SEPARATOR = '\x02';

export interface LandingData {
  /** The scratch database holding the source table (what a database source connects to). */
  sourceUrl: string;
  /** Directory holding the NDJSON file: FILE_ROOTS of the worker. */
  dir: string;
  /** The NDJSON file: the same rows, one JSON object a line. */
  file: string;
  fileBytes: number;
  /** Mean size of a row as JSON text (as row_to_json writes it), in bytes. */
  rowBytes: number;
  drop(): Promise<void>;
}

function admin(): Knex {
  assertLoopback(ADMIN_URL);
  return knexFactory({ client: 'pg', connection: ADMIN_URL, pool: { min: 0, max: 1 } });
}

/**
 * A scratch database `name` (not the bench database: a source is someone else's database) with
 * `rows` order rows made by generate_series, and the same rows as an NDJSON file in a temp
 * directory. Values come from hashint4, so every run has the same data: ids, short texts, an
 * e-mail, a numeric amount, an integer, timestamps (one nullable), ~245 bytes a row as JSON.
 */
export async function createLandingData(name: string, rows: number): Promise<LandingData> {
  const db = admin();
  try {
    await db.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [name]);
    await db.raw('CREATE DATABASE ??', [name]);
  } finally {
    await db.destroy();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const sourceUrl = url.toString();
  const client = new pg.Client({ connectionString: sourceUrl });
  await client.connect();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-landing-'));
  const file = join(dir, 'orders.ndjson');
  try {
    await client.query(`
      CREATE TABLE ${SOURCE_TABLE} (
        id bigint PRIMARY KEY,
        account text NOT NULL,
        email text NOT NULL,
        country text NOT NULL,
        status text NOT NULL,
        amount numeric(12, 2) NOT NULL,
        quantity integer NOT NULL,
        created_at timestamptz NOT NULL,
        shipped_at timestamptz,
        note text
      )`);
    await client.query(
      `INSERT INTO ${SOURCE_TABLE}
       SELECT i,
         'acct-' || lpad((abs(hashint4(i)) % 50000)::text, 5, '0'),
         'cust' || (abs(hashint4(i + 1)) % 200000) || '@example.com',
         (ARRAY['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'JP', 'BR'])[1 + abs(hashint4(i + 2)) % 8],
         (ARRAY['pending', 'paid', 'shipped', 'refunded'])[1 + abs(hashint4(i + 3)) % 4],
         (abs(hashint4(i + 4)) % 1000000) / 100.0,
         1 + abs(hashint4(i + 5)) % 20,
         timestamptz '2025-01-01 00:00:00+00' + i * interval '7 seconds',
         CASE WHEN i % 3 <> 0 THEN timestamptz '2025-01-01 00:00:00+00' + i * interval '7 seconds'
           + (abs(hashint4(i + 6)) % 86400) * interval '1 second' END,
         CASE WHEN i % 4 = 0 THEN 'leave at the door, ring twice' ELSE md5(i::text) END
       FROM generate_series(1, $1::int) AS i`,
      [rows],
    );
    await client.query(`VACUUM ANALYZE ${SOURCE_TABLE}`);
    // The file as an export tool writes it: row_to_json of every row in id order, times in UTC.
    await client.query("SET TIME ZONE 'UTC'");
    await pipeline(
      client.query(
        copyTo(`COPY (SELECT row_to_json(t) FROM ${SOURCE_TABLE} t ORDER BY id) TO STDOUT ${VERBATIM}`),
      ),
      createWriteStream(file),
    );
    const fileBytes = (await stat(file)).size;
    return {
      sourceUrl,
      dir,
      file,
      fileBytes,
      // Less its newline.
      rowBytes: fileBytes / rows - 1,
      async drop() {
        await rm(dir, { recursive: true, force: true });
        const cleanup = admin();
        try {
          await cleanup.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [name]);
        } finally {
          await cleanup.destroy();
        }
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  } finally {
    await client.end();
  }
}
