import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, untilJobDone, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';
import { until } from '../helpers/until';

const SECRET = 'Orchestr8-Secret-Pw';
let seq = 0;
const body = (metadata: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  name: `sync-${process.pid}-${++seq}`,
  source_type: 'database',
  connection_string: `postgres://loader:${SECRET}@127.0.0.1:5432/warehouse`,
  metadata,
  ...extra,
});

describe('sync orchestration', () => {
  let api: TestApi;
  const connector = new ScriptedConnector('database');
  beforeAll(async () => {
    api = await startTestApi({
      connectors: [connector, new ScriptedConnector('api')],
      env: { SYNC_ATTEMPTS: '2', TEST_WAIT_MS: '5000' },
    });
    await api.startWorker();
  });
  afterAll(() => api.close());

  const source = async (id: string) => (await api.get(`/raw-data-sources/${id}`)).body;
  /** The source's last sync is over, its job included (see untilJobDone): the source then. */
  const finished = async (id: string) => {
    await until(
      () => source(id),
      (s) => s.sync_status === 'success' || s.sync_status === 'failed',
    );
    const [last] = (await api.get(`/raw-data-sources/${id}/runs`)).body.data as { job_id: string }[];
    await untilJobDone(api, last!.job_id);
    return source(id);
  };

  it('a manual sync lands the records, moves the status and records the run', async () => {
    const created = (await api.post('/raw-data-sources', body({ records: 5, batch: 2 }))).body;
    const res = await api.post(`/raw-data-sources/${created.id}/sync`);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'queued', run_id: res.body.job_id });
    const done = await finished(created.id);
    expect(done.sync_status).toBe('success');
    expect(done.last_sync_at).not.toBeNull();
    const runs = (await api.get(`/raw-data-sources/${created.id}/runs`)).body;
    expect(runs.pagination.total).toBe(1);
    expect(runs.data[0]).toMatchObject({
      status: 'success',
      trigger: 'manual',
      attempt: 1,
      records: 5,
      invalid: 0,
    });
    expect(runs.data[0].bytes).toBeGreaterThan(0);
    const landed = await api.knex('raw_records').where({ source_id: created.id }).count({ n: '*' }).first();
    expect(Number(landed?.n)).toBe(5);
    const job = (await api.get(`/jobs/${res.body.job_id}`)).body;
    expect(job).toMatchObject({ id: res.body.job_id, queue: 'sync', state: 'completed' });
    expect(JSON.stringify(job)).not.toContain(SECRET);
  });

  it('a second sync resumes from the stored state and lands only what is new', async () => {
    const created = (await api.post('/raw-data-sources', body({ records: 4 }))).body;
    await api.post(`/raw-data-sources/${created.id}/sync`);
    await finished(created.id);
    await api.put(`/raw-data-sources/${created.id}`, { metadata: { records: 6 } });
    const second = (await api.post(`/raw-data-sources/${created.id}/sync`)).body;
    await until(
      async () => (await api.get(`/raw-data-sources/${created.id}/runs`)).body.data[0],
      (r) => r.id === second.run_id && r.status === 'success',
    );
    const runs = (await api.get(`/raw-data-sources/${created.id}/runs`)).body.data;
    expect(runs.map((r: { records: number }) => r.records)).toEqual([2, 4]);
  });

  it('double-clicked sync gives one run', async () => {
    const created = (await api.post('/raw-data-sources', body({ records: 2, delay_ms: 200 }))).body;
    const results = await Promise.all(
      Array.from({ length: 5 }, () => api.post(`/raw-data-sources/${created.id}/sync`)),
    );
    expect(results.map((r) => r.status)).toEqual([202, 202, 202, 202, 202]);
    expect(new Set(results.map((r) => r.body.run_id)).size).toBe(1);
    await finished(created.id);
    expect((await api.get(`/raw-data-sources/${created.id}/runs`)).body.pagination.total).toBe(1);
  });

  it('an inactive source cannot be synced (409); an unknown one is a 404', async () => {
    const created = (await api.post('/raw-data-sources', body({}, { is_active: false }))).body;
    expect((await api.post(`/raw-data-sources/${created.id}/sync`)).status).toBe(409);
    expect((await api.post('/raw-data-sources/00000000-0000-4000-8000-000000000000/sync')).status).toBe(404);
  });

  it('a permanent error fails at once, with a message that does not leak the secret', async () => {
    const created = (await api.post('/raw-data-sources', body({ fail: 'permanent' }))).body;
    await api.post(`/raw-data-sources/${created.id}/sync`);
    const done = await finished(created.id);
    expect(done.sync_status).toBe('failed');
    expect(done.error_message).toContain('bad credentials');
    expect(done.error_message).not.toContain(SECRET);
    const run = (await api.get(`/raw-data-sources/${created.id}/runs`)).body.data[0];
    expect(run).toMatchObject({ status: 'failed', attempt: 1 });
  });

  it('a transient error is retried and then succeeds', async () => {
    const created = (await api.post('/raw-data-sources', body({ fail: 'transient-once', records: 3 }))).body;
    await api.post(`/raw-data-sources/${created.id}/sync`);
    await until(
      async () => (await api.get(`/raw-data-sources/${created.id}/runs`)).body.data[0],
      (r) => r?.status === 'success',
      20000,
    );
    const run = (await api.get(`/raw-data-sources/${created.id}/runs`)).body.data[0];
    expect(run).toMatchObject({ status: 'success', attempt: 2, records: 3 });
  });

  it('a source without a source_type fails its job with a clear error, not a fake success', async () => {
    const created = (await api.post('/raw-data-sources', body({}, { source_type: null }))).body;
    await api.post(`/raw-data-sources/${created.id}/sync`);
    const done = await finished(created.id);
    expect(done).toMatchObject({ sync_status: 'failed' });
    expect(done.error_message).toContain('no source_type');
  });

  it('test-connection runs as a job and answers with its steps', async () => {
    const ok = (await api.post('/raw-data-sources', body())).body;
    const res = await api.post(`/raw-data-sources/${ok.id}/test`);
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(true);
    expect(res.body.steps.map((s: { name: string }) => s.name)).toEqual(['configuration', 'connect']);
    const bad = (await api.post('/raw-data-sources', body({}, { source_type: null }))).body;
    const failed = await api.post(`/raw-data-sources/${bad.id}/test`);
    expect(failed.body).toMatchObject({ ok: false, steps: [{ status: 'failed', code: 'not_implemented' }] });
  });

  it('sync-all queues every active idle source and skips busy and inactive ones', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await api.post('/raw-data-sources', body({ records: 1 }))).body.id);
    await api.post('/raw-data-sources', body({}, { is_active: false }));
    const res = await api.post('/raw-data-sources/sync-all');
    expect(res.status).toBe(202);
    expect(res.body.queued).toBeGreaterThanOrEqual(3);
    for (const id of ids) {
      const run = await until(
        async () => (await api.get(`/raw-data-sources/${id}/runs`)).body.data[0],
        (r) => r?.status === 'success',
      );
      expect(run.trigger).toBe('sync_all');
    }
    const fanOut = await until(
      async () => (await api.get(`/jobs/${res.body.batch_id}`)).body,
      (j) => j.state === 'completed',
    );
    expect(fanOut.result.queued).toBe(res.body.queued);
  });

  it('a sync-all the API refused (503) does nothing when Redis takes its job late', async () => {
    const id = (await api.post('/raw-data-sources', body({ records: 1 }))).body.id as string;
    const { runs } = api.container.lifecycle;
    // What a frozen Redis does: the API's enqueue timed out (503, batch cancelled), then Redis woke
    // up and ran the add that was still in the socket.
    const batchId = randomUUID();
    await runs.openBatch(batchId);
    await runs.cancelBatch(batchId);
    await api.container.queues.syncAll.add('sync-all', { batchId }, { jobId: batchId });
    const fanOut = await until(
      async () => (await api.get(`/jobs/${batchId}`)).body,
      (j) => j.state === 'completed',
    );
    expect(fanOut.result).toEqual({ batch_id: batchId, queued: 0, cancelled: true });
    expect((await api.get(`/raw-data-sources/${id}/runs`)).body.data).toEqual([]);
  });

  it('publishes the lifecycle to the event stream without secrets', async () => {
    const created = (await api.post('/raw-data-sources', body({ records: 1 }))).body;
    await api.post(`/raw-data-sources/${created.id}/sync`);
    await finished(created.id);
    // The run row (and the source's status) is closed before sync.succeeded is published
    // (runs/run-lifecycle.ts): wait for the last event, then compare the whole sequence.
    const mineOf = (entries: [string, string[]][]) => entries.filter(([, f]) => f.includes(created.id));
    const typeOf = ([, f]: [string, string[]]) => f[f.indexOf('type') + 1];
    const entries = await until(
      () => api.container.redis.xrange(api.container.events.key, '-', '+'),
      (all) => mineOf(all).some((e) => typeOf(e) === 'sync.succeeded' || typeOf(e) === 'sync.failed'),
    );
    const types = mineOf(entries).map(typeOf);
    expect(types).toEqual(['source.created', 'sync.queued', 'sync.started', 'sync.succeeded']);
    expect(JSON.stringify(entries)).not.toContain(SECRET);
  });

  it('deleting a source removes its schedule', async () => {
    const created = (await api.post('/raw-data-sources', body())).body;
    const scheduler = () => api.container.queues.sync.getJobScheduler(`source-${created.id}`);
    expect((await scheduler())?.every).toBe(3600_000);
    await api.put(`/raw-data-sources/${created.id}`, { refresh_interval: 120 });
    expect((await scheduler())?.every).toBe(120_000);
    await api.del(`/raw-data-sources/${created.id}`);
    expect(await scheduler()).toBeUndefined();
  });
});
