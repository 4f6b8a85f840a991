import type { Knex } from 'knex';

/**
 * Run history, landed records and per-source incremental state. The partial unique index is the
 * Postgres half of "one sync per source at a time": a source can have at most one queued or running run.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sync_runs', (t) => {
    t.uuid('id').primary();
    t.uuid('source_id').notNullable().references('id').inTable('raw_data_sources').onDelete('CASCADE');
    t.text('trigger').notNullable();
    t.text('status').notNullable().defaultTo('queued');
    t.integer('attempt').notNullable().defaultTo(0);
    t.text('job_id');
    t.uuid('batch_id');
    t.timestamp('queued_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true });
    t.timestamp('finished_at', { useTz: true });
    t.bigInteger('records').notNullable().defaultTo(0);
    t.bigInteger('bytes').notNullable().defaultTo(0);
    t.bigInteger('invalid').notNullable().defaultTo(0);
    t.text('error');
    t.index(['source_id', 'queued_at'], 'sync_runs_source_id_queued_at_index');
  });
  await knex.raw(`ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_trigger_check
    CHECK (trigger IN ('manual', 'schedule', 'sync_all'))`);
  await knex.raw(`ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_status_check
    CHECK (status IN ('queued', 'running', 'success', 'failed', 'cancelled'))`);
  await knex.raw(`CREATE UNIQUE INDEX sync_runs_one_active_per_source
    ON sync_runs (source_id) WHERE status IN ('queued', 'running')`);
  // The reconciler scans only the few active runs.
  await knex.raw(`CREATE INDEX sync_runs_active_index ON sync_runs (status, queued_at)
    WHERE status IN ('queued', 'running')`);

  await knex.schema.createTable('raw_records', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('source_id').notNullable().references('id').inTable('raw_data_sources').onDelete('CASCADE');
    t.uuid('run_id').notNullable().references('id').inTable('sync_runs').onDelete('CASCADE');
    t.jsonb('payload').notNullable();
    t.timestamp('ingested_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['source_id', 'id'], 'raw_records_source_id_id_index');
    t.index(['run_id'], 'raw_records_run_id_index');
  });

  await knex.schema.createTable('source_sync_state', (t) => {
    t.uuid('source_id').primary().references('id').inTable('raw_data_sources').onDelete('CASCADE');
    t.jsonb('state').notNullable();
    t.uuid('run_id');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('source_sync_state');
  await knex.schema.dropTable('raw_records');
  await knex.schema.dropTable('sync_runs');
}
