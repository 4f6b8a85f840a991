import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, untilJobDone, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';
import { until } from '../helpers/until';

let seq = 0;
const name = () => `modes-${process.pid}-${++seq}`;

describe('sync modes: append, snapshot, dedup', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ connectors: [new ScriptedConnector('database')] });
    await api.startWorker();
  });
  afterAll(() => api.close());

  const create = async (body: Record<string, unknown>) => {
    const res = await api.post('/raw-data-sources', { name: name(), source_type: 'database', ...body });
    expect(res.status).toBe(201);
    return res.body as { id: string; sync_mode: string };
  };
  /** The run once its job is over (see untilJobDone): the next sync of the source is then a new run. */
  const finished = async (id: string, runId: string) => {
    await untilJobDone(api, runId);
    return until(
      async () =>
        (await api.get(`/raw-data-sources/${id}/runs`)).body.data.find((r: { id: string }) => r.id === runId),
      (r) => r?.status === 'success' || r?.status === 'failed',
    );
  };
  const sync = async (id: string) => {
    const { run_id: runId } = (await api.post(`/raw-data-sources/${id}/sync`)).body as { run_id: string };
    return runId;
  };
  /** What a reader of the current snapshot sees: the raw records of the run source_snapshots points at. */
  const snapshotRows = (sourceId: string) =>
    api
      .knex('raw_records as r')
      .join('source_snapshots as s', 's.run_id', 'r.run_id')
      .where('s.source_id', sourceId)
      .orderBy('r.id')
      .select('r.payload', 'r.run_id');
  /** The current view as a user reads it: GET …/records?view=current, every page. */
  const currentViaApi = async (sourceId: string) => {
    const out: { payload: unknown; run_id: string }[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const res = await api.get(
        `/raw-data-sources/${sourceId}/records?view=current&limit=2${after ? `&after=${after}` : ''}`,
      );
      expect(res.status, res.text).toBe(200);
      out.push(...(res.body.data as { payload: unknown; run_id: string }[]));
      after = res.body.pagination.next_cursor ?? undefined;
      if (!after) return out;
    }
    throw new Error('more than 20 pages');
  };
  const current = async (sourceId: string) =>
    (
      (await api.knex('raw_current').where({ source_id: sourceId }).orderBy('record_key')) as {
        record_key: unknown;
        payload: Record<string, unknown>;
      }[]
    ).map((r) => [r.record_key, r.payload] as const);

  it('append is the default and keeps today’s behaviour', async () => {
    const source = await create({ metadata: { records: 3 } });
    expect(source.sync_mode).toBe('append');
    expect(await finished(source.id, await sync(source.id))).toMatchObject({ status: 'success', records: 3 });
    expect(await api.knex('source_snapshots').where({ source_id: source.id })).toEqual([]);
    expect(await api.knex('raw_current').where({ source_id: source.id })).toEqual([]);
  });

  it('snapshot: after 3 full refreshes the current snapshot is the latest complete run, and a reader during a refresh still sees the previous one', async () => {
    const rows = (v: number) => Array.from({ length: 6 }, (_, id) => ({ id, v }));
    const source = await create({
      sync_mode: 'snapshot',
      metadata: { full_refresh: true, rows: rows(1), batch: 2 },
    });
    const first = await sync(source.id);
    expect(await finished(source.id, first)).toMatchObject({ status: 'success', records: 6 });
    expect((await snapshotRows(source.id)).map((r) => r.payload)).toEqual(rows(1));

    await api.put(`/raw-data-sources/${source.id}`, {
      metadata: { full_refresh: true, rows: rows(2), batch: 2 },
    });
    const second = await sync(source.id);
    await finished(source.id, second);

    // The third refresh is slow: while its batches land, readers keep seeing the second, whole.
    await api.put(`/raw-data-sources/${source.id}`, {
      metadata: { full_refresh: true, rows: rows(3), batch: 2, delay_ms: 300 },
    });
    const third = await sync(source.id);
    await until(
      () => api.knex('raw_records').where({ run_id: third }).count({ c: '*' }).first(),
      (c) => Number(c?.c) > 0,
    );
    const during = await snapshotRows(source.id);
    expect(during.map((r) => r.payload)).toEqual(rows(2));
    expect((await currentViaApi(source.id)).map((r) => r.payload)).toEqual(rows(2));
    expect(new Set(during.map((r) => r.run_id))).toEqual(new Set([second]));

    expect(await finished(source.id, third)).toMatchObject({ status: 'success', records: 6 });
    const after = await snapshotRows(source.id);
    expect(after.map((r) => r.payload)).toEqual(rows(3));
    expect((await currentViaApi(source.id)).map((r) => r.payload)).toEqual(rows(3));
    expect(new Set(after.map((r) => r.run_id))).toEqual(new Set([third]));
    // Raw history is kept: all three runs' rows are still in raw_records.
    const all = await api.knex('raw_records').where({ source_id: source.id }).count({ c: '*' }).first();
    expect(Number(all?.c)).toBe(18);
    expect(await api.knex('source_snapshots').where({ source_id: source.id }).first()).toMatchObject({
      run_id: third,
      records: 6,
    });
  });

  it('snapshot: a failed refresh leaves the previous snapshot current', async () => {
    const source = await create({ sync_mode: 'snapshot', metadata: { full_refresh: true, records: 4 } });
    const first = await sync(source.id);
    await finished(source.id, first);
    await api.put(`/raw-data-sources/${source.id}`, {
      metadata: { full_refresh: true, records: 4, fail: 'permanent' },
    });
    expect(await finished(source.id, await sync(source.id))).toMatchObject({ status: 'failed' });
    expect(await api.knex('source_snapshots').where({ source_id: source.id }).first()).toMatchObject({
      run_id: first,
    });
  });

  it('dedup: one current version per key, updated rows replace it, a soft-deleted row leaves current', async () => {
    const v1 = [
      { id: 1, name: 'a', deleted_at: null },
      { id: 2, name: 'b', deleted_at: null },
      { id: 3, name: 'c', deleted_at: null },
    ];
    const source = await create({
      sync_mode: 'dedup',
      metadata: { rows: v1, batch: 2, primary_key: 'id', delete_marker: 'deleted_at' },
    });
    await finished(source.id, await sync(source.id));
    expect(await current(source.id)).toEqual(v1.map((r) => [r.id, r]));

    // The next sync reads what changed since (incremental): 2 updated twice within one batch, 3 deleted.
    const changes = [
      { id: 2, name: 'b2', deleted_at: null },
      { id: 2, name: 'b3', deleted_at: null },
      { id: 3, name: 'c', deleted_at: '2026-12-07T10:00:00Z' },
      { id: 4, name: 'd', deleted_at: null },
    ];
    await api.put(`/raw-data-sources/${source.id}`, {
      metadata: { rows: [...v1, ...changes], batch: 3, primary_key: 'id', delete_marker: 'deleted_at' },
    });
    const second = await sync(source.id);
    expect(await finished(source.id, second)).toMatchObject({ status: 'success', records: 4 });
    expect(await current(source.id)).toEqual([
      [1, v1[0]],
      [2, changes[1]],
      [4, changes[3]],
    ]);
    const read = (await currentViaApi(source.id)).map((r) => r.payload as { id: number });
    expect(read.sort((a, b) => a.id - b.id)).toEqual([v1[0], changes[1], changes[3]]);
    // An append source keeps no current view: a clear 400, not an empty list.
    const plain = await create({ metadata: { records: 1 } });
    expect((await api.get(`/raw-data-sources/${plain.id}/records?view=current`)).status).toBe(400);
    // Raw history keeps every version, the delete included.
    const all = await api.knex('raw_records').where({ source_id: source.id }).count({ c: '*' }).first();
    expect(Number(all?.c)).toBe(7);
    const two = await api.knex('raw_current').where({ source_id: source.id, record_key: '2' }).first();
    expect(two).toMatchObject({ run_id: second });
    expect(two.provenance).toMatchObject({ index: 4 });
  });

  it('dedup: composite keys, and a record without its key is quarantined', async () => {
    const source = await create({
      sync_mode: 'dedup',
      metadata: {
        rows: [
          { t: 'x', o: { id: 1 }, v: 1 },
          { t: 'y', o: { id: 1 }, v: 2 },
          { t: 'x', o: { id: 1 }, v: 3 },
          { t: 'x', v: 4 },
        ],
        primary_key: ['t', 'o.id'],
      },
    });
    const run = await finished(source.id, await sync(source.id));
    expect(run).toMatchObject({ status: 'success', records: 3, invalid: 1 });
    expect((await current(source.id)).map(([key, p]) => [key, p.v])).toEqual([
      [['x', 1], 3],
      [['y', 1], 2],
    ]);
    const q = await api.knex('quarantined_records').where({ run_id: run.id }).first();
    expect(q.errors).toEqual([{ pointer: '/o/id', message: 'primary key is missing or null' }]);
  });

  it('sync_mode is validated per source type and settings, with a 400 naming the field', async () => {
    const problem = async (body: Record<string, unknown>, path = '/raw-data-sources', put = false) => {
      const res = put ? await api.put(path, body) : await api.post(path, { name: name(), ...body });
      expect(res.status).toBe(400);
      return res.body.errors as { pointer: string; message: string }[];
    };
    // An incremental source (here the scripted database without full_refresh) cannot be a snapshot.
    expect(await problem({ source_type: 'database', sync_mode: 'snapshot', metadata: {} })).toEqual([
      {
        pointer: '/sync_mode',
        in: 'body',
        message: expect.stringContaining('snapshot needs a full-refresh source'),
      },
    ]);
    // A stream is never a full refresh (the real connector says so).
    const stream = await problem({
      source_type: 'stream',
      sync_mode: 'snapshot',
      connection_string: 'redis://127.0.0.1:6379/0',
      metadata: { stream: 'orders' },
    });
    expect(stream.map((e) => e.pointer)).toEqual(['/sync_mode']);
    expect(await problem({ source_type: 'database', sync_mode: 'dedup', metadata: {} })).toEqual([
      {
        pointer: '/sync_mode',
        in: 'body',
        message: expect.stringContaining('dedup needs metadata.primary_key'),
      },
    ]);
    expect(
      (await problem({ source_type: 'database', sync_mode: 'dedup', metadata: { primary_key: [] } })).map(
        (e) => e.pointer,
      ),
    ).toEqual(['/metadata/primary_key']);
    expect((await problem({ source_type: 'database', sync_mode: 'bulk' })).map((e) => e.pointer)).toEqual([
      '/sync_mode',
    ]);
    // An update is checked against the stored source: an omitted metadata keeps its value.
    const source = await create({ metadata: { records: 1 } });
    expect(
      (await problem({ sync_mode: 'dedup' }, `/raw-data-sources/${source.id}`, true)).map((e) => e.pointer),
    ).toEqual(['/sync_mode']);
    const ok = await api.put(`/raw-data-sources/${source.id}`, {
      sync_mode: 'dedup',
      metadata: { records: 1, primary_key: 'n' },
    });
    expect(ok.status).toBe(200);
    // A snapshot source cannot become incremental behind its mode's back.
    const snap = await create({ sync_mode: 'snapshot', metadata: { full_refresh: true } });
    expect(
      (await problem({ metadata: { full_refresh: false } }, `/raw-data-sources/${snap.id}`, true)).map(
        (e) => e.pointer,
      ),
    ).toEqual(['/sync_mode']);
  });
});
