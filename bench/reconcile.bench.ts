/**
 * Issue item 10(c): ScheduleService.reconcile over BENCH_RECONCILE_SOURCES (default BENCH_SOURCES,
 * 100k) active sources, as a worker runs it at start, through the real container:
 * - from scratch (no scheduler in Redis): ≤ 15 s, and ≤ 2 KB (2000 B) of Redis per schedule;
 * - again with nothing to change (no drift): ≤ 15 s.
 * The targets are absolute. Beside the from-scratch time, for scale on a loaded machine: the floor
 * BullMQ sets, the same schedulers created with bare queue.upsertJobScheduler calls (same template,
 * same 256 calls in flight on an auto-pipelining connection, ids read before the clock starts),
 * in alternating order. BENCH_RECONCILE_ROUNDS (3) rounds of each, medians.
 * Bytes are the sum of MEMORY USAGE over the queue's keys (exact for them on a shared Redis); the
 * used_memory delta is printed beside it (includes the keyspace's own overhead, and any other
 * client's writes meanwhile).
 * BENCH_RECONCILE_KINDS (`interval,cron`): the same rows again with every source on a cron
 * schedule (`pattern` + `tz`, a mix of expressions and zones, half of them with jitter), the bare
 * baseline then upserting the same patterns.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { RETRY_BACKOFF } from '../src/queue/queue-factory';
import { schedulerId } from '../src/queue/queue-names';
import { FIRST_RUN_MIN_DELAY_MS, ScheduleService } from '../src/runs/schedule.service';
import type { SchedulableSource } from '../src/sources/source-store';
import { TaskWindow } from '../src/runs/task-window';
import type { BenchResult } from './lib/bench-result';
import { median } from './lib/bench-result';
import { createBenchDatabase } from './lib/bench-database';
import { BENCH_REDIS_URL, benchContainer, benchEnv } from './lib/bench-env';
import { deleteKeys, lazyFreed, memoryUsage, redisCpuSeconds, usedMemory } from './lib/redis-keys';
import { seedSources } from './lib/seed-sources';

const SOURCES = Number(process.env.BENCH_RECONCILE_SOURCES ?? process.env.BENCH_SOURCES ?? 100_000);
const ROUNDS = Number(process.env.BENCH_RECONCILE_ROUNDS ?? 3);
const PREFIX = 'sluice_bench_reconcile';
const MAX_SECONDS = 15;
const MAX_BYTES_PER_SCHEDULE = 2000;
const KINDS = (process.env.BENCH_RECONCILE_KINDS ?? 'interval,cron').split(',') as ('interval' | 'cron')[];
/** A fleet's mix: nightly, quarter-hourly, weekday mornings, hourly, monthly; four zones. */
const CRON_BARE_SAMPLE = Number(process.env.BENCH_RECONCILE_CRON_BARE ?? 2000);
const CRONS = ['0 2 * * *', '*/15 * * * *', '30 6 * * 1-5', '0 * * * *', '0 0 1 * *'];
const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo'];

