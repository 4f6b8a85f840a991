import type { Knex } from 'knex';

/**
 * Who did what, when, with which outcome: one row per write request (and key change). Append-only:
 * a trigger refuses UPDATE and DELETE, another TRUNCATE, so the application cannot rewrite
 * history even by mistake. `target_id` is text without a foreign key: rows outlive what they name.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_log', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.string('actor', 128).notNullable();
    t.string('action', 64).notNullable();
    t.string('target_type', 64).notNullable();
    t.string('target_id', 200).nullable();
    t.string('outcome', 16).notNullable();
    t.integer('status').nullable(); // null for changes made outside HTTP (the keys CLI)
    t.string('request_id', 64).nullable();
    t.jsonb('detail').notNullable().defaultTo('{}');
    // Newest first, alone or per filter: each index serves its filter and the order.
    t.index(['actor', 'id'], 'audit_log_actor_id_index');
    t.index(['action', 'id'], 'audit_log_action_id_index');
    t.index(['target_id', 'id'], 'audit_log_target_id_id_index');
  });
  await knex.raw(`
    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$`);
  await knex.raw(`
    CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()`);
  await knex.raw(`
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_log');
  await knex.raw('DROP FUNCTION IF EXISTS audit_log_append_only()');
}
