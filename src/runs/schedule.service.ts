import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import { duplicateRedis, type RedisClient } from '../redis/redis-client';
import type { SchedulableSource } from '../sources/source-store';
import { cronPattern } from '../sources/source-schedule';
import type { Logger } from '../logger';
import { SYNC_SHARDS_MAX } from '../config';
import type { Queues } from '../queue/queue-factory';
import { schedulerId, syncJobName, syncQueueName, syncShardOf, type SyncJobData } from '../queue/queue-names';
import { TaskWindow } from './task-window';
import { syncJobRetry, type PolicyDefaults } from './run-policy';
import { cachedCronStrategy } from './cron-next';

/** Where reconcile reads the active sources from, a page at a time (sources/source-store). */
export interface SchedulablePages {
  activeSchedulable(after: string, limit: number): Promise<SchedulableSource[]>;
}

export interface ReconcileReport {
  sources: number;
  upserted: number;
  removed: number;
  ms: number;
}

/** What reconcile reads back of a scheduler: its timing and the template it would fire with. */
interface StoredScheduler {
  every?: number;
  pattern?: string;
  tz?: string;
  name?: string;
  opts?: string;
  data?: string;
}

/** Sources read from Postgres per page (keyset by id). */
const PAGE = 5000;
/** Scheduler ids read from Redis per ZSCAN step (and per pipelined HMGET batch). */
const SCAN_COUNT = 1000;
/**
 * Redis calls in flight at once during a reconcile. A sliding window, not batches: Redis never
 * idles while Node builds the next calls, and one slow call does not hold up the rest.
 */
const IN_FLIGHT = 256;
/** A scheduler (re)created or re-timed never fires sooner than this (or one interval, if shorter). */
export const FIRST_RUN_MIN_DELAY_MS = 10_000;
const MINUTE_MS = 60_000;

/** JSON with sorted keys: the stored template is written by Lua's cjson, whose key order is not ours. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

function canonicalJson(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    return canonical(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/**
 * One BullMQ Job Scheduler per active source: `every` = refresh_interval, or `pattern` + `tz` for a
 * source with schedule_cron (timingOf; its rules are in sources/source-schedule). Designed around the
 * BullMQ 6 pitfalls: each source ticks at a stable phase of its interval (`offset`, hashed from
 * its id), so a mass creation is spread over the interval instead of bursting; a scheduler that
 * is created or re-timed gets a `startDate` at the first slot of that phase at least
 * FIRST_RUN_MIN_DELAY_MS away, so it never fires at once; the template is passed whole on every
 * upsert; overlapping ticks are absorbed by the run guard in Postgres.
 *
 * Redis cost: a scheduler is a hash (its template) plus its pending job (another hash) plus an
 * entry in two sorted sets. Redis keeps a hash compact (listpack) only while every value is at
 * most 64 bytes (hash-max-listpack-value); one longer value makes it a hash table about twice the
 * size. So the template is kept small on purpose: data `{"sourceId":"<uuid>"}` (51 bytes; a job
 * without runId is a tick, no `trigger` needed) and opts `attempts` + `backoff` (≈ 60 bytes), with
 * the retention of finished jobs set on the sync worker instead (createQueues). That is ≈ 1.8 KB
 * per schedule instead of ≈ 2.4 KB (bench/reconcile.bench.ts measures it).
 */
export class ScheduleService {
  constructor(
    /** The sync queues: a source's scheduler lives in its shard's queue (syncFor). */
    private readonly queues: Pick<Queues, 'syncShards' | 'syncFor' | 'prefixOf'>,
    /** The queue's own connection (reads of BullMQ's keys during reconcile). */
    private readonly redis: RedisClient,
    /** The global retry defaults a source without its own retry_attempts / retry_backoff_seconds ticks with. */
    private readonly defaults: Pick<PolicyDefaults, 'syncAttempts' | 'syncBackoffMs'>,
    private readonly logger: Logger,
  ) {}

  /** Where in its interval a source's ticks fall: 1..every-1 ms, the same on every upsert. */
  static offsetFor(sourceId: string, everyMs: number): number {
    const hash = createHash('sha1').update(sourceId).digest().readUInt32BE(0);
    return 1 + (hash % (everyMs - 1));
  }

