import type { Knex } from 'knex';

/**
 * One row per sync-all request, written before its job is enqueued. A frozen Redis can accept an
 * enqueue after the API has already answered 503 (the command sat in the socket); the API then
 * marks the batch cancelled here, in Postgres, and the fan-out job that Redis runs later finds it
 * so and does nothing — a refused request never syncs anything.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sync_batches', (t) => {
    t.uuid('id').primary();
    t.text('status').notNullable().defaultTo('queued');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true });
  });
  await knex.raw(
    `ALTER TABLE sync_batches ADD CONSTRAINT sync_batches_status_check CHECK (status IN ('queued', 'running', 'cancelled'))`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('sync_batches');
}
