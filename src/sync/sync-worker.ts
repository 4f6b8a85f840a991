import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger';
import { KEEP_COMPLETED, KEEP_FAILED } from '../queue/queue-factory';
import { QUEUES, type SyncJobData } from '../queue/queue-names';
import type { SourceCounts } from '../sources/source-counts';
import type { RunReconciler } from './run-reconciler';
import type { ScheduleService } from './schedule.service';
import type { SyncAllProcessor } from './sync-all.processor';
import type { SyncProcessor } from './sync.processor';
import type { SyncRunRepository } from './sync-run.repository';
import type { TestProcessor } from './test.processor';
import type { EventBus } from '../events/event-bus';
import type { Knex } from 'knex';

export interface SyncWorkerOptions {
  redisUrl: string;
  prefix: string;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  shutdownGraceMs: number;
  reconcileIntervalMs: number;
}

export interface SyncWorkerDeps {
  knex: Knex;
  redis: Redis;
  logger: Logger;
  events: EventBus;
  runs: SyncRunRepository;
  schedules: ScheduleService;
  reconciler: RunReconciler;
  /** Folded on the repair timer, so the counts ledger stays small between list reads. */
  counts?: SourceCounts;
  sync: SyncProcessor;
  test: TestProcessor;
  syncAll: SyncAllProcessor;
}

const SHUTDOWN_REASON = 'worker shutting down';

/**
 * The worker role: BullMQ workers for the three queues, schedule reconciliation at start, and a
 * periodic repair of lost runs. `close()` stops taking jobs, lets active ones finish for
 * shutdownGraceMs, then hands the rest back to the queue so another worker runs them.
 */
export class SyncWorker {
  private readonly workers: Worker[] = [];
  private timer?: NodeJS.Timeout;
  private closing?: Promise<void>;

  constructor(
    private readonly deps: SyncWorkerDeps,
    private readonly options: SyncWorkerOptions,
  ) {}

  async start(): Promise<void> {
    const { options, deps } = this;
    const common = {
      connection: { url: options.redisUrl, maxRetriesPerRequest: null },
      prefix: options.prefix,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: 1,
    };
    const sync = new Worker<SyncJobData>(
      QUEUES.sync,
      async (job, token, signal) => {
        try {
          return await deps.sync.process(job, signal);
        } catch (err) {
          if (signal?.aborted && String(signal.reason) === SHUTDOWN_REASON) return this.handBack(job, token);
          throw err;
        }
      },
      // Retention of sync jobs lives here, not in each job (see createQueues).
      {
        ...common,
        concurrency: options.concurrency,
        removeOnComplete: KEEP_COMPLETED,
        removeOnFail: KEEP_FAILED,
      },
    );
    sync.on('failed', (job, err) => void this.onSyncFailed(job, err));
    this.workers.push(
      sync,
      new Worker(QUEUES.test, (job, _token, signal) => deps.test.process(job, signal), {
        ...common,
        concurrency: 5,
      }),
      new Worker(QUEUES.syncAll, (job) => deps.syncAll.process(job), { ...common, concurrency: 1 }),
    );
    for (const w of this.workers)
      w.on('error', (err) => deps.logger.warn({ queue: w.name, err: err.message }, 'worker error'));
    await Promise.all(this.workers.map((w) => w.waitUntilReady()));
    void this.reconcileSchedules();
    this.timer = setInterval(() => void this.repair(), options.reconcileIntervalMs);
    this.timer.unref();
    deps.logger.info({ concurrency: options.concurrency }, 'worker started');
  }

  /** Only one worker reconciles schedules at a time: a short Redis lock elects it. */
  async reconcileSchedules(): Promise<void> {
    const lock = `${this.options.prefix}:lock:reconcile-schedules`;
    const got = await this.deps.redis.set(lock, String(process.pid), 'PX', 120_000, 'NX').catch(() => null);
    if (!got) return;
    try {
      await this.deps.schedules.reconcile(this.deps.knex);
      // Marks this Redis as holding the schedulers: a wipe or an empty restart takes the mark with them.
      await this.deps.redis.set(this.reconciledKey(), new Date().toISOString());
    } catch (err) {
      this.deps.logger.error({ err }, 'schedule reconcile failed');
    } finally {
      await this.deps.redis.del(lock).catch(() => undefined);
    }
  }

  async repair(): Promise<void> {
    const lock = `${this.options.prefix}:lock:repair-runs`;
    const got = await this.deps.redis
      .set(lock, String(process.pid), 'PX', this.options.reconcileIntervalMs, 'NX')
      .catch(() => null);
    if (!got) return;
    await this.deps.reconciler.repair().catch((err) => this.deps.logger.error({ err }, 'run repair failed'));
    await this.deps.counts
      ?.fold()
      .catch((err) => this.deps.logger.warn({ err }, 'folding raw_data_source_counts failed'));
    // Redis lost its data (flushed, or restarted without persistence): the schedulers went too, and
    // nothing would sync on schedule again until a worker restarted. Put them back now.
    const marked = await this.deps.redis.exists(this.reconciledKey()).catch(() => 1);
    if (!marked) {
      this.deps.logger.warn('schedules missing from Redis (data lost?): reconciling');
      await this.reconcileSchedules();
    }
  }

  private reconciledKey(): string {
    return `${this.options.prefix}:meta:schedules-reconciled`;
  }

  /** A job that failed outside its processor (stalled too often: the worker died each time) still closes its run. */
  private async onSyncFailed(job: Job<SyncJobData> | undefined, err: Error): Promise<void> {
    const runId = job?.data.runId;
    if (!job || !runId) return;
    const finalAttempt = job.attemptsMade >= (job.opts.attempts ?? 1) || err.message.includes('stalled');
    if (!finalAttempt) return;
    const closed = await this.deps.runs.fail(runId, err.message.slice(0, 1000)).catch(() => undefined);
    if (closed)
      await this.deps.events.publish('sync.failed', {
        source_id: job.data.sourceId,
        run_id: runId,
        data: { error: err.message },
      });
  }

  private async handBack(job: Job, token?: string): Promise<never> {
    await job.moveToDelayed(Date.now() + 1000, token);
    this.deps.logger.info(
      { jobId: job.id, runId: (job.data as SyncJobData).runId },
      'job handed back at shutdown',
    );
    throw new DelayedError();
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      clearInterval(this.timer);
      const grace = setTimeout(() => {
        for (const w of this.workers) w.cancelAllJobs(SHUTDOWN_REASON);
      }, this.options.shutdownGraceMs);
      await Promise.all(this.workers.map((w) => w.close()));
      clearTimeout(grace);
    })());
  }
}
