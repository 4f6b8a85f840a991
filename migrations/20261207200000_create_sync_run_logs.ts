import type { Knex } from 'knex';

/**
 * A run's own log lines (runs/run-log.ts): one row per flush (a chunk of lines as a JSON array),
 * not per line, so a run costs a few rows however chatty it is. No foreign keys, like the landed
 * records: a source delete would otherwise cascade to every chunk of every run in one
 * transaction; the purge processor removes them in batches after the source row is gone
 * (source-purges.ts), keyed by (source_id, id). Reads go by (run_id, id).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sync_run_logs', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('run_id').notNullable();
    t.uuid('source_id').notNullable();
    t.integer('attempt').notNullable();
    t.jsonb('lines').notNullable();
    t.integer('line_count').notNullable();
    t.integer('bytes').notNullable();
    t.timestamp('written_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['run_id', 'id'], 'sync_run_logs_run_id_id_index');
    t.index(['source_id', 'id'], 'sync_run_logs_source_id_id_index');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('sync_run_logs');
}