  /**
   * The first tick of a new or re-timed scheduler: the earliest slot at the source's phase that
   * is at least FIRST_RUN_MIN_DELAY_MS (at most one interval) from now. An offset alone is not
   * enough: the next slot at a phase can be 1 ms away, i.e. an immediate run.
   */
  static firstRunAt(sourceId: string, everyMs: number, now = Date.now()): number {
    return ScheduleService.firstSlot(everyMs, ScheduleService.offsetFor(sourceId, everyMs), now);
  }

  private static firstSlot(everyMs: number, offset: number, now: number): number {
    const earliest = now + Math.min(FIRST_RUN_MIN_DELAY_MS, everyMs);
    const slot = Math.floor(earliest / everyMs) * everyMs + offset;
    return slot >= earliest ? slot : slot + everyMs;
  }

  /**
   * The whole template, every time: BullMQ replaces the stored one on each upsert. Its opts are the
   * source's retry policy (runs/run-policy), so a tick's job retries as its source says; its name
   * (`sync: <source name>`, at most 64 bytes) is what the dashboard lists the ticks by; the
   * scheduler id stays `source-<id>`.
   */
  private jobTemplate(
    source: Pick<SchedulableSource, 'id' | 'name' | 'retry_attempts' | 'retry_backoff_seconds'>,
  ) {
    const data: SyncJobData = { sourceId: source.id };
    return { name: syncJobName(source.name), data, opts: syncJobRetry(source, this.defaults) };
  }

  /**
   * How a source's scheduler fires: a cron source on its pattern (jitter applied) in its zone, any
   * other on its interval. Reconcile compares a stored scheduler with exactly this.
   */
  static timingOf(source: SchedulableSource): { every: number } | { pattern: string; tz: string } {
    if (source.schedule_cron)
      return {
        pattern: cronPattern(source.id, source.schedule_cron, source.schedule_jitter ?? 0),
        tz: source.schedule_timezone ?? 'UTC',
      };
    return { every: source.refresh_interval * 1000 };
  }

  /**
   * `cronStart`: the earliest first fire of a cron scheduler (now + FIRST_RUN_MIN_DELAY_MS by
   * default); reconcile passes one bound for all, so their next fires are computed once per
   * expression and zone (cron-next.ts).
   */
  async apply(source: SchedulableSource, queue?: Queue, cronStart?: number): Promise<void> {
    queue ??= this.queues.syncFor(source.id);
    if (!source.is_active) return this.remove(source.id);
    const timing = ScheduleService.timingOf(source);
    if ('pattern' in timing) {
      // BullMQ's own strategy (cron-parser, the zone's rules, DST included) picks each fire. The
      // first is the first fire after startDate, so a new or changed cron never runs at once either.
      // After downtime the one pending tick runs late, once; the next is computed from the time it
      // is taken, so missed fires are not replayed (see "Schedules" in README).
      await queue.upsertJobScheduler(
        schedulerId(source.id),
        { ...timing, startDate: cronStart ?? Date.now() + FIRST_RUN_MIN_DELAY_MS },
        this.jobTemplate(source),
      );
      return;
    }
    const every = source.refresh_interval * 1000;
    const offset = ScheduleService.offsetFor(source.id, every);
    // BullMQ reads startDate only when the scheduler is new or its `every` changed; an upsert
    // that keeps `every` keeps the pending tick where it was.
    await queue.upsertJobScheduler(
      schedulerId(source.id),
      { every, offset, startDate: ScheduleService.firstSlot(every, offset, Date.now()) },
      this.jobTemplate(source),
    );
  }

  /**
   * From every shard, not only the source's: a scheduler left behind in another shard (SYNC_SHARDS
   * changed since it was made, before a reconcile re-homed it) must not keep ticking either.
   */
  async remove(sourceId: string): Promise<void> {
    const { syncShards } = this.queues;
    await Promise.all(syncShards.map((q) => q.removeJobScheduler(schedulerId(sourceId))));
  }

