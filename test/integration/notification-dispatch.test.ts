import { randomBytes } from 'node:crypto';
import { duplicateRedis } from '../../src/redis/redis-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rewrapSecrets } from '../../src/crypto/rewrap';
import { SecretBox } from '../../src/crypto/secret-box';
import { DISPATCH_GROUP, NotificationDispatcher } from '../../src/notifications/notification-dispatcher';
import { SubscriptionRepository } from '../../src/notifications/subscription.repository';
import { NotificationDelivery } from '../../src/notifications/notification-delivery';
import { DeliverySender } from '../../src/notifications/delivery-sender';
import { Outbound } from '../../src/connectors/outbound';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { TEST_ENCRYPTION_KEYS } from '../helpers/test-env';
import { until } from '../helpers/until';

/**
 * The dispatcher against real Redis and Postgres, without workers: what happens to events a
 * consumer read and never acknowledged (its process died), and to events of no subscribed type.
 */
describe('notification dispatcher', () => {
  let api: TestApi;
  const dispatchers: NotificationDispatcher[] = [];
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(async () => {
    await Promise.all(dispatchers.map((d) => d.close()));
    await api?.close();
  });

  const dispatcher = (claimIdleMs: number) => {
    const { redis, notifications, queues, events, logger } = api.container;
    const d = new NotificationDispatcher(
      { redis: duplicateRedis(redis), ...notifications, queue: queues.notify, logger },
      { key: events.key, blockMs: 100, claimIdleMs },
    );
    dispatchers.push(d);
    return d;
  };

  it('takes over what a dead consumer read and never acknowledged, and delivers it once', async () => {
    const { redis, events, knex, notifications, queues } = api.container;
    const sub = await notifications.subscriptions.create({
      url: 'https://hooks.example.com/x',
      event_types: ['sync.failed'],
      secret: 'a-secret-of-enough-length',
    });
    await redis.xgroup('CREATE', events.key, DISPATCH_GROUP, '$', 'MKSTREAM');
    const failedId = await events.publish('sync.failed', { source_id: null, data: { error: 'x' } });
    const ignoredId = await events.publish('sync.started', { data: {} });
    // A consumer reads both and dies before acknowledging.
    await redis.xreadgroup('GROUP', DISPATCH_GROUP, 'dead-consumer', 'COUNT', 10, 'STREAMS', events.key, '>');
    expect(((await redis.xpending(events.key, DISPATCH_GROUP)) as unknown[])[0]).toBe(2);

    dispatcher(200).start();
    await until(
      async () => ((await redis.xpending(events.key, DISPATCH_GROUP)) as unknown[])[0],
      (n) => n === 0,
    );
    const deliveries = await knex('notification_deliveries').where({ subscription_id: sub.id });
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ event_id: failedId, event_type: 'sync.failed', status: 'pending' });
    expect(deliveries[0].payload).toMatchObject({ id: failedId, type: 'sync.failed' });
    const job = await queues.notify.getJob(deliveries[0].id);
    expect(job?.data).toEqual({ deliveryId: deliveries[0].id });
    expect(await knex('notification_deliveries').where({ event_id: ignoredId })).toEqual([]);

    // The same entry handled again (a second consumer's late claim) adds nothing.
    const again = await notifications.deliveries.open(
      { ...deliveries[0].payload, id: failedId },
      await notifications.subscriptions.subscribedTo('sync.failed'),
    );
    expect(again).toEqual([deliveries[0].id]);
    expect(await knex('notification_deliveries').where({ subscription_id: sub.id })).toHaveLength(1);
    expect(await queues.notify.getJobCounts('waiting', 'delayed', 'prioritized')).toMatchObject({
      waiting: 1,
    });
  });

  it('re-creates its group when Redis lost the stream', async () => {
    const { redis, events, knex } = api.container;
    await redis.del(events.key);
    const id = await events.publish('sync.failed', { data: { error: 'after the loss' } });
    // The dispatcher's read fails (no group), it re-creates the group at the stream's end: events
    // published from then on are dispatched.
    await until(
      async () => (await redis.xinfo('GROUPS', events.key).catch(() => [])) as unknown[],
      (groups) => groups.length === 1,
    );
    const later = await events.publish('sync.failed', { data: { error: 'later' } });
    await until(
      () => knex('notification_deliveries').where({ event_id: later }),
      (rows) => rows.length === 1,
    );
    // (The one published right after the loss may or may not precede the re-created group.)
    expect(id).toBeTypeOf('string');
  });

  it('key rotation rewraps subscription secrets, which still open under the new key', async () => {
    const { knex } = api.container;
    const fresh = `rot:${randomBytes(32).toString('base64')}`;
    const rotated = new SecretBox(`${fresh},${TEST_ENCRYPTION_KEYS}`);
    const sub = await api.container.notifications.subscriptions.create({
      url: 'https://hooks.example.com/rot',
      event_types: ['freshness.breached'],
      secret: 'rotate-me-please-0123',
    });
    const counts = await rewrapSecrets(knex, rotated);
    expect(counts.failed).toBe(0);
    const row = await knex('notification_subscriptions').where({ id: sub.id }).first();
    expect(rotated.keyIdOf(row.secret_ciphertext)).toBe('rot');
    // Readable with the new key alone.
    const target = await new SubscriptionRepository(knex, new SecretBox(fresh)).target(sub.id);
    expect(target?.secret).toBe('rotate-me-please-0123');
  });

  it('skips (and closes) a delivery whose subscription was disabled after the event', async () => {
    const { knex, notifications, logger } = api.container;
    const sub = await notifications.subscriptions.create({
      url: 'https://hooks.example.com/disabled',
      event_types: ['sync.failed'],
      secret: 'a-secret-of-enough-length',
    });
    const [deliveryId] = await notifications.deliveries.open(
      {
        id: '1-1',
        type: 'sync.failed',
        source_id: null,
        run_id: null,
        at: new Date().toISOString(),
        data: {},
      },
      [sub.id],
    );
    await notifications.subscriptions.update(sub.id, { enabled: false });
    // A resolver that must not be asked: nothing is sent for a disabled subscription.
    const outbound = new Outbound(undefined, () => Promise.reject(new Error('resolver called')));
    const delivery = new NotificationDelivery({
      ...notifications,
      sender: new DeliverySender(outbound, 1000),
      logger,
    });
    expect(await delivery.deliver(deliveryId!, 1, 3)).toBe('skipped');
    expect(await knex('notification_deliveries').where({ id: deliveryId }).first()).toMatchObject({
      status: 'failed',
      attempts: 0,
    });
    expect(await delivery.deliver(deliveryId!, 2, 3)).toBe('skipped');
    expect((await notifications.deliveries.log(sub.id, 10, 0)).total).toBe(0);
  });
});
