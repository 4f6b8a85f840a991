import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toEvent } from '../../src/events/event-bus';
import { verifyDelivery } from '../../src/notifications/delivery-signature';
import { DISPATCH_GROUP } from '../../src/notifications/notification-dispatcher';
import { expectInvalid, startTestApi, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';
import { until } from '../helpers/until';

const SIGNING_SECRET = 'whsec-Notify-Test-Secret-0123456789';
const BACKOFF_MS = 150;

/** One POST the receiver got: when, its headers and its raw body. */
interface Receipt {
  at: number;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A loopback webhook receiver: records every request and answers each path with the next status
 * of its script (200 once the script is used up).
 */
class Receiver {
  readonly receipts: Receipt[] = [];
  private readonly scripts = new Map<string, number[]>();
  private server?: Server;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.receipts.push({
          at: Date.now(),
          path,
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        res.statusCode = this.scripts.get(path)?.shift() ?? 200;
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as AddressInfo).port;
  }

  script(path: string, statuses: number[]): string {
    this.scripts.set(path, [...statuses]);
    return `http://127.0.0.1:${this.port}${path}`;
  }

  at(path: string): Receipt[] {
    return this.receipts.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

let seq = 0;
const sourceBody = (metadata: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  name: `notify-${process.pid}-${++seq}`,
  source_type: 'database',
  connection_string: 'postgres://loader:Source-Pw-1@127.0.0.1:5432/warehouse',
  metadata,
  ...extra,
});

describe('webhook notifications', () => {
  let api: TestApi;
  const receiver = new Receiver();

  beforeAll(async () => {
    await receiver.start();
    api = await startTestApi({
      connectors: [new ScriptedConnector('database')],
      env: {
        SYNC_ATTEMPTS: '1',
        NOTIFY_ATTEMPTS: '4',
        NOTIFY_BACKOFF_MS: String(BACKOFF_MS),
        NOTIFY_TIMEOUT_MS: '5000',
        NOTIFY_LOG_MAX: '6',
        // Only the receiver's address: any other loopback address stays refused, as in production.
        OUTBOUND_ALLOW: '127.0.0.1/32',
        FRESHNESS_CHECK_INTERVAL_MS: '250',
      },
    });
    // Two workers: the consumer group hands each event to one of them.
    await api.startWorker();
    await api.startWorker();
  }, 60_000);
  afterAll(async () => {
    await api?.close();
    await receiver.close();
  });

  const subscribe = async (url: string, eventTypes: string[]) => {
    const res = await api.post('/notification-subscriptions', {
      url,
      event_types: eventTypes,
      secret: SIGNING_SECRET,
    });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string };
  };
  const syncOnce = async (metadata: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const source = (await api.post('/raw-data-sources', sourceBody(metadata, extra))).body;
    expect((await api.post(`/raw-data-sources/${source.id}/sync`)).status).toBe(202);
    await until(
      async () => (await api.get(`/raw-data-sources/${source.id}`)).body.sync_status,
      (s) => s === 'success' || s === 'failed',
    );
    return source as { id: string };
  };
  const log = async (id: string) => (await api.get(`/notification-subscriptions/${id}/deliveries`)).body;
  const streamEvents = async () =>
    (await api.container.redis.xrange(api.container.events.key, '-', '+')).map(([id, f]) => toEvent(id, f));

  it('creates, reads, lists, updates and deletes a subscription, never showing its secret', async () => {
    const url = receiver.script('/crud', []);
    const created = await api.post('/notification-subscriptions', {
      url,
      event_types: ['sync.failed', 'freshness.breached'],
      secret: SIGNING_SECRET,
      description: 'on-call',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      url,
      event_types: ['sync.failed', 'freshness.breached'],
      description: 'on-call',
      enabled: true,
      has_secret: true,
    });
    expect(created.headers.get('location')).toBe(`/notification-subscriptions/${created.body.id}`);
    const id = created.body.id as string;
    const got = await api.get(`/notification-subscriptions/${id}`);
    expect(got.body).toEqual(created.body);
    const listed = await api.get('/notification-subscriptions?limit=100');
    expect(listed.body.data.map((s: { id: string }) => s.id)).toContain(id);
    const updated = await api.put(`/notification-subscriptions/${id}`, {
      enabled: false,
      secret: 'another-Secret-value-42',
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ enabled: false, has_secret: true });
    // Stored sealed (bound to its row), never in clear.
    const row = await api.knex('notification_subscriptions').where({ id }).first();
    expect(row.secret_ciphertext).toMatch(/^v1:/);
    expect(JSON.stringify(row)).not.toContain('another-Secret-value-42');
    for (const res of [created, got, listed, updated]) {
      expect(res.text).not.toContain(SIGNING_SECRET);
      expect(res.text).not.toContain('another-Secret-value-42');
    }
    const audit = await api.knex('audit_log').select('detail');
    expect(JSON.stringify(audit)).not.toContain(SIGNING_SECRET);
    expect(api.logs.join('')).not.toContain(SIGNING_SECRET);
    expect((await api.del(`/notification-subscriptions/${id}`)).status).toBe(204);
    expect((await api.get(`/notification-subscriptions/${id}`)).status).toBe(404);
    expect((await api.del(`/notification-subscriptions/${id}`)).status).toBe(404);
  });

  it('answers bad input with a 400 naming the field', async () => {
    const valid = {
      url: 'https://hooks.example.com/x',
      event_types: ['sync.failed'],
      secret: SIGNING_SECRET,
    };
    expectInvalid(
      await api.post('/notification-subscriptions', { ...valid, url: 'https://u:p@hooks.example.com/' }),
      '/url',
      'user or password',
    );
    expectInvalid(await api.post('/notification-subscriptions', { ...valid, url: 'ftp://x/' }), '/url');
    expectInvalid(await api.post('/notification-subscriptions', { ...valid, url: 'not a url' }), '/url');
    expectInvalid(
      await api.post('/notification-subscriptions', { ...valid, event_types: ['sync.nope'] }),
      '/event_types/0',
    );
    expectInvalid(
      await api.post('/notification-subscriptions', { ...valid, event_types: [] }),
      '/event_types',
    );
    expectInvalid(await api.post('/notification-subscriptions', { ...valid, secret: 'short' }), '/secret');
    expectInvalid(await api.put(`/notification-subscriptions/${crypto.randomUUID()}`, {}), '');
    expectInvalid(await api.get('/notification-subscriptions/not-a-uuid'), 'id');
  });

  it('needs an admin key', async () => {
    const key = await api.post('/api-keys', { name: `writer-${process.pid}`, scope: 'write' });
    const res = await api.request('GET', '/notification-subscriptions', { token: key.body.token });
    expect(res.status).toBe(403);
    const post = await api.request('POST', '/notification-subscriptions', {
      token: key.body.token,
      body: { url: 'https://hooks.example.com/x', event_types: ['sync.failed'], secret: SIGNING_SECRET },
    });
    expect(post.status).toBe(403);
  });

  it('delivers sync.failed signed, retries a 500 with growing waits, then logs the success', async () => {
    const url = receiver.script('/failed', [500, 500]);
    const sub = await subscribe(url, ['sync.failed']);
    const source = await syncOnce({ fail: 'permanent' });

    const receipts = await until(
      () => receiver.at('/failed'),
      (r) => r.length >= 3,
    );
    expect(receipts).toHaveLength(3);
    for (const r of receipts) {
      expect(verifyDelivery(SIGNING_SECRET, r.body, String(r.headers['sluice-signature']))).toBe(true);
      expect(verifyDelivery('some-other-secret-value', r.body, String(r.headers['sluice-signature']))).toBe(
        false,
      );
      expect(verifyDelivery(SIGNING_SECRET, `${r.body} `, String(r.headers['sluice-signature']))).toBe(false);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['sluice-event']).toBe('sync.failed');
      // The same delivery id on every attempt: receivers deduplicate with it.
      expect(r.headers['sluice-delivery']).toBe(receipts[0]!.headers['sluice-delivery']);
      expect(r.body).not.toContain('Source-Pw-1');
    }
    const event = JSON.parse(receipts[0]!.body);
    expect(event).toMatchObject({ type: 'sync.failed', source_id: source.id });
    // Exponential backoff: the second wait is about twice the first (BullMQ: delay × 2^(n-1)).
    const firstWait = receipts[1]!.at - receipts[0]!.at;
    const secondWait = receipts[2]!.at - receipts[1]!.at;
    expect(firstWait).toBeGreaterThanOrEqual(BACKOFF_MS);
    expect(secondWait).toBeGreaterThanOrEqual(2 * BACKOFF_MS);

    const entries = await until(
      () => log(sub.id),
      (l) => l.data?.length === 3,
    );
    expect(entries.pagination.total).toBe(3);
    expect(entries.data.map((e: Record<string, unknown>) => [e.attempt, e.outcome, e.status_code])).toEqual([
      [3, 'succeeded', 200],
      [2, 'retrying', 500],
      [1, 'retrying', 500],
    ]);
    for (const e of entries.data) {
      expect(e).toMatchObject({ event_id: event.id, event_type: 'sync.failed' });
      expect(e.duration_ms).toBeTypeOf('number');
    }
    expect(entries.data[1].error).toContain('500');
    // The job carried the delivery id only: no URL, secret or payload.
    const job = await api.container.queues.notify.getJob(String(r0(receipts).headers['sluice-delivery']));
    expect(Object.keys(job?.data ?? {})).toEqual(['deliveryId']);
    expect(JSON.stringify(job?.data)).not.toContain(SIGNING_SECRET);
  });

  it('sends sync.succeeded only to subscriptions that opted in, once per event across two workers', async () => {
    const optedIn = receiver.script('/succeeded', []);
    const failuresOnly = receiver.script('/failures-only', []);
    await subscribe(optedIn, ['sync.succeeded']);
    await subscribe(failuresOnly, ['sync.failed']);
    const source = await syncOnce({ records: 2 });
    const [receipt] = await until(
      () => receiver.at('/succeeded'),
      (r) => r.length >= 1,
    );
    expect(JSON.parse(receipt!.body)).toMatchObject({ type: 'sync.succeeded', source_id: source.id });
    // Both workers consume in the group, and the event went through it once.
    const consumers = (await api.container.redis.xinfo(
      'CONSUMERS',
      api.container.events.key,
      DISPATCH_GROUP,
    )) as unknown[];
    expect(consumers).toHaveLength(2);
    await until(
      async () => (await api.container.redis.xpending(api.container.events.key, DISPATCH_GROUP)) as unknown[],
      (p) => p[0] === 0,
    );
    const deliveries = await api.knex('notification_deliveries').where({ event_type: 'sync.succeeded' });
    expect(deliveries).toHaveLength(1);
    expect(receiver.at('/succeeded')).toHaveLength(1);
    expect(
      receiver.at('/failures-only').filter((r) => r.headers['sluice-event'] === 'sync.succeeded'),
    ).toEqual([]);
  });

  it('refuses addresses the outbound policy refuses, without retrying and without connecting', async () => {
    // Another loopback address (not in OUTBOUND_ALLOW) and Sluice's own Redis: both loopback forms,
    // refused before any connection is opened.
    const other = await subscribe(`http://127.0.0.2:${receiver.port}/never`, ['sync.failed']);
    const ownRedis = await subscribe('http://127.0.0.1:6379/never', ['sync.failed']);
    await syncOnce({ fail: 'permanent' });
    for (const sub of [other, ownRedis]) {
      const entries = await until(
        () => log(sub.id),
        (l) => l.data?.length === 1,
      );
      expect(entries.data[0]).toMatchObject({ attempt: 1, outcome: 'failed', status_code: null });
      expect(entries.data[0].error).toContain('outbound policy');
    }
    expect((await log(ownRedis.id)).data[0].error).toContain("Sluice's own Redis");
    expect(receiver.at('/never')).toEqual([]);
  });

  it('caps each log at NOTIFY_LOG_MAX attempts, newest kept', async () => {
    const url = receiver.script('/capped', [500, 500, 500, 500, 500, 500, 500, 500]);
    const sub = await subscribe(url, ['sync.failed']);
    await syncOnce({ fail: 'permanent' });
    await syncOnce({ fail: 'permanent' });
    // Two deliveries × four attempts = 8 > 6: the two oldest attempts are gone.
    await until(
      () => receiver.at('/capped'),
      (r) => r.length >= 8,
    );
    const entries = await until(
      () => log(sub.id),
      (l) => l.data?.filter((e: { outcome: string }) => e.outcome === 'failed').length === 2,
    );
    expect(entries.pagination.total).toBe(6);
    expect(entries.data).toHaveLength(6);
    // The two deliveries' attempts interleave in time; of each, the newest ones are kept: its last
    // (failed) attempt and an unbroken run of the ones before it.
    const byDelivery = new Map<string, number[]>();
    for (const e of entries.data as { delivery_id: string; attempt: number }[])
      byDelivery.set(e.delivery_id, [...(byDelivery.get(e.delivery_id) ?? []), e.attempt]);
    expect(byDelivery.size).toBe(2);
    for (const kept of byDelivery.values()) {
      const sorted = [...kept].sort((a, b) => a - b);
      expect(sorted.at(-1)).toBe(4);
      expect(sorted).toEqual(Array.from({ length: sorted.length }, (_, i) => 4 - sorted.length + 1 + i));
    }
  });

  it('fires freshness.breached once, recovered after a successful sync; ?stale lists it; the metric reports it', async () => {
    const url = receiver.script('/freshness', []);
    const sub = await subscribe(url, ['freshness.breached', 'freshness.recovered']);
    const stale = (
      await api.post('/raw-data-sources', sourceBody({ records: 1 }, { freshness_target_seconds: 60 }))
    ).body;
    const fresh = (
      await api.post('/raw-data-sources', sourceBody({ records: 1 }, { freshness_target_seconds: 3600 }))
    ).body;
    const unwatched = (await api.post('/raw-data-sources', sourceBody({ records: 1 }))).body;
    // Never synced and created two hours ago (behind the API's back): over its 60 s target.
    await api
      .knex('raw_data_sources')
      .whereIn('id', [stale.id, unwatched.id])
      .update({ created_at: new Date(Date.now() - 7200_000) });

    const breachedEvents = () =>
      streamEvents().then((all) =>
        all.filter((e) => e.type === 'freshness.breached' && e.source_id === stale.id),
      );
    // The worker's timer finds it.
    await until(breachedEvents, (e) => e.length === 1);
    // Further passes do not fire again.
    expect(await api.container.freshness.check()).toMatchObject({ breached: [] });
    expect(await api.container.freshness.check()).toMatchObject({ breached: [] });
    expect(await breachedEvents()).toHaveLength(1);
    const [breach] = await until(
      () => receiver.at('/freshness'),
      (r) => r.length >= 1,
    );
    expect(JSON.parse(breach!.body)).toMatchObject({
      type: 'freshness.breached',
      source_id: stale.id,
      data: { freshness_target_seconds: 60, last_success_at: null },
    });
    expect(verifyDelivery(SIGNING_SECRET, breach!.body, String(breach!.headers['sluice-signature']))).toBe(
      true,
    );

    const ids = async (query: string) =>
      ((await api.get(`/raw-data-sources?limit=100${query}`)).body.data as { id: string }[]).map((s) => s.id);
    expect(await ids('&stale=true')).toEqual([stale.id]);
    expect((await api.get('/raw-data-sources?stale=true')).body.pagination.total).toBe(1);
    const notStale = await ids('&stale=false');
    expect(notStale).toEqual(expect.arrayContaining([fresh.id, unwatched.id]));
    expect(notStale).not.toContain(stale.id);
    expect(await ids('&stale=true&type=database&active=true')).toEqual([stale.id]);
    expectInvalid(await api.get('/raw-data-sources?stale=maybe'), 'stale');

    const metrics = (await api.get('/metrics')).text;
    const series = (id: string) =>
      metrics.split('\n').find((l) => l.startsWith(`sluice_source_staleness_seconds{source_id="${id}"}`));
    const seconds = Number(series(stale.id)?.split(' ')[1]);
    expect(seconds).toBeGreaterThanOrEqual(7200);
    expect(seconds).toBeLessThan(7200 + 600);
    expect(Number(series(fresh.id)?.split(' ')[1])).toBeLessThan(600);
    // No target, no series.
    expect(series(unwatched.id)).toBeUndefined();

    // A successful sync ends the breach: recovered, once.
    expect((await api.post(`/raw-data-sources/${stale.id}/sync`)).status).toBe(202);
    const recovered = await until(
      () =>
        streamEvents().then((all) =>
          all.filter((e) => e.type === 'freshness.recovered' && e.source_id === stale.id),
        ),
      (e) => e.length === 1,
    );
    expect(recovered[0]!.data).toMatchObject({ reason: 'synced', freshness_target_seconds: 60 });
    expect(await ids('&stale=true')).toEqual([]);
    await until(
      () => receiver.at('/freshness'),
      (r) => r.length >= 2,
    );
    expect(JSON.parse(receiver.at('/freshness')[1]!.body)).toMatchObject({
      type: 'freshness.recovered',
      source_id: stale.id,
    });
    const after = Number(
      (await api.get('/metrics')).text
        .split('\n')
        .find((l) => l.startsWith(`sluice_source_staleness_seconds{source_id="${stale.id}"}`))
        ?.split(' ')[1],
    );
    expect(after).toBeLessThan(600);
    // The receiver answers before the dispatcher writes the delivery row: wait for the row.
    const types = await until(
      async () => (await log(sub.id)).data.map((e: { event_type: string }) => e.event_type),
      (t: string[]) => t.length >= 2,
    );
    expect(types).toEqual(['freshness.recovered', 'freshness.breached']);
  });
});

const r0 = (r: Receipt[]) => r[0]!;
