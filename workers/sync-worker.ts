import { DelayedError, UnrecoverableError, Worker, type Job, type WorkerOptions } from 'bullmq';
import { workerConnection, type RedisClient } from '../src/redis/redis-client';
import type { Logger } from '../src/logger';
import { KEEP_COMPLETED, KEEP_FAILED } from '../src/queue/queue-factory';
import {
  bullPrefix,
  purgeDedupId,
  QUEUES,
  syncQueueName,
  type PurgeJobData,
  type QueueName,
  type SyncJobData,
} from '../src/queue/queue-names';
import type { Queue } from 'bullmq';
import type { SourcePurges } from '../src/sources/source-purges';
import type { PurgeProcessor } from './purge.processor';
import type { JobOutcome, Metrics } from '../src/metrics/metrics';
import type { JobScope } from './job-scope';
import type { SourceCounts } from '../src/sources/source-counts';
import type { RunReconciler } from '../src/runs/run-reconciler';
import type { SchedulablePages, ScheduleService } from '../src/runs/schedule.service';
import type { SourceDrafts } from '../src/sources/source-drafts';
import type { SyncAllProcessor } from './sync-all.processor';
import type { SyncProcessor } from './sync.processor';
import type { RunLifecycle } from '../src/runs/run-lifecycle';
import { GroupFullError } from '../src/runs/concurrency-gate';
import type { RunLogs } from '../src/runs/run-log';
import type { RecordRetention } from '../src/records/record-retention';
import type { TestProcessor } from './test.processor';
import { RUN_CANCELLED } from '../src/runs/run-cancel';
import type { RunCancelListener } from './run-cancel-listener';
import type { SyncResult } from './sync.processor';

export interface SyncWorkerOptions {
  redisUrl: string;
  /** REDIS_CLUSTER_NODES: the workers connect to that cluster instead (src/redis/redis-client.ts). */
  redisClusterNodes?: { host: string; port: number }[];
  /** QUEUE_PREFIX: of the locks here, and (bullPrefix) of each queue's keys. */
  prefix: string;
  /** The sync shards this process consumes (SYNC_SHARDS_CONSUME); shard 0 (`sync`) alone unless given. */
  syncShards?: number[];
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** Times a job may stall (its worker died under it) and run again; one more fails its run. */
  maxStalledCount?: number;
  shutdownGraceMs: number;
  reconcileIntervalMs: number;
}

export interface SyncWorkerDeps {
  redis: RedisClient;
  logger: Logger;
  lifecycle: RunLifecycle;
  /** A run failed here (its worker died under it) gets its last run-log line from here. */
  runLogs?: Pick<RunLogs, 'append'>;
  schedules: ScheduleService;
  /** Where the schedule reconcile reads the active sources from. */
  sources: SchedulablePages;
  reconciler: RunReconciler;
  /** Folded on the repair timer, so the counts ledger stays small between list reads. */
  counts?: SourceCounts;
  /** Expired unsaved-test drafts (sealed secrets) are purged on the repair timer. */
  drafts?: Pick<SourceDrafts, 'purgeExpired'>;
  sync: SyncProcessor;
  test: TestProcessor;
  syncAll: SyncAllProcessor;
  /** Deleted sources' records, removed in batches; the repair re-queues purges whose job was lost. */
  purge?: { processor: PurgeProcessor; purges: Pick<SourcePurges, 'pending'>; queue: Queue };
  /** Job outcomes, durations, records landed and repairs; absent, nothing is counted. */
  metrics?: Metrics;
  /** Landing partitions kept ahead and retention applied, at start and then hourly. */
  retention?: Pick<RecordRetention, 'maintain'>;
  /** Cancels published by any API process: a sync job this process holds is aborted (run-cancel.ts). */
  cancels?: Pick<RunCancelListener, 'listen' | 'close'>;
  /** Other long-lived parts of the worker role (notifications): started after the queues, closed with them. */
  services?: { start(): Promise<void>; close(): Promise<void> }[];
}

/** How often (at most, across all workers) record partitions are kept ahead and retention applied. */
export const RETENTION_INTERVAL_MS = 3_600_000;

/** Ids in job data that every log line of the job carries (ids only: job data holds no secret). */
const JOB_IDS = ['sourceId', 'runId', 'draftId', 'batchId', 'requestId'] as const;

const SHUTDOWN_REASON = 'worker shutting down';

/** After the grace, how long jobs get to hand themselves back (the same as the process's deadline, src/main.ts). */
const HAND_BACK_MS = 5000;