  /**
   * Existing schedulers, read straight from BullMQ's keys: ZSCAN over the `repeat` sorted set
   * (every scheduler id; a scan returns each member present throughout at least once, even while
   * ticks move their scores) and, per step, one pipelined HMGET of the fields reconcile compares,
   * sent without waiting so Redis answers one batch while Node reads the previous one.
   * getJobSchedulers would fetch and parse every field of every scheduler, most of a no-drift
   * reconcile's time. A member whose hash is gone reads as missing and is simply upserted.
   */
  private async existing(redis: RedisClient, queue: Queue): Promise<Map<string, StoredScheduler>> {
    const repeatKey = queue.toKey('repeat');
    const out = new Map<string, StoredScheduler>();
    const batches: Promise<void>[] = [];
    let cursor = '0';
    do {
      const [next, flat] = await redis.zscan(repeatKey, cursor, 'COUNT', SCAN_COUNT);
      cursor = next;
      const ids: string[] = [];
      for (let i = 0; i < flat.length; i += 2) if (!out.has(flat[i]!)) ids.push(flat[i]!);
      for (const id of ids) out.set(id, {});
      if (!ids.length) continue;
      const pipeline = redis.pipeline();
      for (const id of ids)
        pipeline.hmget(`${repeatKey}:${id}`, 'every', 'pattern', 'tz', 'opts', 'data', 'name');
      batches.push(
        pipeline.exec().then((replies) =>
          ids.forEach((id, i) => {
            const [err, fields] = replies?.[i] ?? [];
            if (err || !Array.isArray(fields)) return;
            const [every, pattern, tz, opts, data, name] = fields as (string | null)[];
            out.set(id, {
              every: every ? Number(every) : undefined,
              pattern: pattern ?? undefined,
              tz: tz ?? undefined,
              name: name ?? undefined,
              opts: opts ?? undefined,
              data: data ?? undefined,
            });
          }),
        ),
      );
    } while (cursor !== '0');
    await Promise.all(batches);
    return out;
  }

  /**
   * Makes the schedulers match the table: missing, re-timed and out-of-date ones (a template other
   * than today's, e.g. SYNC_ATTEMPTS changed) upserted, orphans removed. A scheduler found in a
   * shard other than its source's (SYNC_SHARDS changed), or in a retired shard (`sync-<n>` with n at
   * or above SYNC_SHARDS, up to SYNC_SHARDS_MAX), is an orphan there and upserted in the right
   * one. Postgres pages are read one ahead while Redis works through the previous one. Its writes
   * go through queues of its own on an auto-pipelining connection: the many calls in flight leave
   * in a few writes, not one system call each, which saves CPU on both ends.
   */
  async reconcile(store: SchedulablePages): Promise<ReconcileReport> {
    const started = performance.now();
    const connection = duplicateRedis(this.redis, { enableAutoPipelining: true });
    // Failures reach reconcile through its calls; these only keep the emitters from throwing.
    const warn = (err: Error) => this.logger.warn({ err: err.message }, 'reconcile connection error');
    connection.on('error', warn);
    const { syncShards } = this.queues;
    const opened: Queue[] = [];
    const open = (name: string) => {
      const queue = new Queue(name, {
        connection,
        prefix: this.queues.prefixOf(name),
        defaultJobOptions: syncShards[0]!.defaultJobOptions,
        settings: { repeatStrategy: cachedCronStrategy() },
      });
      queue.on('error', warn);
      opened.push(queue);
      return queue;
    };
    try {
      const shards = syncShards.map((q) => open(q.name));
      // Retired shards (SYNC_SHARDS was larger once): only those that still hold schedulers.
      const retiredNames = Array.from({ length: SYNC_SHARDS_MAX - shards.length }, (_, i) =>
        syncQueueName(shards.length + i),
      );
      const held = await Promise.all(
        retiredNames.map((name) => connection.exists(`${this.queues.prefixOf(name)}:${name}:repeat`)),
      );
      const retired = retiredNames.filter((_, i) => held[i]).map(open);
      return await this.reconcileWith(store, shards, retired, connection, started);
    } finally {
      await Promise.all(opened.map((q) => q.close().catch(() => undefined)));
      connection.disconnect();
    }
  }

