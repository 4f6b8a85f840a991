import type { Knex } from 'knex';

/**
 * `count` sources in one INSERT ... SELECT, with a fixed, realistic spread: types 40/30/15/10/4/1
 * (database/api/file/stream/webhook/none), 85 % active (by default), statuses 72/12/12/4 (success/failed/
 * pending/syncing), one created every ~5 minutes over the last year. Buckets come from hashint4 so
 * every run seeds the same shape. Masked connection strings are real masks; the ciphertext column
 * holds a placeholder of a real envelope's length, because the read path never decrypts.
 */
export async function seedSources(
  knex: Knex,
  count: number,
  /** Percentage of active sources (85 by default; 100 for the sync and schedule benchmarks). */
  activePercent = 85,
): Promise<void> {
  await knex.raw(
    `
    WITH g AS (
      SELECT i,
        abs(hashint4(i)) % 100 AS rt,
        abs(hashint4(i + 1000000)) % 100 AS ra,
        abs(hashint4(i + 2000000)) % 100 AS rs
      FROM generate_series(1, ?::int) AS i
    ), typed AS (
      SELECT g.*,
        CASE WHEN rt < 40 THEN 'database' WHEN rt < 70 THEN 'api' WHEN rt < 85 THEN 'file'
             WHEN rt < 95 THEN 'stream' WHEN rt < 99 THEN 'webhook' END AS source_type,
        CASE WHEN rs < 72 THEN 'success' WHEN rs < 84 THEN 'failed' WHEN rs < 96 THEN 'pending'
             ELSE 'syncing' END AS sync_status
      FROM g
    )
    INSERT INTO raw_data_sources (name, source_type, connection_string_ciphertext,
      connection_string_masked, schema_definition, refresh_interval, is_active, last_sync_at,
      sync_status, error_message, metadata, created_at, updated_at)
    SELECT
      'source-' || i,
      source_type,
      'bench:' || encode(sha512(int4send(i)), 'base64') || encode(sha256(int4send(i)), 'base64'),
      CASE source_type
        WHEN 'database' THEN 'postgres://****@db-' || (i % 50) || '.corp.example:5432/warehouse'
        WHEN 'api' THEN 'https://api-' || (i % 20) || '.example.com/v2/items\\?token=****'
        WHEN 'file' THEN 'file:///data/exports/batch-' || (i % 100) || '.csv'
        WHEN 'stream' THEN 'redis://****@stream-' || (i % 10) || '.example.com:6379/0'
        WHEN 'webhook' THEN '****'
      END,
      CASE WHEN i % 3 = 0 THEN jsonb_build_object('type', 'object', 'required', jsonb_build_array('id'),
        'properties', jsonb_build_object('id', jsonb_build_object('type', 'integer'))) END,
      (ARRAY[60, 300, 900, 3600, 86400])[1 + i % 5],
      ra < ?,
      CASE WHEN sync_status <> 'pending' THEN now() - (i % 3600) * interval '1 second' END,
      sync_status,
      CASE WHEN sync_status = 'failed' THEN 'connection refused after 3 attempts' END,
      jsonb_build_object('table', 'events_' || (i % 200), 'owner', 'team-' || (i % 12)),
      now() - (? - i) * interval '5 minutes' - (i % 60) * interval '1 second',
      now() - (i % 86400) * interval '1 second'
    FROM typed`,
    [count, activePercent, count],
  );
  // A steady-state table: statistics known and the visibility map set, as autovacuum leaves it.
  await knex.raw('VACUUM ANALYZE raw_data_sources');
  await knex.raw('VACUUM ANALYZE raw_data_source_counts');
}
