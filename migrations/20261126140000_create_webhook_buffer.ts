import type { Knex } from 'knex';

/**
 * Payloads received at POST /webhooks/{source_id}, held until a sync lands them. The drain reads in
 * id order and keeps `last_id` as its state, so ids must grow in the order they are handed out:
 * the bigserial's sequence keeps the default CACHE 1 (a cache per session would break that).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('webhook_buffer', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('source_id').notNullable().references('id').inTable('raw_data_sources').onDelete('CASCADE');
    t.jsonb('payload').notNullable();
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['source_id', 'id'], 'webhook_buffer_source_id_id_index');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('webhook_buffer');
}
