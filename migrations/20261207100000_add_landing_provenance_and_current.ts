import type { Knex } from 'knex';

/**
 * Where each landed or quarantined record came from (`provenance`), and what is *current* for the
 * sync modes: `raw_current` holds the current version of each key of a dedup source, written in
 * the transaction of the batch that changes it; `source_snapshots` points a snapshot source at
 * its latest complete run, swapped in the statement that closes that run as a success.
 *
 * Neither new table has a foreign key to sync_runs or raw_records: retention may drop old runs
 * and partitions of raw_records without cascading into what is current (raw_current keeps its
 * own copy of the payload).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('raw_records', (t) => {
    t.jsonb('provenance');
  });
  await knex.schema.alterTable('quarantined_records', (t) => {
    t.jsonb('provenance');
  });

  await knex.schema.createTable('raw_current', (t) => {
    t.uuid('source_id').notNullable().references('id').inTable('raw_data_sources').onDelete('CASCADE');
    t.jsonb('record_key').notNullable();
    t.uuid('run_id').notNullable();
    t.bigInteger('raw_record_id').notNullable();
    t.jsonb('payload').notNullable();
    t.jsonb('provenance');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['source_id', 'record_key'], { constraintName: 'raw_current_pkey' });
  });

  await knex.schema.createTable('source_snapshots', (t) => {
    t.uuid('source_id').primary().references('id').inTable('raw_data_sources').onDelete('CASCADE');
    t.uuid('run_id').notNullable();
    t.bigInteger('records').notNullable();
    t.timestamp('swapped_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('source_snapshots');
  await knex.schema.dropTable('raw_current');
  await knex.schema.alterTable('quarantined_records', (t) => {
    t.dropColumn('provenance');
  });
  await knex.schema.alterTable('raw_records', (t) => {
    t.dropColumn('provenance');
  });
}
