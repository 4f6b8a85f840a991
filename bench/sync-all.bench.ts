/**
 * Issue item 10(b): sync-all over BENCH_FANOUT_SOURCES (default BENCH_SOURCES, 100k) active
 * sources. Sluice: POST /raw-data-sources/sync-all's service call (counts, enqueues the fan-out
 * job) and that job run by SyncAllProcessor on a BullMQ worker as SyncWorker builds it (runs opened
 * in Postgres page by page, jobs enqueued with addBulk, one sync.queued event each), timed from the
 * call to the job's completion. Baseline: the same 100k sync jobs (same data and options) added
 * with raw queue.addBulk in chunks of the same size, nothing else. Targets: ≤ 5 s, and
 * baseline time ÷ Sluice time ≥ 0.6. BENCH_FANOUT_ROUNDS (3) alternating rounds, medians; the
 * queues (and sync_runs) are emptied before every round. Nothing consumes the sync jobs.
 */
import { randomUUID } from 'node:crypto';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { createQueues } from '../src/queue/queue-factory';
import { QUEUES, syncDedupId, type SyncJobData } from '../src/queue/queue-names';
import { FAN_OUT_PAGE, SyncAllProcessor } from '../workers/sync-all.processor';
import { median, type BenchResult, type BenchSettings } from './lib/bench-result';
import { createBenchDatabase } from './lib/bench-database';
import { BENCH_REDIS_URL, benchContainer, benchEnv } from './lib/bench-env';
import { deleteKeys } from './lib/redis-keys';
import { seedSources } from './lib/seed-sources';

const SOURCES = Number(process.env.BENCH_FANOUT_SOURCES ?? process.env.BENCH_SOURCES ?? 100_000);
const ROUNDS = Number(process.env.BENCH_FANOUT_ROUNDS ?? 3);
const PREFIX = 'sluice_bench_fanout';
const RAW_PREFIX = 'sluice_bench_fanout_raw';
const MAX_SECONDS = 5;
const MIN_RATIO = 0.6;

