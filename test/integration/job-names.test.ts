import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';
import { SYNC_JOB_NAME_MAX_BYTES, syncJobName } from '../../src/queue/queue-names';
import { until } from '../helpers/until';

/** Jobs and scheduler templates carry the source's name (the dashboard lists them by it); ids stay ids. */
describe('job names on the dashboard', () => {
  let api: TestApi;
  let seq = 0;
  const create = async (name = `names-${process.pid}-${++seq}`, extra: Record<string, unknown> = {}) => {
    const res = await api.post('/raw-data-sources', {
      name,
      source_type: 'database',
      connection_string: 'postgres://loader:pw@127.0.0.1:5432/warehouse',
      metadata: { records: 1 },
      ...extra,
    });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; name: string };
  };
  beforeAll(async () => {
    api = await startTestApi({ connectors: [new ScriptedConnector('database')] });
  });
  afterAll(() => api.close());

  it('a manual sync job is named after its source; its id is still the run id', async () => {
    const source = await create('orders-db');
    const queued = (await api.post(`/raw-data-sources/${source.id}/sync`)).body;
    expect(queued.job_id).toBe(queued.run_id);
    const job = await api.container.queues.sync.getJob(queued.job_id);
    expect(job).toMatchObject({ id: queued.run_id, name: 'sync: orders-db' });
    expect((await api.get(`/jobs/${queued.job_id}`)).body).toMatchObject({ name: 'sync: orders-db' });
    // The dedup key is still per source id: a second request gets the same run.
    const again = (await api.post(`/raw-data-sources/${source.id}/sync`)).body;
    expect(again.run_id).toBe(queued.run_id);
  });

  it('a scheduler keeps its id and names its template; a rename renames it without moving the tick', async () => {
    const source = await create('pg-orders');
    const queue = api.container.queues.sync;
    const before = await queue.getJobScheduler(`source-${source.id}`);
    expect(before).toMatchObject({ key: `source-${source.id}`, name: 'sync: pg-orders' });
    const renamed = await api.put(`/raw-data-sources/${source.id}`, { name: 'pg-orders-eu' });
    expect(renamed.status, renamed.text).toBe(200);
    const after = await queue.getJobScheduler(`source-${source.id}`);
    expect(after).toMatchObject({ key: `source-${source.id}`, name: 'sync: pg-orders-eu' });
    expect(after!.next).toBe(before!.next);
  });

  it('reconcile renames templates written before names (or under an old name)', async () => {
    const source = await create();
    const queue = api.container.queues.sync;
    await queue.upsertJobScheduler(
      `source-${source.id}`,
      { every: 3_600_000 },
      { name: 'sync', data: { sourceId: source.id }, opts: { attempts: api.container.config.syncAttempts } },
    );
    const report = await api.container.schedules.reconcile(api.container.sourceStore);
    expect(report.upserted).toBeGreaterThanOrEqual(1);
    expect(await queue.getJobScheduler(`source-${source.id}`)).toMatchObject({
      name: `sync: ${source.name}`,
    });
    // Up to date now: a second reconcile writes nothing.
    expect((await api.container.schedules.reconcile(api.container.sourceStore)).upserted).toBe(0);
  });

  it('a long name is cut to whole characters within a compact hash value', async () => {
    const long = `${'é'.repeat(40)}-source`;
    expect(Buffer.byteLength(syncJobName(long))).toBeLessThanOrEqual(SYNC_JOB_NAME_MAX_BYTES);
    expect(syncJobName(long)).toBe(`sync: ${'é'.repeat(29)}`);
    const source = await create(long);
    const stored = await api.container.redis.hgetall(
      api.container.queues.sync.toKey(`repeat:source-${source.id}`),
    );
    for (const [field, value] of Object.entries(stored))
      expect(Buffer.byteLength(value), field).toBeLessThanOrEqual(SYNC_JOB_NAME_MAX_BYTES);
    expect(stored.name).toBe(syncJobName(long));
  });

  it('sync-all names each job after its source', async () => {
    const a = await create('fan-out-a');
    const b = await create('fan-out-b');
    await api.startWorker();
    const accepted = (await api.post('/raw-data-sources/sync-all')).body;
    const runs = await until(
      () =>
        api
          .knex('sync_runs')
          .where({ batch_id: accepted.batch_id })
          .whereIn('source_id', [a.id, b.id])
          .select('id', 'source_id'),
      (rows) => rows.length === 2,
    );
    // The fan-out opens the page's runs before it enqueues their jobs: wait for the jobs too.
    const names = await until(
      async () => {
        const byId = new Map<string, string | undefined>();
        for (const run of runs)
          byId.set(run.source_id, (await api.container.queues.sync.getJob(run.id))?.name);
        return byId;
      },
      (byId) => [...byId.values()].every((name) => name !== undefined),
    );
    expect(names.get(a.id)).toBe('sync: fan-out-a');
    expect(names.get(b.id)).toBe('sync: fan-out-b');
  });
});
