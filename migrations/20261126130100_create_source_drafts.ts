import type { Knex } from 'knex';

/**
 * Unsaved source configurations under test (POST /raw-data-sources/test): the secret is sealed
 * like a source's, the job carries only the draft id, and drafts expire within minutes.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('source_drafts', (t) => {
    t.uuid('id').primary();
    t.text('name').notNullable();
    t.text('source_type');
    t.text('connection_string_ciphertext');
    t.jsonb('schema_definition');
    t.jsonb('metadata');
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['expires_at'], 'source_drafts_expires_at_index');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('source_drafts');
}
