import type { Knex } from 'knex';

/**
 * Freshness (src/sources/source-freshness.ts): a row while a source is in breach of its
 * freshness_target_seconds, so `freshness.breached` fires once per breach and
 * `freshness.recovered` once when it ends. The partial index answers "last successful sync of a
 * source" (the list's ?stale filter, the check, the staleness metric) from the index alone.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('source_freshness_breaches', (t) => {
    t.uuid('source_id').primary().references('id').inTable('raw_data_sources').onDelete('CASCADE');
    t.timestamp('breached_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_success_at', { useTz: true });
  });
  await knex.raw(`CREATE INDEX sync_runs_last_success_index ON sync_runs (source_id, finished_at)
    WHERE status = 'success'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX sync_runs_last_success_index');
  await knex.schema.dropTable('source_freshness_breaches');
}
