import type { Knex } from 'knex';

/**
 * Exact list totals without count(*): raw_data_source_counts is an append-only ledger of signed
 * deltas keyed by the list filters (source_type, is_active, sync_status). Statement triggers add
 * one row per key a statement changes, in the writer's own transaction, so a snapshot's sum over a
 * filter equals count(*) over the same filter in that snapshot. Writers only ever INSERT here, so
 * they never wait on each other nor deadlock (per-key counter rows would serialize every worker
 * that moves a source between the same statuses). SourceCounts folds the ledger back to one row
 * per key from time to time.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE raw_data_source_counts (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      source_type text,
      is_active boolean NOT NULL,
      sync_status text NOT NULL,
      n bigint NOT NULL
    )`);

  await knex.raw(`
    CREATE FUNCTION raw_data_source_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        INSERT INTO raw_data_source_counts (source_type, is_active, sync_status, n)
        SELECT source_type, is_active, sync_status, count(*) FROM new_rows GROUP BY 1, 2, 3;
      ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO raw_data_source_counts (source_type, is_active, sync_status, n)
        SELECT source_type, is_active, sync_status, -count(*) FROM old_rows GROUP BY 1, 2, 3;
      ELSE
        -- An update that leaves every key as it was (name, metadata, last_sync_at...) adds nothing.
        INSERT INTO raw_data_source_counts (source_type, is_active, sync_status, n)
        SELECT source_type, is_active, sync_status, sum(d) FROM (
          SELECT source_type, is_active, sync_status, -1 AS d FROM old_rows
          UNION ALL
          SELECT source_type, is_active, sync_status, 1 FROM new_rows
        ) changes
        GROUP BY 1, 2, 3
        HAVING sum(d) <> 0;
      END IF;
      RETURN NULL;
    END $$`);

  await knex.raw(`
    CREATE FUNCTION raw_data_source_counts_reset() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      DELETE FROM raw_data_source_counts;
      RETURN NULL;
    END $$`);

  // No write may slip between the backfill's snapshot and the triggers taking over; this lock
  // (which CREATE TRIGGER takes anyway) holds writers until the migration commits.
  await knex.raw('LOCK TABLE raw_data_sources IN SHARE ROW EXCLUSIVE MODE');
  await knex.raw(`
    CREATE TRIGGER raw_data_source_counts_on_insert AFTER INSERT ON raw_data_sources
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION raw_data_source_counts_track()`);
  await knex.raw(`
    CREATE TRIGGER raw_data_source_counts_on_update AFTER UPDATE ON raw_data_sources
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION raw_data_source_counts_track()`);
  await knex.raw(`
    CREATE TRIGGER raw_data_source_counts_on_delete AFTER DELETE ON raw_data_sources
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION raw_data_source_counts_track()`);
  await knex.raw(`
    CREATE TRIGGER raw_data_source_counts_on_truncate AFTER TRUNCATE ON raw_data_sources
    FOR EACH STATEMENT EXECUTE FUNCTION raw_data_source_counts_reset()`);
  await knex.raw(`
    INSERT INTO raw_data_source_counts (source_type, is_active, sync_status, n)
    SELECT source_type, is_active, sync_status, count(*) FROM raw_data_sources GROUP BY 1, 2, 3`);
}

export async function down(knex: Knex): Promise<void> {
  for (const op of ['truncate', 'delete', 'update', 'insert'])
    await knex.raw(`DROP TRIGGER raw_data_source_counts_on_${op} ON raw_data_sources`);
  await knex.raw('DROP FUNCTION raw_data_source_counts_reset()');
  await knex.raw('DROP FUNCTION raw_data_source_counts_track()');
  await knex.raw('DROP TABLE raw_data_source_counts');
}