/**
 * The worker role: BullMQ workers for the three queues, schedule reconciliation at start, and a
 * periodic repair of lost runs. `close()` stops taking jobs, lets active ones finish for
 * shutdownGraceMs, then hands the rest back to the queue so another worker runs them.
 */
export class SyncWorker {
  private readonly workers: Worker[] = [];
  /** One per consumed sync shard. */
  private readonly syncWorkers: Worker<SyncJobData>[] = [];
  private connection?: { close(): void };
  private timer?: NodeJS.Timeout;
  private closing?: Promise<void>;
  private cluster = false;

  constructor(
    private readonly deps: SyncWorkerDeps,
    private readonly options: SyncWorkerOptions,
  ) {}

  async start(): Promise<void> {
    const { options, deps } = this;
    const redis = (this.connection = workerConnection(options));
    const cluster = (this.cluster = Boolean(options.redisClusterNodes?.length));
    const common = {
      connection: redis.connection,
      prefix: options.prefix,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: options.maxStalledCount ?? 1,
    };
    const on = (name: string) => ({ ...common, prefix: bullPrefix(options.prefix, name, cluster) });
    for (const shard of options.syncShards ?? [0])
      this.syncWorkers.push(this.syncWorker(syncQueueName(shard), on));
    this.workers.push(
      ...this.syncWorkers,
      new Worker(
        QUEUES.test,
        (job, _token, signal) =>
          this.measured(
            QUEUES.test,
            job,
            (scope) => deps.test.process(job, signal, scope),
            (result) => (result.ok ? 'success' : 'failed'),
          ),
        { ...on(QUEUES.test), concurrency: 5 },
      ),
      new Worker(
        QUEUES.syncAll,
        (job) =>
          this.measured(
            QUEUES.syncAll,
            job,
            () => deps.syncAll.process(job),
            () => 'success',
          ),
        { ...on(QUEUES.syncAll), concurrency: 1 },
      ),
    );
    if (deps.purge) {
      const { processor } = deps.purge;
      this.workers.push(
        new Worker<PurgeJobData>(
          QUEUES.purge,
          (job, _token, signal) =>
            this.measured(
              QUEUES.purge,
              job,
              () => processor.process(job, signal),
              () => 'success',
            ),
          // One at a time: a purge is background work and must not compete with landing.
          { ...on(QUEUES.purge), concurrency: 1 },
        ),
      );
    }
    // The job is held by at most one of them: the others answer false.
    await deps.cancels?.listen((jobId) =>
      this.syncWorkers.map((w) => w.cancelJob(jobId, RUN_CANCELLED)).some(Boolean),
    );
    for (const w of this.workers)
      w.on('error', (err) => deps.logger.warn({ queue: w.name, err: err.message }, 'worker error'));
    await Promise.all(this.workers.map((w) => w.waitUntilReady()));
    await Promise.all((deps.services ?? []).map((s) => s.start()));
    void this.reconcileSchedules();
    void this.maintainRecords();
    this.timer = setInterval(() => void this.repair(), options.reconcileIntervalMs);
    this.timer.unref();
    deps.logger.info(
      { concurrency: options.concurrency, syncQueues: this.syncWorkers.map((w) => w.name) },
      'worker started',
    );
  }

  /** The worker of one sync queue (a shard); every shard's jobs are processed alike. */
  private syncWorker(name: string, on: (name: string) => WorkerOptions): Worker<SyncJobData> {
    const { options, deps } = this;
    const sync = new Worker<SyncJobData>(
      name,
      (job, token, signal) =>
        this.measured(
          QUEUES.sync,
          job,
          async (scope) => {
            try {
              return await deps.sync.process(job, signal, scope);
            } catch (err) {
              if (signal?.aborted && String(signal.reason) === SHUTDOWN_REASON)
                return this.handBack(job, token, scope);
              if (err instanceof GroupFullError) return this.waitForSlot(job, token, err);
              // Its run was cancelled (and closed) by whoever asked: the job ends here, no retry.
              if (signal?.aborted && String(signal.reason) === RUN_CANCELLED) return cancelledJob(job, scope);
              throw err;
            }
          },
          (result) => result.status,
        ),
      // Retention of sync jobs lives here, not in each job (see createQueues).
      {
        ...on(name),
        // WORKER_CONCURRENCY bounds the process, not each shard: split over the shards consumed
        // (rounded up). Sources hash evenly over the shards, so their loads are alike.
        concurrency: Math.ceil(options.concurrency / (options.syncShards?.length || 1)),
        removeOnComplete: KEEP_COMPLETED,
        removeOnFail: KEEP_FAILED,
      },
    );
    sync.on('failed', (job, err) => void this.onSyncFailed(job, err));
    return sync;
  }

