import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connector, ConnectorContext, ConnectorSource, SyncBatch } from '../../src/connectors/connector';
import { StreamConnector } from '../../src/connectors/stream/stream.connector';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { uniqueSuffix } from '../helpers/test-env';
import { startTcpForward } from './support/tcp-forward';
import { until } from '../helpers/until';

const SECRET = 'Api-Str3am-Pw';
const suffix = uniqueSuffix();
const redisKey = `sluice:test:stream-api:${suffix}`;
const natsStream = `sluice_test_api_${suffix}`;

/**
 * The real stream connector, except that a source whose metadata says `crash_once` dies after its
 * first batch has landed, once: what a worker killed mid-sync looks like to the run's next attempt.
 */
class CrashOnceStreamConnector implements Connector {
  private readonly inner = new StreamConnector();
  readonly type = this.inner.type;
  readonly metadataSchema = this.inner.metadataSchema;
  private readonly crashed = new Set<string>();

  checkConnectionString(value: string): string | undefined {
    return this.inner.checkConnectionString(value);
  }

  test(source: ConnectorSource, ctx: ConnectorContext) {
    return this.inner.test(source, ctx);
  }

  async *sync(source: ConnectorSource, state: unknown, ctx: ConnectorContext): AsyncGenerator<SyncBatch> {
    let batches = 0;
    for await (const batch of this.inner.sync(source, state, ctx)) {
      if (source.metadata?.crash_once && batches === 1 && !this.crashed.has(source.id)) {
        this.crashed.add(source.id);
        throw new Error('worker died between batches');
      }
      batches += 1;
      yield batch;
    }
  }
}

