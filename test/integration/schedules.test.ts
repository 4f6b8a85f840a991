import { randomUUID } from 'node:crypto';
import type { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';
import { until } from '../helpers/until';

let seq = 0;
const body = (extra: Record<string, unknown> = {}) => ({
  name: `sched-${process.pid}-${++seq}`,
  source_type: 'database',
  connection_string: 'postgres://loader:Sched-Secret-Pw@127.0.0.1:5432/warehouse',
  ...extra,
});

/** "Immediately" for a scheduler: a first run sooner than this after the write that made it. */
const IMMEDIATE_MS = 1000;
/**
 * The whole template. Retention of finished jobs is the sync worker's, not the template's, and a
 * tick's data is the source id alone: every value of the scheduler's hash then fits Redis's
 * 64-byte compact-hash limit (hash-max-listpack-value), which halves its memory.
 */
const TEMPLATE_OPTS = { attempts: 3, backoff: { type: 'exponential', delay: 2000 } };
const COMPACT_HASH_VALUE_BYTES = 64;

const schedulerOf = (queue: Queue, sourceId: string) => queue.getJobScheduler(`source-${sourceId}`);
/** The delayed jobs a source's scheduler holds (there should be exactly one). */
const pendingOf = async (queue: Queue, sourceId: string): Promise<Job[]> =>
  (await queue.getJobs(['delayed', 'waiting', 'prioritized', 'active'])).filter(
    (j) => j.repeatJobKey === `source-${sourceId}`,
  );

describe('schedules follow the sources', () => {
  let api: TestApi;
  let queue: Queue;
  beforeAll(async () => {
    // No worker here: nothing moves a job from delayed to waiting except the scheduler itself
    // adding it as immediately due, which is exactly what must not happen.
    api = await startTestApi({ env: { SYNC_ATTEMPTS: '3' } });
    queue = api.container.queues.sync;
  });
  afterAll(() => api?.close());

  const create = async (extra: Record<string, unknown> = {}) => {
    const res = await api.post('/raw-data-sources', body(extra));
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; name: string; refresh_interval: number };
  };

  it('creating a source creates source-<id> with every = refresh_interval and the full template, not due at once', async () => {
    const before = Date.now();
    const source = await create({ refresh_interval: 600 });
    const scheduler = await schedulerOf(queue, source.id);
    expect(scheduler).toMatchObject({
      key: `source-${source.id}`,
      name: `sync: ${source.name}`,
      every: 600_000,
      template: { opts: TEMPLATE_OPTS },
    });
    expect(scheduler!.template!.data).toEqual({ sourceId: source.id });
    expect(scheduler!.template!.opts).not.toHaveProperty('removeOnComplete');
    const stored = await api.container.redis.hgetall(queue.toKey(`repeat:source-${source.id}`));
    for (const [field, value] of Object.entries(stored))
      expect(Buffer.byteLength(value), field).toBeLessThanOrEqual(COMPACT_HASH_VALUE_BYTES);
    expect(scheduler!.next).toBeGreaterThan(before + IMMEDIATE_MS);
    expect(scheduler!.next).toBeLessThanOrEqual(Date.now() + 600_000 + 10_000);

    const [pending, ...more] = await pendingOf(queue, source.id);
    expect(more).toEqual([]);
    expect(await pending!.getState()).toBe('delayed');
    expect(pending!.id).toBe(`repeat:source-${source.id}:${scheduler!.next}`);
    expect(pending!.timestamp + pending!.delay).toBeGreaterThan(before + IMMEDIATE_MS);
    expect(pending!.data).toEqual({ sourceId: source.id });
    expect(pending!.opts).toMatchObject(TEMPLATE_OPTS);
    expect(await queue.getWaitingCount()).toBe(0);
  });

  it('an inactive source gets no scheduler', async () => {
    const source = await create({ is_active: false });
    expect(await schedulerOf(queue, source.id)).toBeUndefined();
    expect(await pendingOf(queue, source.id)).toEqual([]);
  });

  it('50 sources created at once start spread over their interval, none within the first second', async () => {
    const created: { id: string; at: number }[] = [];
    for (let i = 0; i < 5; i++)
      created.push(
        ...(await Promise.all(
          Array.from({ length: 10 }, async () => {
            const at = Date.now();
            return { id: (await create({ refresh_interval: 60 })).id, at };
          }),
        )),
      );
    const nexts: number[] = [];
    for (const { id, at } of created) {
      const scheduler = await schedulerOf(queue, id);
      expect(scheduler?.every).toBe(60_000);
      expect(scheduler!.next! - at, `source ${id}`).toBeGreaterThan(IMMEDIATE_MS);
      nexts.push(scheduler!.next!);
    }
    // Spread, not bunched: the first runs cover most of the minute and hardly ever coincide.
    expect(Math.max(...nexts) - Math.min(...nexts)).toBeGreaterThan(30_000);
    expect(new Set(nexts).size).toBeGreaterThanOrEqual(45);
    expect(await queue.getWaitingCount()).toBe(0);
    const offsets = nexts.map((n) => n - created[0]!.at).sort((a, b) => a - b);
    console.log(`schedules: 50 new sources, first runs ${offsets[0]}..${offsets.at(-1)} ms after creation`);
  });

  it('changing refresh_interval re-times the scheduler without an extra run; other edits leave it alone', async () => {
    const source = await create({ refresh_interval: 3600 });
    const before = (await schedulerOf(queue, source.id))!;
    const [oldJob] = await pendingOf(queue, source.id);

    // An edit that does not touch the schedule keeps the pending tick exactly.
    await api.put(`/raw-data-sources/${source.id}`, { metadata: { note: 'unrelated' } });
    expect((await schedulerOf(queue, source.id))!.next).toBe(before.next);

    const at = Date.now();
    expect((await api.put(`/raw-data-sources/${source.id}`, { refresh_interval: 120 })).status).toBe(200);
    const after = (await schedulerOf(queue, source.id))!;
    expect(after.every).toBe(120_000);
    expect(after.next! - at).toBeGreaterThan(IMMEDIATE_MS);
    expect(after.next! - at).toBeLessThanOrEqual(120_000 + 10_000);
    // The template survives the re-time whole (BullMQ replaces it on every upsert).
    expect(after.template).toMatchObject({
      data: { sourceId: source.id },
      opts: TEMPLATE_OPTS,
    });

    const pending = await pendingOf(queue, source.id);
    expect(pending.map((j) => j.id)).toEqual([`repeat:source-${source.id}:${after.next}`]);
    expect(await pending[0]!.getState()).toBe('delayed');
    expect(pending[0]!.timestamp + pending[0]!.delay).toBeGreaterThan(at + IMMEDIATE_MS);
    expect(await queue.getJob(oldJob!.id!)).toBeUndefined();
    expect(await queue.getWaitingCount()).toBe(0);

    // Back and forth: still one pending tick, never an immediate one.
    for (const refresh_interval of [60, 7200, 60]) {
      const t = Date.now();
      await api.put(`/raw-data-sources/${source.id}`, { refresh_interval });
      const s = (await schedulerOf(queue, source.id))!;
      expect(s.every).toBe(refresh_interval * 1000);
      expect(s.next! - t).toBeGreaterThan(IMMEDIATE_MS);
      expect((await pendingOf(queue, source.id)).length).toBe(1);
    }
    expect(await queue.getWaitingCount()).toBe(0);
  });

  it('deactivating removes the scheduler, reactivating restores it, deleting removes it', async () => {
    const source = await create({ refresh_interval: 300 });
    expect(await schedulerOf(queue, source.id)).toBeDefined();

    await api.put(`/raw-data-sources/${source.id}`, { is_active: false });
    expect(await schedulerOf(queue, source.id)).toBeUndefined();
    expect(await pendingOf(queue, source.id)).toEqual([]);

    const at = Date.now();
    await api.put(`/raw-data-sources/${source.id}`, { is_active: true });
    const restored = await schedulerOf(queue, source.id);
    expect(restored).toMatchObject({
      every: 300_000,
      template: { data: { sourceId: source.id } },
    });
    expect(restored!.next! - at).toBeGreaterThan(IMMEDIATE_MS);
    expect((await pendingOf(queue, source.id)).length).toBe(1);

    expect((await api.del(`/raw-data-sources/${source.id}`)).status).toBe(204);
    expect(await schedulerOf(queue, source.id)).toBeUndefined();
    expect(await pendingOf(queue, source.id)).toEqual([]);
    expect(await queue.getWaitingCount()).toBe(0);
  });

  it('reconcile repairs missing, extra, re-timed and deactivated schedulers, page by page, and is idempotent', async () => {
    const { schedules, knex, sourceStore } = api.container;
    await schedules.reconcile(sourceStore); // start from a table and queue in step
    const activeCount = async () =>
      Number((await knex('raw_data_sources').where({ is_active: true }).count({ n: '*' }).first())!.n);

    // More sources than one page (ScheduleService reads 1,000 at a time), written behind the
    // API's back so none has a scheduler yet.
    const N = 1500;
    const rows = Array.from({ length: N }, (_, i) => ({
      id: randomUUID(),
      name: `bulk-${process.pid}-${i}`,
      source_type: 'database',
      // Long intervals: no tick falls due while the test runs.
      refresh_interval: 7 * 86400 + (i % 7) * 60,
      is_active: true,
      metadata: {},
    }));
    for (let i = 0; i < N; i += 500) await knex('raw_data_sources').insert(rows.slice(i, i + 500));
    const started = Date.now();
    const first = await schedules.reconcile(sourceStore);
    expect(first).toMatchObject({ sources: await activeCount(), upserted: N, removed: 0 });
    expect(await queue.getJobSchedulersCount()).toBe(await activeCount());
    expect(await queue.getWaitingCount()).toBe(0);
    // A mass creation bursts nothing: every first run is out of the immediate window.
    const bulk = new Set(rows.map((r) => `source-${r.id}`));
    const created = (await queue.getJobSchedulers(0, -1, true)).filter((s) => bulk.has(s.key));
    expect(created).toHaveLength(N);
    expect(Math.min(...created.map((s) => s.next!)) - started).toBeGreaterThan(IMMEDIATE_MS);

    // Drift, made through the queue and the table directly.
    const missing = rows.slice(0, 7);
    const retimed = rows.slice(7, 12);
    const deactivated = rows.slice(12, 16);
    // Right interval, yesterday's template (SYNC_ATTEMPTS changed since, or an older template shape).
    const stale = rows.slice(16, 19);
    const orphans = [randomUUID(), randomUUID(), randomUUID()];
    for (const r of missing) await queue.removeJobScheduler(`source-${r.id}`);
    for (const r of retimed)
      await queue.upsertJobScheduler(
        `source-${r.id}`,
        { every: 123_000 },
        { name: 'sync', data: { sourceId: r.id, trigger: 'schedule' } },
      );
    const staleNext = new Map<string, number | undefined>();
    for (const r of stale) {
      const every = r.refresh_interval * 1000;
      await queue.upsertJobScheduler(
        `source-${r.id}`,
        { every },
        { name: 'sync', data: { sourceId: r.id, trigger: 'schedule' }, opts: { attempts: 7 } },
      );
      staleNext.set(r.id, (await schedulerOf(queue, r.id))!.next);
    }
    for (const id of orphans)
      await queue.upsertJobScheduler(
        `source-${id}`,
        { every: 3_600_000, startDate: Date.now() + 3_600_000 },
        { name: 'sync', data: { sourceId: id, trigger: 'schedule' } },
      );
    await knex('raw_data_sources')
      .whereIn(
        'id',
        deactivated.map((r) => r.id),
      )
      .update({ is_active: false });

    const second = await schedules.reconcile(sourceStore);
    expect(second).toMatchObject({
      sources: await activeCount(),
      upserted: missing.length + retimed.length + stale.length,
      removed: orphans.length + deactivated.length,
    });

    // Now the queue mirrors the table exactly.
    const table = new Map<string, number>(
      (await knex('raw_data_sources').select('id', 'refresh_interval').where({ is_active: true })).map(
        (r: { id: string; refresh_interval: number }) => [`source-${r.id}`, r.refresh_interval * 1000],
      ),
    );
    const inQueue = await queue.getJobSchedulers(0, -1, true);
    expect(inQueue.length).toBe(table.size);
    for (const s of inQueue) expect(s.every, s.key).toBe(table.get(s.key));
    for (const r of [...missing, ...retimed, ...stale]) {
      const s = (await schedulerOf(queue, r.id))!;
      expect(s.template).toMatchObject({ data: { sourceId: r.id }, opts: TEMPLATE_OPTS });
      expect(s.template!.data).toEqual({ sourceId: r.id });
      expect((await pendingOf(queue, r.id)).length).toBe(1);
    }
    // A template refresh keeps the interval, so the pending tick stays where it was.
    for (const r of stale) expect((await schedulerOf(queue, r.id))!.next).toBe(staleNext.get(r.id));
    expect(await queue.getWaitingCount()).toBe(0);

    const third = await schedules.reconcile(sourceStore);
    expect(third).toMatchObject({ upserted: 0, removed: 0, sources: table.size });
    console.log(
      `schedules: reconcile of ${first.sources} sources: from scratch ${first.ms} ms, repair ${second.ms} ms, no drift ${third.ms} ms`,
    );
  });
});

