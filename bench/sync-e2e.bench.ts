/**
 * Issue item 10(a): end-to-end syncs per second with a no-op connector (no records: the sync is
 * pure orchestration), Sluice against a minimal hand-written BullMQ worker doing the same database
 * writes and events (bench/servers/baseline-worker.ts). Target: ≥ 0.7×.
 * - Sluice: SyncService.requestSync in this process, exactly as POST /raw-data-sources/{id}/sync
 *   runs it (source check, queued run row, deduplicated job, sync.queued event), and the real
 *   SyncWorker in a child process (bench/servers/sluice-worker.ts) running the sync (run started,
 *   source syncing, source loaded and its secret decrypted, landing prepared, run and source
 *   succeeded, sync.started and sync.succeeded events).
 * - Baseline: insert the queued run, queue.add, XADD sync.queued here; the worker does the rest.
 * A round enqueues BENCH_SYNCS (1000) syncs of distinct sources from BENCH_CONNECTIONS (10)
 * concurrent producers and ends when the last sync.succeeded event is read from the side's stream;
 * both workers run BENCH_WORKER_CONCURRENCY (10) jobs at once, on the same Postgres and Redis.
 * One warm-up round each, then BENCH_ROUNDS alternating rounds; medians of syncs/s.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createQueues } from '../src/queue/queue-factory';
import type { SyncJobData } from '../src/queue/queue-names';
import { median, type BenchResult, type BenchSettings } from './lib/bench-result';
import { createBenchDatabase } from './lib/bench-database';
import { BENCH_REDIS_URL, benchContainer, benchEnv } from './lib/bench-env';
import { startChild, type ChildProcess } from './lib/child-server';
import { deleteKeys } from './lib/redis-keys';

const SYNCS = Number(process.env.BENCH_SYNCS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_WORKER_CONCURRENCY ?? 10);
const PREFIX = 'sluice_bench_e2e';
const BASE_PREFIX = 'sluice_bench_e2e_baseline';
const TARGET = 0.7;
const ROUND_TIMEOUT_MS = 300_000;

/** Reads `key` from its current end until `count` sync.succeeded events arrived; a failure throws. */
async function succeeded(reader: Redis, key: string, from: string, count: number): Promise<void> {
  let last = from;
  let seen = 0;
  const deadline = Date.now() + ROUND_TIMEOUT_MS;
  while (seen < count) {
    if (Date.now() > deadline) throw new Error(`${key}: ${seen}/${count} syncs succeeded in time`);
    const reply = (await reader.xread('COUNT', 5000, 'BLOCK', 1000, 'STREAMS', key, last)) as
      [string, [string, string[]][]][] | null;
    for (const [id, fields] of reply?.[0]?.[1] ?? []) {
      last = id;
      const type = fields[fields.indexOf('type') + 1];
      if (type === 'sync.succeeded') seen += 1;
      if (type === 'sync.failed' || type === 'sync.retrying')
        throw new Error(`${key}: ${type} ${fields[fields.indexOf('data') + 1]}`);
    }
  }
}

const lastId = async (redis: Redis, key: string) =>
  (await redis.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';

/** Runs `produce` for every source from `connections` concurrent producers. */
async function produceAll(ids: string[], connections: number, produce: (id: string) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < ids.length) await produce(ids[next++]!);
    }),
  );
}