describe('stream sources through the API and a worker', () => {
  let api: TestApi;
  let redis: Redis;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  // The shared Redis is Sluice's own Redis here, which the worker refuses as a source: stream
  // sources read it through a forwarder on another loopback port instead.
  let redisForward: { port: number; close(): Promise<void> };
  const viaForward = () => `127.0.0.1:${redisForward.port}`;

  beforeAll(async () => {
    redis = new Redis({ host: '127.0.0.1', port: 6379, db: 0 });
    nc = await connect({ servers: '127.0.0.1:4222' });
    jsm = await jetstreamManager(nc);
    redisForward = await startTcpForward(6379);
    await jsm.streams.add({ name: natsStream, subjects: [`${natsStream}.>`] });
    api = await startTestApi({
      connectors: [new CrashOnceStreamConnector()],
      env: { SYNC_ATTEMPTS: '3', TEST_WAIT_MS: '10000' },
    });
    await api.startWorker();
  });
  afterAll(async () => {
    await api?.close();
    await redisForward?.close();
    await redis?.del(redisKey, `${redisKey}:crash`);
    redis?.disconnect();
    await jsm?.streams.delete(natsStream).catch(() => undefined);
    await nc?.close();
  });

  const createSource = async (connection_string: string, metadata: Record<string, unknown>) => {
    const res = await api.post('/raw-data-sources', {
      name: `stream-${suffix}-${Math.random().toString(36).slice(2, 8)}`,
      source_type: 'stream',
      connection_string,
      metadata,
    });
    expect(res.status, res.text).toBe(201);
    return res.body.id as string;
  };

  /** Runs one sync to its end and returns the records landed by that run. */
  const syncOnce = async (id: string) => {
    const queued = await api.post(`/raw-data-sources/${id}/sync`);
    expect(queued.status, queued.text).toBe(202);
    const run = await until(
      async () =>
        (await api.get(`/raw-data-sources/${id}/runs`)).body.data.find(
          (r: { id: string }) => r.id === queued.body.run_id,
        ),
      (r) => r?.status === 'success' || r?.status === 'failed',
    );
    expect(run.status, JSON.stringify(run)).toBe('success');
    const rows = await api.knex('raw_records').where({ run_id: run.id }).orderBy('id').select('payload');
    return { run, payloads: rows.map((r: { payload: unknown }) => r.payload) };
  };

  it('rejects stream metadata and connection strings it cannot use (400)', async () => {
    const res = await api.post('/raw-data-sources', {
      name: `stream-bad-${suffix}`,
      source_type: 'stream',
      connection_string: `amqp://u:${SECRET}@127.0.0.1:5672`,
      metadata: { batch: 0 },
    });
    expect(res.status).toBe(400);
    const pointers = res.body.errors.map((e: { pointer: string }) => e.pointer);
    expect(pointers).toEqual(
      expect.arrayContaining(['/metadata/stream', '/metadata/batch', '/connection_string']),
    );
    expect(res.text).not.toContain(SECRET);
  });

  it('a Redis stream source: test passes, sync lands the entries, a second sync only the new ones', async () => {
    for (let i = 0; i < 5; i++) await redis.xadd(redisKey, '*', 'n', String(i), 'kind', 'order');
    const id = await createSource(`redis://${viaForward()}/0`, { stream: redisKey, batch: 2 });
    const tested = await api.post(`/raw-data-sources/${id}/test`);
    expect(tested.status, tested.text).toBe(200);
    expect(tested.body.ok, tested.text).toBe(true);
    expect(tested.body.steps.map((s: { name: string }) => s.name)).toEqual([
      'configuration',
      'resolve',
      'connect',
      'authenticate',
      'stream',
      'read_sample',
    ]);

    const first = await syncOnce(id);
    expect(first.run.records).toBe(5);
    expect(first.payloads).toEqual([0, 1, 2, 3, 4].map((n) => ({ n: String(n), kind: 'order' })));

    for (let i = 5; i < 8; i++) await redis.xadd(redisKey, '*', 'n', String(i), 'kind', 'order');
    const second = await syncOnce(id);
    expect(second.payloads).toEqual([5, 6, 7].map((n) => ({ n: String(n), kind: 'order' })));
    const total = await api.knex('raw_records').where({ source_id: id }).count({ n: '*' }).first();
    expect(Number(total?.n)).toBe(8);
  });

  it('a sync that dies after a landed batch is retried from its state: every entry lands once', async () => {
    const key = `${redisKey}:crash`;
    for (let i = 0; i < 7; i++) await redis.xadd(key, '*', 'n', String(i));
    const id = await createSource(`redis://${viaForward()}/0`, { stream: key, batch: 3, crash_once: true });
    const { run } = await syncOnce(id);
    expect(run.attempt).toBe(2);
    const rows = await api.knex('raw_records').where({ source_id: id }).orderBy('id').select('payload');
    expect(rows.map((r: { payload: { n: string } }) => Number(r.payload.n))).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(run.records).toBe(7);
  });

  it('a NATS JetStream source: test passes, sync lands the messages, a second sync only the new ones', async () => {
    const js = jetstream(nc);
    for (let i = 0; i < 4; i++) await js.publish(`${natsStream}.orders`, JSON.stringify({ n: i }));
    await js.publish(`${natsStream}.audit`, JSON.stringify({ n: 'ignored' }));
    const id = await createSource('nats://127.0.0.1:4222', {
      stream: natsStream,
      subject: `${natsStream}.orders`,
    });
    const tested = await api.post(`/raw-data-sources/${id}/test`);
    expect(tested.body.ok, tested.text).toBe(true);

    const first = await syncOnce(id);
    expect(first.payloads).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }]);
    for (let i = 4; i < 6; i++) await js.publish(`${natsStream}.orders`, JSON.stringify({ n: i }));
    const second = await syncOnce(id);
    expect(second.payloads).toEqual([{ n: 4 }, { n: 5 }]);
    const state = await api.knex('source_sync_state').where({ source_id: id }).first();
    expect(state.state).toEqual({ last_seq: 7 });
  });

  it('a wrong password is a failed authenticate step, with no secret in the answer', async () => {
    const id = await createSource(`redis://:${SECRET}@${viaForward()}/0`, { stream: redisKey });
    const tested = await api.post(`/raw-data-sources/${id}/test`);
    expect(tested.body.ok).toBe(false);
    // The shared Redis has no password: AUTH is refused, which is an auth failure too.
    expect(tested.body.steps.find((s: { name: string }) => s.name === 'authenticate')).toMatchObject({
      status: 'failed',
      code: 'auth',
    });
    expect(tested.text).not.toContain(SECRET);
  });
});
