import type { Knex } from 'knex';

/** Records that failed the source's schema_definition: kept with their errors, never silently dropped. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('quarantined_records', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('source_id').notNullable().references('id').inTable('raw_data_sources').onDelete('CASCADE');
    t.uuid('run_id').notNullable().references('id').inTable('sync_runs').onDelete('CASCADE');
    t.jsonb('payload').notNullable();
    t.jsonb('errors').notNullable();
    t.timestamp('quarantined_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['source_id', 'id'], 'quarantined_records_source_id_id_index');
    t.index(['run_id'], 'quarantined_records_run_id_index');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('quarantined_records');
}
