import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Landing } from '../../src/runs/landing';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { until } from '../helpers/until';

/** Waits for a real condition, bounded (no timing assertion). */
describe('DELETE /raw-data-sources/{id}: never destroys data silently', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await startTestApi({ env: { PURGE_BATCH_SIZE: '100', PURGE_PAUSE_MS: '20', TEST_WAIT_MS: '0' } });
    await api.startWorker();
  });
  afterAll(() => api?.close());

  const createSource = async (name: string): Promise<string> => {
    const res = await api.post('/raw-data-sources', {
      name: `${name}-${randomUUID().slice(0, 8)}`,
      source_type: 'database',
      connection_string: 'postgres://reader:pw@127.0.0.1:5432/warehouse',
      metadata: { table: 'events' },
    });
    expect(res.status, res.text).toBe(201);
    return res.body.id as string;
  };
  /** A finished run with `records` landed and `quarantined` records in quarantine. */
  const landData = async (sourceId: string, records: number, quarantined: number): Promise<string> => {
    const runId = randomUUID();
    await api
      .knex('sync_runs')
      .insert({ id: runId, source_id: sourceId, trigger: 'manual', status: 'success' });
    await api.knex.raw(
      `INSERT INTO raw_records (source_id, run_id, payload)
       SELECT ?, ?, jsonb_build_object('n', g) FROM generate_series(1, ?::int) g`,
      [sourceId, runId, records],
    );
    await api.knex.raw(
      `INSERT INTO quarantined_records (source_id, run_id, payload, errors)
       SELECT ?, ?, jsonb_build_object('n', g), '[]'::jsonb FROM generate_series(1, ?::int) g`,
      [sourceId, runId, quarantined],
    );
    return runId;
  };
  const counts = async (sourceId: string) => ({
    records: Number((await api.knex('raw_records').where({ source_id: sourceId }).count({ n: '*' }))[0]!.n),
    quarantined: Number(
      (await api.knex('quarantined_records').where({ source_id: sourceId }).count({ n: '*' }))[0]!.n,
    ),
    runs: Number((await api.knex('sync_runs').where({ source_id: sourceId }).count({ n: '*' }))[0]!.n),
  });

  it('a source with landed data answers 409 with the counts and how to purge; nothing is removed', async () => {
    const id = await createSource('kept');
    await landData(id, 1000, 3);
    const res = await api.del(`/raw-data-sources/${id}`);
    expect(res.status, res.text).toBe(409);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body).toMatchObject({
      type: '/problems/conflict',
      status: 409,
      landed_records: 1000,
      quarantined_records: 3,
      runs: 1,
      purge: `DELETE /raw-data-sources/${id}?purge=true`,
    });
    expect(res.body.detail).toContain('?purge=true');
    expect((await api.get(`/raw-data-sources/${id}`)).status).toBe(200);
    expect(await counts(id)).toEqual({ records: 1000, quarantined: 3, runs: 1 });
    expect(await api.knex('source_purges').where({ source_id: id }).first()).toBeUndefined();
  });

  it('a bad purge value is a 400 naming the parameter', async () => {
    const id = await createSource('bad-purge');
    const res = await api.del(`/raw-data-sources/${id}?purge=yes`);
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ pointer: 'purge', in: 'query', message: 'must be true or false' }]);
  });

  it('?purge=true deletes the source at once and the worker removes its data in batches while other sources keep landing', async () => {
    const doomed = await createSource('purged');
    await landData(doomed, 3000, 250);
    const other = await createSource('other');
    const otherKept = await landData(other, 500, 2);

    const res = await api.del(`/raw-data-sources/${doomed}?purge=true`);
    expect(res.status, res.text).toBe(204);
    expect((await api.get(`/raw-data-sources/${doomed}`)).status).toBe(404);
    // Runs go with the source (a few rows); the records are the background job's.
    expect((await counts(doomed)).runs).toBe(0);

    // Another source lands batches while the purge is under way, through the real landing.
    const landing = new Landing(api.knex);
    const runId = randomUUID();
    await api
      .knex('sync_runs')
      .insert({ id: runId, source_id: other, trigger: 'manual', status: 'running', attempt: 1 });
    let landedWhilePurging = 0;
    for (let i = 0; i < 20; i++) {
      await landing.land(other, runId, { records: [{ i }, { i: i + 0.5 }] }, 1);
      const purge = await api.knex('source_purges').where({ source_id: doomed }).first();
      if (purge && !purge.finished_at) landedWhilePurging++;
    }
    expect(landedWhilePurging).toBeGreaterThan(0);

    const purge = await until(
      () => api.knex('source_purges').where({ source_id: doomed }).first(),
      (row) => Boolean(row?.finished_at),
    );
    expect(purge).toMatchObject({ records_removed: 3000, quarantined_removed: 250 });
    expect(await counts(doomed)).toEqual({ records: 0, quarantined: 0, runs: 0 });
    const [job] = await api.container.queues.purge.getCompleted();
    expect(job?.returnvalue).toMatchObject({ records: 3000, quarantined: 250 });
    // 100 rows a statement: the purge took many small batches, never one big DELETE.
    expect(job?.returnvalue.batches).toBeGreaterThanOrEqual(30);

    // The other source: everything it had, plus what it landed meanwhile.
    expect(await counts(other)).toEqual({ records: 540, quarantined: 2, runs: 2 });
    expect(await api.knex('raw_records').where({ run_id: otherKept }).count({ n: '*' })).toEqual([
      { n: 500 },
    ]);

    // The audit row says what went.
    const audit = await api.knex('audit_log').where({ action: 'source.delete', target_id: doomed }).first();
    expect(audit).toMatchObject({ outcome: 'success', status: 204 });
    expect(audit.detail).toMatchObject({
      purge: true,
      landed_records: 3000,
      quarantined_records: 250,
      runs: 1,
    });
  });

  it('a source with no landed data is deleted with 204 as before', async () => {
    const id = await createSource('empty');
    const res = await api.del(`/raw-data-sources/${id}`);
    expect(res.status, res.text).toBe(204);
    expect((await api.get(`/raw-data-sources/${id}`)).status).toBe(404);
    // A purge is still recorded: it sweeps records a sync in flight may have landed meanwhile.
    await until(
      () => api.knex('source_purges').where({ source_id: id }).first(),
      (row) => Boolean(row?.finished_at),
    );
    const audit = await api.knex('audit_log').where({ action: 'source.delete', target_id: id }).first();
    expect(audit.detail).toMatchObject({ purge: false, landed_records: 0 });
  });

  it('a purge recorded but never queued (Redis lost it) is finished by the repair; one whose source still exists is dropped', async () => {
    const gone = randomUUID();
    const runId = randomUUID();
    const alive = await createSource('alive');
    await landData(alive, 10, 0);
    // Orphans of a deleted source (no foreign key any more) and a purge row with no job.
    await api.knex('source_purges').insert([{ source_id: gone }, { source_id: alive }]);
    await api.knex.raw(
      `INSERT INTO raw_records (source_id, run_id, payload) SELECT ?, ?, '{}'::jsonb FROM generate_series(1, 250)`,
      [gone, runId],
    );
    const worker = await api.startWorker();
    await worker.repair();
    await until(
      () => api.knex('source_purges').where({ source_id: gone }).first(),
      (row) => Boolean(row?.finished_at),
    );
    expect((await counts(gone)).records).toBe(0);
    await until(
      () => api.knex('source_purges').where({ source_id: alive }).first(),
      (row) => row === undefined,
    );
    expect((await counts(alive)).records).toBe(10);
  });

  it('documents the purge parameter and the 409 in the OpenAPI', async () => {
    const doc = (await api.get('/openapi.json')).body;
    const del = doc.paths['/raw-data-sources/{id}'].delete;
    expect(del.parameters.map((p: { name: string }) => p.name)).toEqual(['id', 'purge']);
    expect(del.responses['409'].description).toContain('landed_records');
    expect(del.responses['204']).toBeDefined();
  });
});