export default async function syncE2e(settings: BenchSettings): Promise<BenchResult[]> {
  const db = await createBenchDatabase('sluice_bench_e2e');
  const env = { ...benchEnv(db.url, PREFIX), WORKER_CONCURRENCY: String(CONCURRENCY) };
  const container = benchContainer(env);
  const redis = new Redis(BENCH_REDIS_URL);
  const reader = new Redis(BENCH_REDIS_URL);
  const base = createQueues({
    connection: redis,
    prefix: BASE_PREFIX,
    logger: container.logger,
    attempts: 3,
  });
  const children: ChildProcess[] = [];
  try {
    for (const prefix of [PREFIX, BASE_PREFIX]) await deleteKeys(redis, `${prefix}:*`);
    const ids: string[] = [];
    await produceAll(
      Array.from({ length: SYNCS }, (_, i) => String(i)),
      10,
      async (i) => {
        const source = await container.sources.create({
          name: `e2e-${i}`,
          source_type: 'database',
          connection_string: `postgres://loader:bench-secret-${i}@127.0.0.1:5432/warehouse`,
          // A day apart: no scheduler tick falls inside the benchmark (they are removed anyway).
          refresh_interval: 86400,
          is_active: true,
          metadata: { table: `events_${i}` },
        });
        ids.push(source.id);
      },
    );

    // BENCH_CPU_PROF=dir: each worker writes a V8 CPU profile there when it stops.
    const profile = process.env.BENCH_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
      : [];
    const sluiceWorker = await startChild('bench/servers/sluice-worker.ts', env, profile);
    children.push(sluiceWorker);
    const baseWorker = await startChild(
      'bench/servers/baseline-worker.ts',
      { ...env, QUEUE_PREFIX: BASE_PREFIX },
      profile,
    );
    children.push(baseWorker);
    // The worker reconciled schedules at start; remove them so that only the benchmark's syncs run.
    const marker = `${PREFIX}:meta:schedules-reconciled`;
    while (!(await redis.exists(marker))) await new Promise((resolve) => setTimeout(resolve, 100));
    await produceAll(ids, 50, (id) => container.schedules.remove(id));
    await container.redis.ping();

    type Side = { worker: ChildProcess; events: string; produce: (id: string) => Promise<unknown> };
    const sides: Record<'sluice' | 'baseline', Side> = {
      sluice: {
        worker: sluiceWorker,
        events: container.events.key,
        produce: (id: string) => container.sync.requestSync(id),
      },
      baseline: {
        worker: baseWorker,
        events: `${BASE_PREFIX}:events`,
        produce: async (sourceId: string) => {
          const runId = randomUUID();
          await db
            .knex('sync_runs')
            .insert({ id: runId, source_id: sourceId, trigger: 'manual', job_id: runId });
          const data: SyncJobData = { sourceId, runId, trigger: 'manual' };
          await base.sync.add('sync', data, { jobId: runId });
          await redis.xadd(
            `${BASE_PREFIX}:events`,
            'MAXLEN',
            '~',
            container.config.eventsMaxLen,
            '*',
            'type',
            'sync.queued',
            'source_id',
            sourceId,
            'run_id',
            runId,
            'at',
            new Date().toISOString(),
            'data',
            JSON.stringify({ trigger: 'manual' }),
          );
        },
      },
    };
    const round = async (side: Side, sources: string[]) => {
      const from = await lastId(redis, side.events);
      const cpuBefore = await side.worker.cpuMicros();
      const started = performance.now();
      await Promise.all([
        produceAll(sources, settings.connections, side.produce),
        succeeded(reader, side.events, from, sources.length),
      ]);
      const seconds = (performance.now() - started) / 1000;
      return {
        rate: sources.length / seconds,
        cpuPerSync: ((await side.worker.cpuMicros()) - cpuBefore) / sources.length,
      };
    };

    const warmup = ids.slice(0, Math.max(1, Math.floor(SYNCS / 5)));
    await round(sides.sluice, warmup);
    await round(sides.baseline, warmup);
    const results = { sluice: [] as number[], baseline: [] as number[] };
    const cpu = { sluice: [] as number[], baseline: [] as number[] };
    for (let i = 0; i < settings.rounds; i++) {
      const order = i % 2 ? (['baseline', 'sluice'] as const) : (['sluice', 'baseline'] as const);
      for (const name of order) {
        const r = await round(sides[name], ids);
        results[name].push(r.rate);
        cpu[name].push(r.cpuPerSync);
      }
      process.stderr.write(
        `  round ${i + 1}/${settings.rounds}: sluice ${results.sluice[i]!.toFixed(0)} syncs/s, ` +
          `baseline ${results.baseline[i]!.toFixed(0)} syncs/s\n`,
      );
    }
    const succeededRuns = await db.knex('sync_runs').where({ status: 'success' }).count({ n: '*' }).first();
    const expected = 2 * (warmup.length + settings.rounds * ids.length);
    if (Number(succeededRuns?.n) !== expected)
      throw new Error(`${succeededRuns?.n} runs succeeded, expected ${expected}`);
    return [
      {
        name: `sync end to end, no-op connector (${SYNCS} syncs, concurrency ${CONCURRENCY})`,
        unit: 'syncs/s',
        sluice: median(results.sluice),
        baseline: median(results.baseline),
        higherIsBetter: true,
        targets: [{ on: 'ratio', op: '≥', value: TARGET }],
        rounds: results,
        note:
          `worker CPU per sync (median of rounds): Sluice ${median(cpu.sluice).toFixed(0)} µs, ` +
          `baseline ${median(cpu.baseline).toFixed(0)} µs; producers run in the benchmark process`,
      },
    ];
  } finally {
    for (const child of children.reverse()) await child.stop();
    for (const prefix of [PREFIX, BASE_PREFIX]) await deleteKeys(redis, `${prefix}:*`).catch(() => 0);
    await base.close();
    redis.disconnect();
    reader.disconnect();
    await container.close();
    if (process.env.BENCH_KEEP_DATABASE !== '1') await db.drop();
    else await db.knex.destroy();
  }
}
