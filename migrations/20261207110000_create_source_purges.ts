import type { Knex } from 'knex';

const DETACHED = [
  ['raw_records', 'source_id', 'raw_data_sources'],
  ['raw_records', 'run_id', 'sync_runs'],
  ['quarantined_records', 'source_id', 'raw_data_sources'],
  ['quarantined_records', 'run_id', 'sync_runs'],
] as const;

/**
 * Deleting a source no longer cascades to its landed and quarantined records: one DELETE of the
 * source row would otherwise remove millions of rows in one transaction, holding its locks and WAL
 * for as long as that takes. The records are purged in the background in small batches instead
 * (workers/purge.processor.ts), driven by `source_purges`: a row per deleted source, written
 * before the delete, finished when nothing of the source is left. Runs, state and the webhook
 * buffer still cascade (a few rows per source).
 */
export async function up(knex: Knex): Promise<void> {
  for (const [table, column] of DETACHED) await knex.schema.alterTable(table, (t) => t.dropForeign([column]));
  await knex.schema.createTable('source_purges', (t) => {
    // No foreign key: the row outlives the source it names.
    t.uuid('source_id').primary();
    t.text('source_name');
    t.timestamp('requested_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.bigInteger('records_removed').notNullable().defaultTo(0);
    t.bigInteger('quarantined_removed').notNullable().defaultTo(0);
    t.timestamp('finished_at', { useTz: true });
  });
  await knex.raw(`CREATE INDEX source_purges_pending_index ON source_purges (requested_at)
    WHERE finished_at IS NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('source_purges');
  // Records of sources deleted meanwhile would break the restored constraints: purge them first.
  for (const [table, column, parent] of DETACHED) {
    await knex.raw(`DELETE FROM ?? WHERE ?? NOT IN (SELECT id FROM ??)`, [table, column, parent]);
    await knex.schema.alterTable(table, (t) =>
      t.foreign(column).references('id').inTable(parent).onDelete('CASCADE'),
    );
  }
}