  private async reconcileWith(
    store: SchedulablePages,
    shards: Queue[],
    retired: Queue[],
    redis: RedisClient,
    started: number,
  ): Promise<ReconcileReport> {
    const queue = shards[0]!;
    const readPage = (after: string): Promise<SchedulableSource[]> => store.activeSchedulable(after, PAGE);
    let nextPage = readPage('00000000-0000-0000-0000-000000000000');
    // Read ahead: if Redis fails meanwhile, this page's own failure must not go unhandled.
    nextPage.catch(() => undefined);
    // Per queue: the active shards' first (index = shard), then the retired ones.
    const existing = await Promise.all([...shards, ...retired].map((q) => this.existing(redis, q)));

    // What BullMQ stores as the template: queue defaults with ours on top, as upsertJobScheduler
    // merges them. Stored opts are the same string for every scheduler (one parse, then memoized);
    // stored data is the JSON we sent, compared as is before falling back to a parse.
    // Per source since the retry policy is (most share the defaults: one expected string each).
    const expected = new Map<string, string>();
    const expectedOpts = (source: SchedulableSource) => {
      const opts = this.jobTemplate(source).opts;
      const key = `${opts.attempts}/${opts.backoff.delay}`;
      let value = expected.get(key);
      if (value === undefined)
        expected.set(key, (value = canonical({ ...queue.defaultJobOptions, ...opts })));
      return value;
    };
    // Stored opts are the same few strings over all schedulers: each parsed once, then memoized.
    const parsed = new Map<string, string | undefined>();
    const optsMatch = (stored: string | undefined, source: SchedulableSource) => {
      if (stored === undefined) return false;
      if (!parsed.has(stored)) parsed.set(stored, canonicalJson(stored));
      return parsed.get(stored) === expectedOpts(source);
    };
    const dataMatch = (stored: string | undefined, sourceId: string) => {
      const data: SyncJobData = { sourceId };
      return stored === JSON.stringify(data) || canonicalJson(stored) === canonical(data);
    };
    const timingMatch = (source: SchedulableSource, stored: StoredScheduler) => {
      const timing = ScheduleService.timingOf(source);
      return 'pattern' in timing
        ? stored.every === undefined && stored.pattern === timing.pattern && stored.tz === timing.tz
        : stored.pattern === undefined && stored.every === timing.every;
    };
    const upToDate = (source: SchedulableSource, stored: StoredScheduler | undefined) =>
      stored !== undefined &&
      timingMatch(source, stored) &&
      optsMatch(stored.opts, source) &&
      dataMatch(stored.data, source.id) &&
      (source.name === undefined || stored.name === syncJobName(source.name));

    // One first-fire bound for every cron scheduler this reconcile writes: a whole minute at least
    // FIRST_RUN_MIN_DELAY_MS plus a minute away, so it is still ahead when the last one is written
    // and every next fire is one computation per expression and zone. A fire inside that lead is
    // skipped once, for re-created schedulers only (an up-to-date one is not touched).
    const cronStart = Math.ceil((Date.now() + FIRST_RUN_MIN_DELAY_MS + MINUTE_MS) / MINUTE_MS) * MINUTE_MS;
    const window = new TaskWindow(IN_FLIGHT);
    let upserted = 0;
    let sources = 0;
    for (;;) {
      const page = await nextPage;
      if (!page.length) break;
      nextPage = page.length < PAGE ? Promise.resolve([]) : readPage(page[page.length - 1]!.id);
      nextPage.catch(() => undefined);
      sources += page.length;
      for (const source of page) {
        const id = schedulerId(source.id);
        const shard = syncShardOf(source.id, shards.length);
        const stored = existing[shard]!.get(id);
        existing[shard]!.delete(id);
        if (upToDate(source, stored)) continue;
        upserted += 1;
        await window.run(() => this.apply(source, shards[shard], cronStart));
      }
    }
    // Whatever is left has no active source behind it in that queue (gone, or homed in another shard).
    let removed = 0;
    for (const [i, q] of [...shards, ...retired].entries())
      for (const id of existing[i]!.keys()) {
        removed += 1;
        await window.run(() => q.removeJobScheduler(id));
      }
    await window.drain();
    const report = {
      sources,
      upserted,
      removed,
      ms: Math.round(performance.now() - started),
    };
    this.logger.info(report, 'schedules reconciled');
    return report;
  }
}
