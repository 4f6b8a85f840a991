import { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events/event-bus';
import { createLogger } from '../../src/logger';
import { createQueues, type Queues } from '../../src/queue/queue-factory';
import type { SyncJobData } from '../../src/queue/queue-names';
import { RunLifecycle } from '../../src/runs/run-lifecycle';
import { RunReconciler } from '../../src/runs/run-reconciler';
import { SyncRunRepository } from '../../src/runs/sync-run.repository';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { TEST_REDIS_URL, uniqueSuffix } from '../helpers/test-env';

/** More than one page (500) of runs legitimately waiting in the queue, and a few lost ones. */
const WAITING = 620;
const LOST = 7;

describe('RunReconciler', () => {
  let database: TestDatabase;
  let knex: Knex;
  let redis: Redis;
  let queues: Queues;
  let runs: SyncRunRepository;
  let reconciler: RunReconciler;
  const prefix = `sluice_test_reconciler_${uniqueSuffix()}`;

  beforeAll(async () => {
    database = await createTestDatabase();
    knex = database.knex;
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const logger = createLogger('silent');
    queues = createQueues({ connection: redis, prefix, logger, attempts: 3 });
    runs = new SyncRunRepository(knex);
    reconciler = new RunReconciler({
      lifecycle: new RunLifecycle(runs, new EventBus(redis, prefix, 10_000, logger)),
      queues,
      logger,
      graceMs: 1000,
    });
  });
  afterAll(async () => {
    for (const q of queues.all()) await q.obliterate({ force: true }).catch(() => undefined);
    await queues.close();
    await redis.unlink(`${prefix}:events`);
    redis.disconnect();
    await database.drop();
  });

  it('pages past runs waiting in a long queue and closes every lost one in one pass', async () => {
    // Sources and their queued runs, all older than the grace period.
    const rows = (await knex.raw(
      `WITH s AS (
         INSERT INTO raw_data_sources (name, source_type, is_active)
         SELECT 'reconciled-' || i, 'database', true FROM generate_series(1, ?::int) i RETURNING id
       )
       INSERT INTO sync_runs (id, source_id, trigger, job_id, queued_at)
       SELECT n.run_id, n.id, 'manual', n.run_id::text, now() - interval '1 hour' + n.i * interval '1 ms'
       FROM (SELECT gen_random_uuid() AS run_id, id, row_number() OVER () AS i FROM s) n
       RETURNING id, source_id, queued_at`,
      [WAITING + LOST],
    )) as { rows: { id: string; source_id: string; queued_at: Date }[] };
    // The oldest runs have their jobs waiting; the newest ones lost theirs (never enqueued, or wiped).
    const sorted = [...rows.rows].sort((a, b) => a.queued_at.getTime() - b.queued_at.getTime());
    const waiting = sorted.slice(0, WAITING);
    const lost = sorted.slice(WAITING);
    await queues.sync.addBulk(
      waiting.map((r) => ({
        name: 'sync',
        data: { sourceId: r.source_id, runId: r.id, trigger: 'manual' } satisfies SyncJobData,
        opts: { jobId: r.id },
      })),
    );

    expect(await reconciler.repair()).toEqual({ runs: LOST, sources: 0 });
    const statuses = await knex('sync_runs').select('id', 'status');
    const status = new Map(statuses.map((r: { id: string; status: string }) => [r.id, r.status]));
    for (const r of lost) expect(status.get(r.id)).toBe('failed');
    for (const r of waiting) expect(status.get(r.id)).toBe('queued');
    // Nothing left to repair: a second pass changes nothing.
    expect(await reconciler.repair()).toEqual({ runs: 0, sources: 0 });
  });

  it('activeBefore pages by id without skipping or repeating a run', async () => {
    const before = new Date();
    const all = await runs.activeBefore(before, 10_000);
    const paged: string[] = [];
    let afterId: string | undefined;
    for (let i = 0; i < 100; i++) {
      const page = await runs.activeBefore(before, 100, afterId);
      paged.push(...page.map((r) => r.id));
      if (page.length < 100) break;
      afterId = page[page.length - 1]!.id;
    }
    expect(paged).toEqual(all.map((r) => r.id));
    expect(new Set(paged).size).toBe(WAITING);
  });
});
