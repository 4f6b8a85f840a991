/**
 * The end-to-end baseline: a minimal hand-written BullMQ worker doing the same database writes
 * and events as a Sluice sync with no records: run → running and source → syncing (one
 * transaction), run → success and source → success (one transaction), one XADD per event, in the
 * same stream format. No validation, no source load or secret, no landing, no retry bookkeeping.
 * Same knex pool, same Redis, same concurrency and job retention as the Sluice worker.
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createKnex } from '../../src/db/create-knex';
import { KEEP_COMPLETED, KEEP_FAILED } from '../../src/queue/queue-factory';

const env = process.env;
const prefix = env.QUEUE_PREFIX ?? 'sluice_bench_e2e_baseline';
const knex = createKnex({ url: env.DATABASE_URL ?? '', poolMax: Number(env.DATABASE_POOL_MAX ?? 10) });
const redis = new Redis(env.REDIS_URL ?? '');
const eventsKey = `${prefix}:events`;
const maxLen = Number(env.EVENTS_MAXLEN ?? 100000);

const publish = (type: string, sourceId: string, runId: string, data: Record<string, unknown>) =>
  redis.xadd(
    eventsKey,
    'MAXLEN',
    '~',
    maxLen,
    '*',
    'type',
    type,
    'source_id',
    sourceId,
    'run_id',
    runId,
    'at',
    new Date().toISOString(),
    'data',
    JSON.stringify(data),
  );

const worker = new Worker<{ sourceId: string; runId: string }>(
  'sync',
  async (job) => {
    const { sourceId, runId } = job.data;
    await knex.transaction(async (trx) => {
      await trx('sync_runs')
        .update({ status: 'running', attempt: 1, started_at: trx.fn.now() })
        .where({ id: runId });
      await trx('raw_data_sources').update({ sync_status: 'syncing' }).where({ id: sourceId });
    });
    await publish('sync.started', sourceId, runId, { attempt: 1, trigger: 'manual' });
    await knex.transaction(async (trx) => {
      await trx('sync_runs').update({ status: 'success', finished_at: trx.fn.now() }).where({ id: runId });
      await trx('raw_data_sources')
        .update({ sync_status: 'success', error_message: null, last_sync_at: trx.fn.now() })
        .where({ id: sourceId });
    });
    await publish('sync.succeeded', sourceId, runId, { records: 0, bytes: 0, attempt: 1 });
    return { runId, status: 'success' };
  },
  {
    connection: { url: env.REDIS_URL ?? '', maxRetriesPerRequest: null },
    prefix,
    concurrency: Number(env.WORKER_CONCURRENCY ?? 10),
    removeOnComplete: KEEP_COMPLETED,
    removeOnFail: KEEP_FAILED,
  },
);
await worker.waitUntilReady();
process.send?.({ ready: true });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await worker.close();
  redis.disconnect();
  await knex.destroy();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('message', (message) => {
  if (message !== 'cpu') return;
  const { user, system } = process.cpuUsage();
  process.send?.({ cpuMicros: user + system });
});
process.on('disconnect', () => void stop());
