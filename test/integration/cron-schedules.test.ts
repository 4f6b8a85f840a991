import { getNextMillis, type Job, type Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';
import { FIRST_RUN_MIN_DELAY_MS, ScheduleService } from '../../src/runs/schedule.service';
import { jitterFor } from '../../src/sources/source-schedule';
import { syncJobName } from '../../src/queue/queue-names';
import { until } from '../helpers/until';

let seq = 0;
const body = (extra: Record<string, unknown> = {}) => ({
  name: `cron-${process.pid}-${++seq}`,
  source_type: 'database',
  connection_string: 'postgres://loader:Cron-Secret-Pw@127.0.0.1:5432/warehouse',
  ...extra,
});

const schedulerOf = (queue: Queue, sourceId: string) => queue.getJobScheduler(`source-${sourceId}`);
const pendingOf = async (queue: Queue, sourceId: string): Promise<Job[]> =>
  (await queue.getJobs(['delayed', 'waiting', 'prioritized', 'active'])).filter(
    (j) => j.repeatJobKey === `source-${sourceId}`,
  );
/** Wall-clock time of an instant in a zone, `YYYY-MM-DD HH:MM:SS`. */
const wallClock = (ms: number, timeZone: string) =>
  new Intl.DateTimeFormat('sv-SE', { timeZone, dateStyle: 'short', timeStyle: 'medium' }).format(ms);

describe('cron schedules: validation and the scheduler they make', () => {
  let api: TestApi;
  let queue: Queue;
  beforeAll(async () => {
    // No worker: nothing fires, the schedulers are read as the API left them.
    api = await startTestApi();
    queue = api.container.queues.sync;
  });
  afterAll(() => api?.close());

  const create = async (extra: Record<string, unknown>) => {
    const res = await api.post('/raw-data-sources', body(extra));
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; name: string; refresh_interval: number; schedule_cron: string | null };
  };
  const refused = async (
    res: { status: number; headers: Headers; body: unknown; text: string },
    pointer: string,
  ) => {
    expect(res.status, res.text).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const errors = (res.body as { errors: { pointer: string; message: string }[] }).errors;
    expect(
      errors.map((e) => e.pointer),
      res.text,
    ).toContain(pointer);
    return errors.find((e) => e.pointer === pointer)!.message;
  };

  it('refuses what cannot run, naming the field (400 problem+json)', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ schedule_cron: 'every night' }, '/schedule_cron', /not a cron expression/],
      [{ schedule_cron: '0 2 * * * * *' }, '/schedule_cron', /too many fields/],
      [{ schedule_cron: '61 * * * *' }, '/schedule_cron', /not a cron expression/],
      // Fires every 30 s: under the 60 s minimum, as refresh_interval's.
      [{ schedule_cron: '*/30 * * * * *' }, '/schedule_cron', /more than once a minute/],
      [{ schedule_cron: '@secondly' }, '/schedule_cron', /more than once a minute/],
      [{ schedule_cron: '0 0 30 2 *' }, '/schedule_cron', /./],
      [{ schedule_cron: 'H 2 * * *' }, '/schedule_cron', /hashed/],
      [{ schedule_cron: '0 2 * * *', schedule_timezone: 'Mars/Olympus_Mons' }, '/schedule_timezone', /IANA/],
      [{ schedule_timezone: 'Europe/Berlin' }, '/schedule_timezone', /only to a source with schedule_cron/],
      [{ schedule_jitter: 30 }, '/schedule_jitter', /only to a source with schedule_cron/],
      [{ schedule_cron: '30 0 2 * * *', schedule_jitter: 45 }, '/schedule_jitter', /at most 30/],
      [{ schedule_cron: '0 2 * * *', schedule_jitter: 61 }, '/schedule_jitter', /./],
      [{ schedule_cron: 42 }, '/schedule_cron', /./],
    ];
    for (const [extra, pointer, message] of cases) {
      const res = await api.post('/raw-data-sources', body(extra));
      expect(await refused(res, pointer), JSON.stringify(extra)).toMatch(message);
    }
    // Nothing was saved by a refused request, and no scheduler appeared for one.
    expect(await queue.getJobSchedulersCount()).toBe(0);
  });

  it('accepts 5- and 6-field expressions, aliases, names, L and #', async () => {
    for (const schedule_cron of [
      '0 2 * * *',
      '15 0 2 * * MON-FRI',
      '@daily',
      '0 9 L * *',
      '0 9 * * 1#2',
      '* * * * *',
    ]) {
      const source = await create({ schedule_cron, schedule_timezone: 'America/New_York' });
      expect(source).toMatchObject({ schedule_cron, schedule_timezone: 'America/New_York' });
    }
  });

  it('a cron source gets source-<id> with pattern + tz, no every, its first run the next fire in its zone', async () => {
    const before = Date.now();
    const source = await create({ schedule_cron: '0 9 * * *', schedule_timezone: 'Europe/Berlin' });
    const scheduler = (await schedulerOf(queue, source.id))!;
    expect(scheduler).toMatchObject({
      pattern: '0 9 * * *',
      tz: 'Europe/Berlin',
      name: syncJobName(source.name),
    });
    expect(scheduler.every).toBeUndefined();
    expect(scheduler.template!.data).toEqual({ sourceId: source.id });
    // 09:00:00 Berlin time, the first such instant after the write (+ the minimum first delay).
    expect(wallClock(scheduler.next!, 'Europe/Berlin')).toMatch(/ 09:00:00$/);
    expect(scheduler.next!).toBeGreaterThan(before + FIRST_RUN_MIN_DELAY_MS);
    expect(scheduler.next!).toBeLessThanOrEqual(Date.now() + 25 * 3600_000 + FIRST_RUN_MIN_DELAY_MS);
    const [pending, ...more] = await pendingOf(queue, source.id);
    expect(more).toEqual([]);
    expect(pending!.id).toBe(`repeat:source-${source.id}:${scheduler.next}`);
    expect(await pending!.getState()).toBe('delayed');
    expect(pending!.data).toEqual({ sourceId: source.id });
  });

  it('switching interval → cron → another zone → interval updates the scheduler, one pending tick each time', async () => {
    const source = await create({ refresh_interval: 600 });
    expect(await schedulerOf(queue, source.id)).toMatchObject({ every: 600_000 });

    let res = await api.put(`/raw-data-sources/${source.id}`, { schedule_cron: '30 6 * * *' });
    expect(res.status, res.text).toBe(200);
    // refresh_interval stays stored (it drives again if the cron is cleared) but does not drive now.
    expect(res.body).toMatchObject({
      schedule_cron: '30 6 * * *',
      schedule_timezone: 'UTC',
      refresh_interval: 600,
    });
    let s = (await schedulerOf(queue, source.id))!;
    expect(s).toMatchObject({ pattern: '30 6 * * *', tz: 'UTC' });
    expect(s.every).toBeUndefined();
    expect(wallClock(s.next!, 'UTC')).toMatch(/ 06:30:00$/);
    expect((await pendingOf(queue, source.id)).map((j) => j.id)).toEqual([
      `repeat:source-${source.id}:${s.next}`,
    ]);

    // The stored interval is the fallback: changing it under a cron is kept, and the cron still drives.
    res = await api.put(`/raw-data-sources/${source.id}`, { refresh_interval: 900 });
    expect(res.body).toMatchObject({ schedule_cron: '30 6 * * *', refresh_interval: 900 });
    const still = (await schedulerOf(queue, source.id))!;
    expect(still).toMatchObject({ pattern: '30 6 * * *', tz: 'UTC', next: s.next });
    expect(still.every).toBeUndefined();
    expect((await pendingOf(queue, source.id)).length).toBe(1);

    res = await api.put(`/raw-data-sources/${source.id}`, { schedule_timezone: 'Asia/Tokyo' });
    expect(res.status, res.text).toBe(200);
    s = (await schedulerOf(queue, source.id))!;
    expect(s).toMatchObject({ pattern: '30 6 * * *', tz: 'Asia/Tokyo' });
    expect(wallClock(s.next!, 'Asia/Tokyo')).toMatch(/ 06:30:00$/);
    expect((await pendingOf(queue, source.id)).length).toBe(1);

    // Back to the interval: schedule_cron null, with a new refresh_interval in the same request.
    res = await api.put(`/raw-data-sources/${source.id}`, { schedule_cron: null, refresh_interval: 120 });
    expect(res.status, res.text).toBe(200);
    s = (await schedulerOf(queue, source.id))!;
    expect(s.every).toBe(120_000);
    expect(s.pattern).toBeUndefined();
    expect(s.tz).toBeUndefined();
    expect((await pendingOf(queue, source.id)).length).toBe(1);
    // Without a cron, the zone setting has nothing to apply to.
    await refused(
      await api.put(`/raw-data-sources/${source.id}`, { schedule_timezone: 'Europe/Paris' }),
      '/schedule_timezone',
    );
    expect(await queue.getWaitingCount()).toBe(0);
  });

  it('the next runs follow the zone across DST (Europe/Berlin, 2027), in the scheduler BullMQ stores', async () => {
    const source = await create({ schedule_cron: '0 9 * * *', schedule_timezone: 'Europe/Berlin' });
    const timing = ScheduleService.timingOf({
      id: source.id,
      refresh_interval: 3600,
      is_active: true,
      schedule_cron: '0 9 * * *',
      schedule_timezone: 'Europe/Berlin',
    });
    // BullMQ's own next-fire function, step by step over both changes of 2027 (28 March, 31 October).
    const walk = (from: string, n: number) => {
      const out: string[] = [];
      let at = Date.parse(from);
      for (let i = 0; i < n; i++) out.push(new Date((at = getNextMillis(at, timing)!)).toISOString());
      return out;
    };
    expect(walk('2027-03-26T12:00:00Z', 3)).toEqual([
      '2027-03-27T08:00:00.000Z', // CET, UTC+1
      '2027-03-28T07:00:00.000Z', // CEST from 02:00 that night, UTC+2
      '2027-03-29T07:00:00.000Z',
    ]);
    expect(walk('2027-10-30T12:00:00Z', 2)).toEqual(['2027-10-31T08:00:00.000Z', '2027-11-01T08:00:00.000Z']);
    // A skipped wall-clock time fires an hour later that day; a repeated one fires once, the first time.
    const at0230 = { pattern: '30 2 * * *', tz: 'Europe/Berlin' };
    expect(new Date(getNextMillis(Date.parse('2027-03-27T12:00:00Z'), at0230)!).toISOString()).toBe(
      '2027-03-28T01:30:00.000Z',
    );
    const autumn = getNextMillis(Date.parse('2027-10-30T12:00:00Z'), at0230)!;
    expect(new Date(autumn).toISOString()).toBe('2027-10-31T00:30:00.000Z');
    expect(new Date(getNextMillis(autumn, at0230)!).toISOString()).toBe('2027-11-01T01:30:00.000Z');
    // The scheduler itself, started the day before the spring change: its stored next is CEST 09:00.
    await queue.upsertJobScheduler(
      `source-${source.id}`,
      { ...timing, startDate: Date.parse('2027-03-27T12:00:00Z') },
      { name: syncJobName(source.name), data: { sourceId: source.id } },
    );
    expect((await schedulerOf(queue, source.id))!.next).toBe(Date.parse('2027-03-28T07:00:00Z'));
  });

  it('jitter: a fleet on one cron fires at spread, stable seconds within the minute', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++)
      ids.push(
        (await create({ schedule_cron: '0 3 * * *', schedule_jitter: 60, schedule_timezone: 'UTC' })).id,
      );
    const seconds: number[] = [];
    for (const id of ids) {
      const s = (await schedulerOf(queue, id))!;
      const offset = jitterFor(id, 60);
      expect(s.pattern).toBe(offset ? `${offset} 0 3 * * *` : '0 3 * * *');
      expect(wallClock(s.next!, 'UTC')).toMatch(new RegExp(` 03:00:${String(offset).padStart(2, '0')}$`));
      seconds.push(offset);
    }
    expect(new Set(seconds).size).toBeGreaterThanOrEqual(10);
    // Stable: the same source gets the same second on every upsert (reconcile sees no drift).
    const report = await api.container.schedules.reconcile(api.container.sourceStore);
    expect(report.removed).toBe(0);
    expect(report.upserted).toBe(0);
  });

  it('reconcile repairs a cron scheduler whose zone or pattern drifted, and leaves up-to-date ones', async () => {
    const { schedules, sourceStore } = api.container;
    const source = await create({ schedule_cron: '45 4 * * *', schedule_timezone: 'Australia/Sydney' });
    await queue.upsertJobScheduler(
      `source-${source.id}`,
      { pattern: '45 4 * * *', tz: 'UTC' },
      {
        name: 'sync',
        data: { sourceId: source.id },
      },
    );
    const other = await create({ schedule_cron: '0 1 * * *' });
    await queue.upsertJobScheduler(
      `source-${other.id}`,
      { every: 3_600_000 },
      { name: 'sync', data: { sourceId: other.id } },
    );
    const report = await schedules.reconcile(sourceStore);
    expect(report).toMatchObject({ upserted: 2, removed: 0 });
    expect(await schedulerOf(queue, source.id)).toMatchObject({
      pattern: '45 4 * * *',
      tz: 'Australia/Sydney',
    });
    const fixed = (await schedulerOf(queue, other.id))!;
    expect(fixed).toMatchObject({ pattern: '0 1 * * *', tz: 'UTC' });
    expect(fixed.every).toBeUndefined();
    expect((await schedules.reconcile(sourceStore)).upserted).toBe(0);
  });
});