describe('scheduler ticks run syncs', () => {
  let api: TestApi;
  let queue: Queue;
  beforeAll(async () => {
    api = await startTestApi({
      connectors: [new ScriptedConnector('database')],
      env: { SYNC_ATTEMPTS: '1', WORKER_CONCURRENCY: '4' },
    });
    queue = api.container.queues.sync;
    await api.startWorker();
    // The worker reconciles at start; tests that shape schedulers by hand wait for it first.
    await until(async () => api.logs.some((l) => l.includes('schedules reconciled')), Boolean);
  });
  afterAll(() => api?.close());

  /** A source whose own scheduler is removed, so only the ticks a test makes reach it. */
  const quietSource = async (metadata: Record<string, unknown> = {}) => {
    const source = (await api.post('/raw-data-sources', body({ metadata }))).body as { id: string };
    await api.container.schedules.remove(source.id);
    return source;
  };
  const runsOf = async (id: string) =>
    (await api.get(`/raw-data-sources/${id}/runs?limit=100`)).body.data as Record<string, unknown>[];
  const settled = (job: Job) =>
    until(
      () => job.getState(),
      (s) => s === 'completed' || s === 'failed',
    ).then(async () => (await queue.getJob(job.id!))!);
  /** A job shaped as a scheduler tick: template data, no run id yet. */
  const tick = (sourceId: string) => queue.add('sync', { sourceId });

  it('a tick opens its run with trigger schedule and syncs', async () => {
    const source = await quietSource({ records: 2 });
    const done = await settled(await tick(source.id));
    expect(done.returnvalue).toMatchObject({ status: 'success', records: 2 });
    const runs = await runsOf(source.id);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      id: done.returnvalue.runId,
      trigger: 'schedule',
      status: 'success',
      records: 2,
    });
    expect(done.data).toMatchObject({
      sourceId: source.id,
      trigger: 'schedule',
      runId: done.returnvalue.runId,
    });
  });

  it("the scheduler's own pending job, promoted, runs as a tick and the next tick is scheduled one interval on", async () => {
    const source = (await api.post('/raw-data-sources', body({ metadata: { records: 1 } }))).body as {
      id: string;
    };
    const scheduler = (await schedulerOf(queue, source.id))!;
    const pending = (await queue.getJob(`repeat:source-${source.id}:${scheduler.next}`))!;
    await pending.promote();
    const done = await settled(pending);
    expect(done.returnvalue).toMatchObject({ status: 'success' });
    expect(await runsOf(source.id)).toMatchObject([{ trigger: 'schedule', status: 'success' }]);
    const next = (await schedulerOf(queue, source.id))!;
    expect(next.next).toBe(scheduler.next! + scheduler.every!);
    const following = await pendingOf(queue, source.id);
    expect(following.map((j) => j.id)).toEqual([`repeat:source-${source.id}:${next.next}`]);
    expect(await following[0]!.getState()).toBe('delayed');
    // The next tick comes from the template, not from the promoted job's data (which has a run id).
    expect(following[0]!.data).toEqual({ sourceId: source.id });
  });

  it('a real short-interval scheduler ticks on its own, one run per tick', async () => {
    const source = await quietSource({ records: 1 });
    // refresh_interval is at least 60 s through the API; the service itself takes any interval.
    await api.container.schedules.apply({ id: source.id, refresh_interval: 1, is_active: true });
    try {
      const runs = await until(
        () => runsOf(source.id),
        (rs) => rs.filter((r) => r.status === 'success').length >= 2,
        20_000,
      );
      expect(runs.every((r) => r.trigger === 'schedule')).toBe(true);
      expect(new Set(runs.map((r) => r.id)).size).toBe(runs.length);
    } finally {
      await api.container.schedules.remove(source.id);
    }
  });

  it('two overlapping ticks for one source make one run; the second is skipped', async () => {
    const source = await quietSource({ records: 4, batch: 1, delay_ms: 250 });
    const [a, b] = await queue.addBulk([
      { name: 'sync', data: { sourceId: source.id, trigger: 'schedule' } },
      { name: 'sync', data: { sourceId: source.id, trigger: 'schedule' } },
    ]);
    const results = (await Promise.all([settled(a!), settled(b!)])).map((j) => j.returnvalue.status).sort();
    expect(results).toEqual(['skipped', 'success']);
    const runs = await runsOf(source.id);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ trigger: 'schedule', status: 'success', records: 4 });
  });

  it('a tick while a manual sync is in flight, or for an inactive source, opens no run', async () => {
    const busy = await quietSource({ records: 3, batch: 1, delay_ms: 300 });
    const manual = (await api.post(`/raw-data-sources/${busy.id}/sync`)).body;
    const skipped = await settled(await tick(busy.id));
    expect(skipped.returnvalue).toMatchObject({ status: 'skipped' });
    await until(
      () => runsOf(busy.id),
      (rs) => rs[0]?.status === 'success',
    );
    expect((await runsOf(busy.id)).map((r) => [r.id, r.trigger])).toEqual([[manual.run_id, 'manual']]);

    const inactive = await quietSource();
    await api.put(`/raw-data-sources/${inactive.id}`, { is_active: false });
    const none = await settled(await tick(inactive.id));
    expect(none.returnvalue).toMatchObject({ status: 'skipped' });
    expect(await runsOf(inactive.id)).toEqual([]);
  });
});