export default async function reconcile(): Promise<BenchResult[]> {
  const db = await createBenchDatabase('sluice_bench_reconcile');
  const env = benchEnv(db.url, PREFIX);
  const container = benchContainer(env);
  const redis = new Redis(BENCH_REDIS_URL);
  const queuePattern = `${PREFIX}:*`;
  try {
    await deleteKeys(redis, queuePattern);
    let t = performance.now();
    await seedSources(db.knex, SOURCES, 100);
    process.stderr.write(
      `  seeded ${SOURCES} active sources in ${((performance.now() - t) / 1000).toFixed(1)} s\n`,
    );

    const { schedules, knex, queues, sourceStore } = container;
    let sources: SchedulableSource[] = [];
    /** The floor: every scheduler created with the library call alone, nothing read or compared. */
    const bare = async (limit = sources.length): Promise<number> => {
      await deleteKeys(redis, queuePattern);
      await lazyFreed(redis);
      const connection = new Redis(BENCH_REDIS_URL, {
        enableAutoPipelining: true,
        maxRetriesPerRequest: null,
      });
      const queue = new Queue(queues.sync.name, {
        connection,
        prefix: PREFIX,
        defaultJobOptions: queues.sync.defaultJobOptions,
      });
      try {
        await queue.waitUntilReady();
        // Timings (cron patterns with their jitter) worked out before the clock starts.
        const timed = sources.slice(0, limit).map((s) => ({ id: s.id, timing: ScheduleService.timingOf(s) }));
        const window = new TaskWindow(256);
        const started = performance.now();
        for (const source of timed) {
          const { timing } = source;
          const repeat =
            'every' in timing
              ? {
                  every: timing.every,
                  offset: ScheduleService.offsetFor(source.id, timing.every),
                  startDate: Date.now() + timing.every,
                }
              : { ...timing, startDate: Date.now() + FIRST_RUN_MIN_DELAY_MS };
          await window.run(() =>
            queue.upsertJobScheduler(schedulerId(source.id), repeat, {
              name: 'sync',
              data: { sourceId: source.id },
              opts: { attempts: container.config.syncAttempts, backoff: RETRY_BACKOFF },
            }),
          );
        }
        await window.drain();
        return (performance.now() - started) / 1000;
      } finally {
        await queue.close();
        connection.disconnect();
      }
    };
    const measure = async (kind: 'interval' | 'cron'): Promise<BenchResult[]> => {
      sources = await sourceStore.activeSchedulable('00000000-0000-0000-0000-000000000000', SOURCES + 1);
      // Bare cron upserts run BullMQ's strategy per call (milliseconds each): a sample, compared per schedule.
      const bareCount = kind === 'cron' ? Math.min(CRON_BARE_SAMPLE, sources.length) : sources.length;
      const floor: number[] = [];
      const scratch: number[] = [];
      const noDrift: number[] = [];
      const bytes: number[] = [];
      const usedDelta: number[] = [];
      const cpu = { node: [] as number[], redis: [] as number[] };
      for (let round = 1; round <= ROUNDS; round++) {
        if (round % 2 === 0) floor.push(await bare(bareCount));
        await deleteKeys(redis, queuePattern);
        await queues.sync.waitUntilReady();
        await lazyFreed(redis);
        const before = await usedMemory(redis);
        const redisCpu = await redisCpuSeconds(redis);
        const nodeCpu = process.cpuUsage();
        t = performance.now();
        const first = await schedules.reconcile(sourceStore);
        scratch.push((performance.now() - t) / 1000);
        const used = process.cpuUsage(nodeCpu);
        cpu.node.push((used.user + used.system) / 1e6);
        cpu.redis.push((await redisCpuSeconds(redis)) - redisCpu);
        const after = await usedMemory(redis);
        if (first.upserted !== SOURCES || (await queues.sync.getJobSchedulersCount()) !== SOURCES)
          throw new Error(`reconcile from scratch made ${first.upserted} schedulers, not ${SOURCES}`);
        const held = await memoryUsage(redis, queuePattern);
        bytes.push(held.bytes / SOURCES);
        usedDelta.push((after - before) / SOURCES);

        t = performance.now();
        const second = await schedules.reconcile(sourceStore);
        noDrift.push((performance.now() - t) / 1000);
        if (second.upserted || second.removed)
          throw new Error(`reconcile without drift changed ${second.upserted + second.removed} schedulers`);
        if (round % 2) floor.push(await bare(bareCount));
        process.stderr.write(
          `  ${kind} round ${round}/${ROUNDS}: from scratch ${scratch.at(-1)!.toFixed(1)} s, ` +
            `${bytes.at(-1)!.toFixed(0)} B/schedule (used_memory +${usedDelta.at(-1)!.toFixed(0)}), ` +
            `no drift ${noDrift.at(-1)!.toFixed(1)} s; bare upsertJobScheduler ${floor.at(-1)!.toFixed(1)} s\n`,
        );
      }
      const n = `${Math.round(SOURCES / 1000)}k${kind === 'cron' ? ' cron' : ''}`;
      const perSchedule = (seconds: number[], count: number) => seconds.map((x) => (x * 1000) / count);
      const cpuNote =
        `CPU per from-scratch reconcile (median): this process ${median(cpu.node).toFixed(1)} s, ` +
        `Redis ${median(cpu.redis).toFixed(1)} s (Redis counts every client's work meanwhile); ` +
        `the wall time can only approach the larger of the two when a core is free for each`;
      const fromScratch: BenchResult[] =
        kind === 'cron'
          ? [
              {
                name: `reconcile ${n} schedules, from scratch`,
                unit: 's',
                sluice: median(scratch),
                higherIsBetter: false,
                targets: [{ on: 'value', op: '≤', value: MAX_SECONDS }],
                rounds: { sluice: scratch },
                note: cpuNote,
              },
              {
                name: `reconcile ${n} schedules, per schedule vs bare upsertJobScheduler`,
                unit: 'ms',
                sluice: median(perSchedule(scratch, SOURCES)),
                baseline: median(perSchedule(floor, bareCount)),
                higherIsBetter: false,
                targets: [],
                rounds: { sluice: perSchedule(scratch, SOURCES), baseline: perSchedule(floor, bareCount) },
                note:
                  `baseline = bare queue.upsertJobScheduler calls with BullMQ's default cron strategy over the ` +
                  `first ${bareCount} sources (every next fire computed by cron-parser, milliseconds each); ` +
                  `reconcile over all ${SOURCES}, its strategy cached per expression and zone (src/runs/cron-next.ts)`,
              },
            ]
          : [
              {
                name: `reconcile ${n} schedules, from scratch vs bare upsertJobScheduler`,
                unit: 's',
                sluice: median(scratch),
                baseline: median(floor),
                higherIsBetter: false,
                targets: [{ on: 'value', op: '≤', value: MAX_SECONDS }],
                rounds: { sluice: scratch, baseline: floor },
                note:
                  `baseline = the same schedulers by bare queue.upsertJobScheduler calls (BullMQ's floor; ` +
                  `ratio = its time ÷ reconcile's); ${cpuNote}`,
              },
            ];
      return [
        ...fromScratch,
        {
          name: `reconcile ${n} schedules, Redis per schedule`,
          unit: 'B',
          sluice: median(bytes),
          higherIsBetter: false,
          targets: [{ on: 'value', op: '≤', value: MAX_BYTES_PER_SCHEDULE }],
          rounds: { sluice: bytes },
          note:
            `sum of MEMORY USAGE over the queue's keys ÷ schedules; used_memory grew by ` +
            `${usedDelta.map((b) => b.toFixed(0)).join(', ')} B/schedule (adds the keyspace's own ` +
            `overhead, ~20 B, and any other client's writes meanwhile)`,
        },
        {
          name: `reconcile ${n} schedules, no drift`,
          unit: 's',
          sluice: median(noDrift),
          higherIsBetter: false,
          targets: [{ on: 'value', op: '≤', value: MAX_SECONDS }],
          rounds: { sluice: noDrift },
        },
      ];
    };
    const results: BenchResult[] = [];
    for (const kind of KINDS) {
      if (kind === 'cron')
        // Every source on a cron: expressions and zones spread by row, jitter on every other one.
        await knex.raw(
          `WITH n AS (SELECT id, row_number() OVER (ORDER BY id) AS i FROM raw_data_sources)
           UPDATE raw_data_sources s
              SET schedule_cron = (?::text[])[1 + n.i % ?],
                  schedule_timezone = (?::text[])[1 + (n.i / 7) % ?],
                  schedule_jitter = CASE WHEN n.i % 2 = 0 THEN 60 ELSE 0 END
             FROM n WHERE n.id = s.id`,
          [CRONS, CRONS.length, ZONES, ZONES.length],
        );
      results.push(...(await measure(kind)));
    }
    return results;
  } finally {
    await deleteKeys(redis, queuePattern).catch(() => 0);
    redis.disconnect();
    await container.close();
    if (process.env.BENCH_KEEP_DATABASE !== '1') await db.drop();
    else await db.knex.destroy();
  }
}