describe('cron schedules: ticks, overlap and downtime', () => {
  let api: TestApi;
  let queue: Queue;
  beforeAll(async () => {
    api = await startTestApi({
      connectors: [new ScriptedConnector('database')],
      env: { SYNC_ATTEMPTS: '1', WORKER_CONCURRENCY: '4' },
    });
    queue = api.container.queues.sync;
  });
  afterAll(() => api?.close());

  const runsOf = async (id: string) =>
    (await api.get(`/raw-data-sources/${id}/runs?limit=100`)).body.data as {
      id: string;
      status: string;
      trigger: string;
      job_id: string;
      started_at: string | null;
    }[];
  /** The fire time a scheduler tick was due at: its job id is `repeat:source-<id>:<millis>`. */
  const fireTime = (jobId: string) => Number(jobId.split(':').at(-1));

  it('a tick for a source that is still syncing is skipped, and the job result says so (overlap policy)', async () => {
    const worker = await api.startWorker();
    const source = (
      await api.post(
        '/raw-data-sources',
        body({ schedule_cron: '0 0 1 1 *', metadata: { records: 4, batch: 1, delay_ms: 300 } }),
      )
    ).body as { id: string };
    const manual = (await api.post(`/raw-data-sources/${source.id}/sync`)).body as { run_id: string };
    await until(
      () => runsOf(source.id),
      (rs) => rs[0]?.status === 'running',
    );
    const tick = await queue.add('sync', { sourceId: source.id });
    await until(
      () => tick.getState(),
      (s) => s === 'completed',
    );
    const done = (await queue.getJob(tick.id!))!;
    expect(done.returnvalue).toMatchObject({
      status: 'skipped',
      overlap: { policy: 'skip', activeRunId: manual.run_id },
    });
    expect(done.returnvalue.reason).toMatch(/skip while running/);
    // The job's result is readable through the API too.
    const job = await api.get(`/jobs/${tick.id}`);
    expect(JSON.stringify(job.body)).toContain('skip while running');
    await until(
      () => runsOf(source.id),
      (rs) => rs[0]?.status === 'success',
    );
    expect((await runsOf(source.id)).map((r) => r.id)).toEqual([manual.run_id]);
    await worker.close();
  });

  it('after downtime, the missed fires make one catch-up run, not a burst', async () => {
    // A per-second cron: refused through the API (minimum 60 s), so the row is written and the
    // scheduler applied directly — the test-only path. Every second is a fire time.
    const [row] = await api
      .knex('raw_data_sources')
      .insert({
        name: `cron-catchup-${process.pid}`,
        source_type: 'database',
        schedule_cron: '* * * * * *',
        is_active: true,
        metadata: { records: 1 },
      })
      // Its name too: the scheduler's jobs carry it, and the worker's start-up reconcile compares it.
      .returning([
        'id',
        'name',
        'refresh_interval',
        'schedule_cron',
        'schedule_timezone',
        'schedule_jitter',
        'is_active',
      ]);
    const source = row as {
      id: string;
      name: string;
      refresh_interval: number;
      schedule_cron: string;
      is_active: boolean;
    };
    await api.container.schedules.apply(source);
    try {
      const worker = await api.startWorker();
      await until(
        () => runsOf(source.id),
        (rs) => rs.filter((r) => r.status === 'success').length >= 2,
      );
      // Workers down.
      await worker.close();
      const stoppedAt = Date.now();
      // Let several fire times pass: the scheduler holds one pending tick, not one per fire.
      await until(
        async () => Date.now(),
        (now) => now > stoppedAt + 4000,
        10_000,
      );
      const pending = await pendingOf(queue, source.id);
      expect(pending).toHaveLength(1);
      expect(fireTime(pending[0]!.id!)).toBeLessThan(Date.now() - 2000);
      const before = (await runsOf(source.id)).length;

      const restartedAt = Date.now();
      await api.startWorker();
      const runs = await until(
        () => runsOf(source.id),
        (rs) =>
          rs.filter((r) => r.started_at && Date.parse(r.started_at) >= restartedAt && r.status === 'success')
            .length >= 3,
      );
      await api.container.schedules.remove(source.id);
      const afterRestart = runs.filter((r) => r.started_at && Date.parse(r.started_at) >= restartedAt);
      // Exactly one run for all the fires missed while down; every later run is for a fire due after the restart.
      const missed = afterRestart.filter((r) => fireTime(r.job_id) < restartedAt);
      expect(missed, JSON.stringify(afterRestart)).toHaveLength(1);
      expect(fireTime(missed[0]!.job_id)).toBeLessThanOrEqual(stoppedAt + 1000);
      expect(runs.length - before).toBe(afterRestart.length);
      for (const r of afterRestart.filter((x) => x !== missed[0]))
        expect(fireTime(r.job_id)).toBeGreaterThanOrEqual(restartedAt);
      expect(afterRestart.every((r) => r.trigger === 'schedule')).toBe(true);
    } finally {
      await api.container.schedules.remove(source.id);
    }
  });
});
