import type { Knex } from 'knex';

/**
 * Webhook notifications (src/notifications): subscriptions (the secret sealed like a connection
 * string, never stored in clear), one delivery per event and subscription (the event as sent,
 * unique so a re-read stream entry cannot deliver twice), and the attempt log the API serves
 * (trimmed to NOTIFY_LOG_MAX per subscription).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('notification_subscriptions', (t) => {
    t.uuid('id').primary();
    t.text('url').notNullable();
    t.specificType('event_types', 'text[]').notNullable();
    t.text('secret_ciphertext').notNullable();
    t.text('description');
    t.boolean('enabled').notNullable().defaultTo(true);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`CREATE INDEX notification_subscriptions_event_types_index
    ON notification_subscriptions USING gin (event_types) WHERE enabled`);

  await knex.schema.createTable('notification_deliveries', (t) => {
    t.uuid('id').primary();
    t.uuid('subscription_id')
      .notNullable()
      .references('id')
      .inTable('notification_subscriptions')
      .onDelete('CASCADE');
    t.text('event_id').notNullable();
    t.text('event_type').notNullable();
    t.jsonb('payload').notNullable();
    t.text('status').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('finished_at', { useTz: true });
    t.unique(['subscription_id', 'event_id'], { indexName: 'notification_deliveries_once' });
  });
  await knex.raw(`ALTER TABLE notification_deliveries ADD CONSTRAINT notification_deliveries_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed'))`);

  await knex.schema.createTable('notification_delivery_attempts', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('subscription_id')
      .notNullable()
      .references('id')
      .inTable('notification_subscriptions')
      .onDelete('CASCADE');
    t.uuid('delivery_id')
      .notNullable()
      .references('id')
      .inTable('notification_deliveries')
      .onDelete('CASCADE');
    t.integer('attempt').notNullable();
    t.text('outcome').notNullable();
    t.integer('status_code');
    t.integer('duration_ms').notNullable();
    t.text('error');
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['subscription_id', 'id'], 'notification_delivery_attempts_log_index');
    t.index(['delivery_id'], 'notification_delivery_attempts_delivery_index');
  });
  await knex.raw(`ALTER TABLE notification_delivery_attempts ADD CONSTRAINT notification_delivery_attempts_outcome_check
    CHECK (outcome IN ('succeeded', 'retrying', 'failed'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('notification_delivery_attempts');
  await knex.schema.dropTable('notification_deliveries');
  await knex.schema.dropTable('notification_subscriptions');
}