  /**
   * Runs one job with its scope (a logger bound to the job's ids) and counts its outcome and
   * duration when it ends: a few in-memory increments per job, no I/O.
   */
  private async measured<T>(
    queue: QueueName,
    job: Job,
    work: (scope: JobScope) => Promise<T>,
    outcomeOf: (result: T) => JobOutcome,
  ): Promise<T> {
    const data = (job.data ?? {}) as Record<string, unknown>;
    const ids: Record<string, unknown> = { queue, jobId: job.id };
    for (const key of JOB_IDS) if (typeof data[key] === 'string') ids[key] = data[key];
    const scope: JobScope = { logger: this.deps.logger.child(ids) };
    const started = performance.now();
    let outcome: JobOutcome = 'failed';
    try {
      const result = await work(scope);
      outcome = outcomeOf(result);
      return result;
    } catch (err) {
      outcome =
        err instanceof DelayedError
          ? 'handed_back'
          : err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)
            ? 'failed'
            : 'retried';
      throw err;
    } finally {
      const { metrics } = this.deps;
      metrics?.jobFinished(queue, scope.sourceType, outcome, (performance.now() - started) / 1000);
      if (outcome === 'success' && scope.landed) metrics?.landed(scope.sourceType, scope.landed);
    }
  }

  /** Only one worker reconciles schedules at a time: a short Redis lock elects it. */
  async reconcileSchedules(): Promise<void> {
    const lock = `${this.options.prefix}:lock:reconcile-schedules`;
    const got = await this.deps.redis.set(lock, String(process.pid), 'PX', 120_000, 'NX').catch(() => null);
    if (!got) return;
    try {
      const report = await this.deps.schedules.reconcile(this.deps.sources);
      this.deps.metrics?.repaired('schedules_restored', report.upserted);
      this.deps.metrics?.repaired('schedules_removed', report.removed);
      // Marks this Redis as holding the schedulers: a wipe or an empty restart takes the mark with them.
      await this.deps.redis.set(this.reconciledKey(), new Date().toISOString());
    } catch (err) {
      this.deps.logger.error({ err }, 'schedule reconcile failed');
    } finally {
      await this.deps.redis.del(lock).catch(() => undefined);
    }
  }

  /**
   * Record partitions and retention: at most once an hour over all workers. The lock is left to
   * expire rather than deleted, so it is also the hour's marker.
   */
  async maintainRecords(): Promise<void> {
    if (!this.deps.retention) return;
    const lock = `${this.options.prefix}:lock:record-retention`;
    const got = await this.deps.redis
      .set(lock, String(process.pid), 'PX', RETENTION_INTERVAL_MS, 'NX')
      .catch(() => null);
    if (!got) return;
    await this.deps.retention
      .maintain()
      .catch((err) => this.deps.logger.error({ err }, 'record retention failed'));
  }

  async repair(): Promise<void> {
    void this.maintainRecords();
    const lock = `${this.options.prefix}:lock:repair-runs`;
    const got = await this.deps.redis
      .set(lock, String(process.pid), 'PX', this.options.reconcileIntervalMs, 'NX')
      .catch(() => null);
    if (!got) return;
    const repaired = await this.deps.reconciler
      .repair()
      .catch((err) => this.deps.logger.error({ err }, 'run repair failed'));
    if (repaired) {
      this.deps.metrics?.repaired('runs', repaired.runs);
      this.deps.metrics?.repaired('sources', repaired.sources);
    }
    await this.deps.counts
      ?.fold()
      .catch((err) => this.deps.logger.warn({ err }, 'folding raw_data_source_counts failed'));
    const purged = await this.deps.drafts
      ?.purgeExpired()
      .catch((err) => this.deps.logger.warn({ err }, 'purging expired source drafts failed'));
    if (purged) this.deps.logger.info({ drafts: purged }, 'expired source drafts purged');
    await this.requeuePurges().catch((err) =>
      this.deps.logger.warn({ err }, 're-queueing pending source purges failed'),
    );
    // Redis lost its data (flushed, or restarted without persistence): the schedulers went too, and
    // nothing would sync on schedule again until a worker restarted. Put them back now.
    const marked = await this.deps.redis.exists(this.reconciledKey()).catch(() => 1);
    if (!marked) {
      this.deps.logger.warn('schedules missing from Redis (data lost?): reconciling');
      await this.reconcileSchedules();
    }
  }

  /** Purges recorded by a delete whose job never made it to Redis (or was lost with it). */
  private async requeuePurges(): Promise<void> {
    const { purge } = this.deps;
    if (!purge) return;
    for (const sourceId of await purge.purges.pending())
      await purge.queue.add('purge', { sourceId } satisfies PurgeJobData, {
        deduplication: { id: purgeDedupId(sourceId) },
      });
  }

  private reconciledKey(): string {
    return `${this.options.prefix}:meta:schedules-reconciled`;
  }

  /** A job that failed outside its processor (stalled too often: the worker died each time) still closes its run. */
  private async onSyncFailed(job: Job<SyncJobData> | undefined, err: Error): Promise<void> {
    // A stall is decided here, outside any processor: the only place it can be counted.
    if (job && err.message.includes('stalled'))
      this.deps.metrics?.jobFinished(QUEUES.sync, undefined, 'stalled');
    const runId = job?.data.runId;
    if (!job || !runId) return;
    const stalled = err.message.includes('stalled');
    const finalAttempt = job.attemptsMade >= (job.opts.attempts ?? 1) || stalled;
    if (!finalAttempt) return;
    const message = stalled ? this.stalledMessage() : err.message;
    const closed = await this.deps.lifecycle.fail(runId, message.slice(0, 1000)).catch(() => undefined);
    if (closed)
      await this.deps.runLogs
        ?.append(
          { runId, sourceId: closed.source_id, attempt: closed.attempt },
          'error',
          'finished',
          `sync failed: ${message}`,
        )
        .catch(() => undefined);
  }

  /**
   * Why a run whose job stalled too often failed: BullMQ says only "job stalled more than allowable
   * limit". Most likely the source itself killed the process (out of memory on a huge record, a
   * crash in a driver), so running it again would only take the next worker down too.
   */
  private stalledMessage(): string {
    const deaths = (this.options.maxStalledCount ?? 1) + 1;
    return (
      `the worker process running this sync died ${deaths} times (killed, out of memory or crashed; ` +
      `WORKER_MAX_STALLED=${deaths - 1}): the run is failed rather than run again, so this source cannot ` +
      'keep crashing workers (job stalled more than allowable limit)'
    );
  }

  /** Back to delayed until a slot may be free: moveToDelayed spends no retry attempt. */
  private async waitForSlot(
    job: Job<SyncJobData>,
    token: string | undefined,
    err: GroupFullError,
  ): Promise<never> {
    await job.updateData({ ...job.data, gateWaits: (job.data.gateWaits ?? 0) + 1 });
    await job.moveToDelayed(Date.now() + err.delayMs, token);
    throw new DelayedError();
  }

  private async handBack(job: Job, token: string | undefined, scope: JobScope): Promise<never> {
    await job.moveToDelayed(Date.now() + 1000, token);
    scope.logger.info('job handed back at shutdown');
    throw new DelayedError();
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      clearInterval(this.timer);
      const grace = setTimeout(() => {
        for (const w of this.workers) w.cancelAllJobs(SHUTDOWN_REASON);
      }, this.options.shutdownGraceMs);
      const closed = Promise.all([
        ...this.workers.map((w) => w.close()),
        ...(this.deps.services ?? []).map((s) => s.close()),
      ]);
      // On a Redis Cluster, BullMQ's close can wait for ever on the QUIT of its blocking connection
      // (seen after a master was killed, and now and then in the scaling benchmark): there it is
      // bounded by the time the process gives itself, and what is left open is dropped below.
      const bound = this.cluster ? this.options.shutdownGraceMs + HAND_BACK_MS : undefined;
      let deadline: NodeJS.Timeout | undefined;
      const timedOut =
        bound === undefined
          ? undefined
          : new Promise<true>((resolve) => (deadline = setTimeout(() => resolve(true), bound)));
      if ((await Promise.race([closed.then(() => false), timedOut ?? closed.then(() => false)])) === true)
        this.deps.logger.warn(
          { ms: bound },
          'worker close did not finish on the cluster; dropping its connections',
        );
      clearTimeout(deadline);
      clearTimeout(grace);
      await this.deps.cancels?.close();
      this.connection?.close();
    })());
  }
}

/** A sync job whose run was cancelled mid-run: completed (not failed, so never retried), with why. */
function cancelledJob(job: Job<SyncJobData>, scope: JobScope): SyncResult {
  scope.logger.info('sync cancelled: the job stopped');
  return { runId: job.data.runId, status: 'skipped', reason: 'the run was cancelled' };
}
