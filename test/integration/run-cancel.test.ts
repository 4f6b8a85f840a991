import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';

/**
 * The cancel transition in Postgres (SyncRunRepository.cancelActive through RunLifecycle.cancel)
 * and the repair of a source left `syncing`: what status a source returns to, against real
 * Postgres. The processes, the worker's stop and the dashboard are test/process/cancel.test.ts.
 */
describe('cancelling a run: the source returns to its status before the run', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(() => api?.close());

  const runs = () => api.container.runs;
  const source = async (sourceId: string) =>
    (await api
      .knex('raw_data_sources')
      .select('sync_status', 'error_message')
      .where({ id: sourceId })
      .first()) as {
      sync_status: string;
      error_message: string | null;
    };

  async function createSource(name: string): Promise<string> {
    const created = await api.post('/raw-data-sources', { name, source_type: 'api' });
    expect(created.status, created.text).toBe(201);
    return created.body.id as string;
  }

  /** A run of `sourceId` moved to running (the source → syncing). */
  async function running(sourceId: string): Promise<string> {
    const id = randomUUID();
    await runs().createQueued({ id, sourceId, trigger: 'manual' });
    expect(await runs().start(id, 1)).toBeDefined();
    return id;
  }

  it('after a failed run: failed again, with that run’s error; a second cancel is a no-op', async () => {
    const sourceId = await createSource(`after-failed-${process.pid}`);
    const failed = await running(sourceId);
    await api.container.lifecycle.fail(failed, 'boom: the peer refused', { attempt: 1 });
    const runId = await running(sourceId);
    expect((await source(sourceId)).sync_status).toBe('syncing');

    const cancelled = await api.container.lifecycle.cancel(runId, 'asked');
    expect(cancelled).toMatchObject({ id: runId, status: 'cancelled', error: 'asked' });
    expect(await source(sourceId)).toEqual({
      sync_status: 'failed',
      error_message: 'boom: the peer refused',
    });
    expect(await api.container.lifecycle.cancel(runId, 'again')).toBeUndefined();
    expect((await runs().get(runId))?.error).toBe('asked');
  });

  it('a finished run cannot be cancelled (the API answers 409)', async () => {
    const sourceId = await createSource(`finished-${process.pid}`);
    const runId = await running(sourceId);
    await runs().succeed(runId, undefined, 1);
    expect(await api.container.lifecycle.cancel(runId, 'late')).toBeUndefined();
    expect((await runs().get(runId))?.status).toBe('success');
    const res = await api.post(`/raw-data-sources/${sourceId}/cancel`);
    expect(res.status, res.text).toBe(409);
    expect(res.body).toMatchObject({ reason: 'no_active_run', sync_status: 'success' });
  });

  it('repair: a source left syncing by a run its start cancelled (deactivated meanwhile) goes back, not to failed', async () => {
    const sourceId = await createSource(`start-cancelled-${process.pid}`);
    const ok = await running(sourceId);
    await runs().succeed(ok, undefined, 1);
    // A retry attempt of a running run whose source was deactivated before the retry started.
    const runId = await running(sourceId);
    await api.knex('raw_data_sources').update({ is_active: false }).where({ id: sourceId });
    expect(await runs().start(runId, 2)).toBeUndefined();
    expect((await runs().get(runId))?.status).toBe('cancelled');
    expect((await source(sourceId)).sync_status).toBe('syncing');

    expect(await runs().repairOrphanedSyncing()).toContain(sourceId);
    expect(await source(sourceId)).toEqual({ sync_status: 'success', error_message: null });
  });

  it('repair: an interrupted source is failed, promising a next schedule only when it is active', async () => {
    const active = await createSource(`orphan-active-${process.pid}`);
    const inactive = await createSource(`orphan-inactive-${process.pid}`);
    await api.knex('raw_data_sources').update({ sync_status: 'syncing' }).whereIn('id', [active, inactive]);
    await api.knex('raw_data_sources').update({ is_active: false }).where({ id: inactive });
    const repaired = await runs().repairOrphanedSyncing();
    expect(repaired).toEqual(expect.arrayContaining([active, inactive]));
    expect(await source(active)).toEqual({
      sync_status: 'failed',
      error_message: 'sync was interrupted; it will run again at its next schedule',
    });
    expect(await source(inactive)).toEqual({
      sync_status: 'failed',
      error_message:
        'sync was interrupted; the source is inactive, so it will not run again until it is activated',
    });
  });

  it('OpenAPI declares the operation with its tag, description and responses', async () => {
    const doc = (await api.get('/openapi.json')).body;
    const op = doc.paths['/raw-data-sources/{id}/cancel'].post;
    expect(op.tags).toEqual(['Sync']);
    expect(op.description).toMatch(/cancelled/);
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '400', '404', '409', '500']));
    expect(doc.components.schemas.Event.properties.type.enum).toContain('sync.cancelled');
  });
});