export default async function syncAll(settings: BenchSettings): Promise<BenchResult[]> {
  void settings;
  const db = await createBenchDatabase('sluice_bench_fanout');
  const env = benchEnv(db.url, PREFIX);
  const container = benchContainer(env);
  const { knex, queues } = container;
  const redis = new Redis(BENCH_REDIS_URL);
  const raw = createQueues({
    connection: redis,
    prefix: RAW_PREFIX,
    logger: container.logger,
    attempts: container.config.syncAttempts,
  });
  const finished = new Map<string, { queued: number }>();
  let failure: Error | undefined;
  const processor = new SyncAllProcessor({ queues, lifecycle: container.lifecycle });
  const worker = new Worker(QUEUES.syncAll, (job: Job) => processor.process(job), {
    connection: { url: BENCH_REDIS_URL, maxRetriesPerRequest: null },
    prefix: PREFIX,
    concurrency: 1,
  });
  worker.on('completed', (job, result: { queued: number }) => finished.set(job.id ?? '', result));
  worker.on('failed', (_job, err) => (failure = err));
  const clean = async () => {
    for (const prefix of [PREFIX, RAW_PREFIX]) {
      await deleteKeys(redis, `${prefix}:${QUEUES.sync}:*`);
      await deleteKeys(redis, `${prefix}:events`);
    }
    await knex.raw('TRUNCATE sync_runs CASCADE');
  };
  const waitingJobs = (q: typeof raw.sync) => q.getJobCountByTypes('waiting', 'prioritized', 'delayed');

  try {
    let t = performance.now();
    await seedSources(db.knex, SOURCES, 100);
    const sourceIds = (await knex('raw_data_sources').select('id').orderBy('id')).map(
      (r: { id: string }) => r.id,
    );
    process.stderr.write(
      `  seeded ${SOURCES} active sources in ${((performance.now() - t) / 1000).toFixed(1)} s\n`,
    );
    await worker.waitUntilReady();
    // Warm-up: BullMQ's addBulk path, shared by both sides, compiled before either is timed.
    await raw.sync.addBulk(
      sourceIds.slice(0, FAN_OUT_PAGE).map((sourceId) => ({
        name: 'sync',
        data: { sourceId, runId: randomUUID(), trigger: 'sync_all' } satisfies SyncJobData,
      })),
    );

    const ours = async (): Promise<{ seconds: number; apiMs: number }> => {
      await clean();
      const started = performance.now();
      const answer = await container.sync.syncAll();
      const apiMs = performance.now() - started;
      while (!finished.has(answer.batch_id)) {
        if (failure) throw failure;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const seconds = (performance.now() - started) / 1000;
      const result = finished.get(answer.batch_id)!;
      const inQueue = await waitingJobs(queues.sync);
      if (answer.queued !== SOURCES || result.queued !== SOURCES || inQueue !== SOURCES)
        throw new Error(
          `sync-all: answered ${answer.queued}, fanned out ${result.queued}, queue holds ${inQueue}`,
        );
      return { seconds, apiMs };
    };
    const baseline = async (): Promise<number> => {
      await clean();
      // Built before the clock starts: the baseline is the enqueue alone.
      const jobs = sourceIds.map((sourceId) => {
        const runId = randomUUID();
        return {
          name: 'sync',
          data: { sourceId, runId, trigger: 'sync_all' } satisfies SyncJobData,
          opts: { jobId: runId, deduplication: { id: syncDedupId(sourceId) } },
        };
      });
      const started = performance.now();
      for (let i = 0; i < jobs.length; i += FAN_OUT_PAGE)
        await raw.sync.addBulk(jobs.slice(i, i + FAN_OUT_PAGE));
      const seconds = (performance.now() - started) / 1000;
      const inQueue = await waitingJobs(raw.sync);
      if (inQueue !== SOURCES) throw new Error(`raw addBulk: queue holds ${inQueue}, not ${SOURCES}`);
      return seconds;
    };

    const sluice: number[] = [];
    const apiMs: number[] = [];
    const base: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const runOurs = async () => {
        const r = await ours();
        sluice.push(r.seconds);
        apiMs.push(r.apiMs);
      };
      const runBase = async () => void base.push(await baseline());
      if (round % 2) {
        await runOurs();
        await runBase();
      } else {
        await runBase();
        await runOurs();
      }
      process.stderr.write(
        `  round ${round}/${ROUNDS}: sync-all ${sluice.at(-1)!.toFixed(2)} s (API call ${apiMs.at(-1)!.toFixed(0)} ms), ` +
          `raw addBulk ${base.at(-1)!.toFixed(2)} s\n`,
      );
    }
    t = performance.now();
    return [
      {
        name: `sync-all fan-out of ${Math.round(SOURCES / 1000)}k sources vs raw addBulk`,
        unit: 's',
        sluice: median(sluice),
        baseline: median(base),
        higherIsBetter: false,
        targets: [
          { on: 'value', op: '≤', value: MAX_SECONDS },
          { on: 'ratio', op: '≥', value: MIN_RATIO },
        ],
        rounds: { sluice, baseline: base },
        note:
          `Sluice = API call (median ${median(apiMs).toFixed(0)} ms) + fan-out job (runs opened in ` +
          `Postgres, addBulk, sync.queued events); ratio = raw addBulk time ÷ Sluice time`,
      },
    ];
  } finally {
    await worker.close();
    await raw.close();
    for (const prefix of [PREFIX, RAW_PREFIX]) await deleteKeys(redis, `${prefix}:*`).catch(() => 0);
    redis.disconnect();
    await container.close();
    if (process.env.BENCH_KEEP_DATABASE !== '1') await db.drop();
    else await db.knex.destroy();
  }
}
