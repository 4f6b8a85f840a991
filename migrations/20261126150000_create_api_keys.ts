import type { Knex } from 'knex';

/**
 * API keys made by the key-management API and CLI. Only the SHA-256 of a token is stored (tokens
 * are 256 random bits, so a fast hash is enough); `prefix` is what humans see to tell keys apart.
 * Revoked keys stay as rows so the audit log's actors keep meaning something.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('api_keys', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.string('name', 64).notNullable().unique();
    t.string('scope', 16).notNullable();
    t.string('prefix', 16).notNullable();
    t.string('token_hash', 64).notNullable().unique();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_used_at', { useTz: true }).nullable();
    t.timestamp('revoked_at', { useTz: true }).nullable();
  });
  await knex.raw(
    `ALTER TABLE api_keys ADD CONSTRAINT api_keys_scope_check CHECK (scope IN ('read', 'write', 'admin'))`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('api_keys');
}
