import type { Job } from 'bullmq';
import type { Queues } from '../queue/queue-factory';
import type { RedisClient } from '../redis/redis-client';
import { ConflictError, NotFoundError } from '../http/errors';
import type { Logger } from '../logger';
import type { SyncJobData } from '../queue/queue-names';
import type { RunLifecycle } from './run-lifecycle';
import type { SyncRun } from './sync-run.repository';

/** The abort reason a worker gives a job whose run was cancelled (SyncWorker tells it from a shutdown). */
export const RUN_CANCELLED = 'run cancelled';

/** The Redis pub/sub channel that carries a cancelled run's job id to every worker process. */
export const cancelChannel = (prefix: string) => `${prefix}:sync-cancel`;

/** How long the Redis part of a cancel may take; the run is already cancelled in Postgres by then. */
const SIGNAL_TIMEOUT_MS = 1200;
/** The dashboard's "empty": jobs read a page at a time, and at most this many in all. */
const PAGE = 500;
const MAX_EMPTIED = 200_000;
/** How long the dashboard's remove waits for a cancelled active job to let go of its lock. */
const RELEASE_WAIT_MS = 3000;

/** 409: the source has no queued or running sync (idle, or its sync just finished). */
export class NothingToCancelError extends ConflictError {
  constructor(syncStatus: string) {
    super(
      `The source has no queued or running sync to cancel (its sync_status is ${syncStatus}).`,
      undefined,
      { reason: 'no_active_run', sync_status: syncStatus },
    );
  }
}

export interface RunCancelDeps {
  lifecycle: RunLifecycle;
  /** The sync queues: a run's job is in its source's shard (or, after SYNC_SHARDS changed, another). */
  queues: Pick<Queues, 'syncShards' | 'findSyncJob'>;
  /** Publishes the cancel signal (the API's connection: a publisher, never a subscriber). */
  redis: RedisClient;
  prefix: string;
  logger: Logger;
  /** The source's sync_status, or undefined when there is no such source. */
  syncStatusOf(sourceId: string): Promise<string | undefined>;
}

async function bounded<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Cancelling a run, wherever it is asked for (the API, a deactivation or delete, the dashboard):
 * first the run in Postgres (RunLifecycle.cancel: run → cancelled, source back to its status
 * before the run, `sync.cancelled`), then its job: removed when it waits in the queue, or, when a
 * worker holds it, a message on `cancelChannel` that every worker process hears and the one holding
 * the job answers by aborting it (workers/run-cancel-listener.ts). Postgres comes first and decides:
 * should the message be lost (Redis down), the worker's next batch or its finish finds the run no
 * longer running and stops there (both are fenced on status).
 */
export class RunCancel {
  constructor(private readonly deps: RunCancelDeps) {}

  /** POST /raw-data-sources/{id}/cancel: the cancelled run, 404 without the source, 409 when idle. */
  async cancelSource(sourceId: string, reason: string): Promise<SyncRun> {
    for (let tries = 0; tries < 3; tries++) {
      const active = await this.deps.lifecycle.runs.activeRun(sourceId);
      if (!active) break;
      const cancelled = await this.cancelRun(active, reason);
      if (cancelled) return cancelled;
      // It finished (or was cancelled) between the read and the cancel: look again.
    }
    const status = await this.deps.syncStatusOf(sourceId);
    if (status === undefined) throw new NotFoundError('RawDataSource not found.');
    throw new NothingToCancelError(status);
  }

  /** A deactivation or delete: cancels the source's active run, if any; never throws for an idle source. */
  async cancelActive(sourceId: string, reason: string): Promise<SyncRun | undefined> {
    const active = await this.deps.lifecycle.runs.activeRun(sourceId);
    return active ? this.cancelRun(active, reason) : undefined;
  }

  /**
   * The dashboard removes a sync job: its run is cancelled first (when still active), and an
   * active job is waited for (bounded) until its worker has let it go, so that the removal that
   * follows succeeds. Answers whether a run was cancelled.
   */
  async cancelJob(jobId: string, reason: string, queueName?: string): Promise<boolean> {
    const queue = this.deps.queues.syncShards.find((q) => q.name === queueName);
    const job = queue ? await queue.getJob(jobId) : (await this.deps.queues.findSyncJob(jobId))?.job;
    const runId = job?.data?.runId;
    if (!job || !runId) return false;
    const run = await this.deps.lifecycle.runs.get(runId);
    if (!run) return false;
    const cancelled = await this.cancelRun(run, reason, { keepJob: true });
    const deadline = Date.now() + RELEASE_WAIT_MS;
    while (Date.now() < deadline && (await job.getState()) === 'active')
      await new Promise((resolve) => setTimeout(resolve, 50));
    return Boolean(cancelled);
  }

  /**
   * The dashboard empties the sync queue: the runs of the jobs it is about to remove (waiting,
   * delayed, prioritized) are cancelled first, a page at a time. Scheduler templates carry
   * no run and are skipped. Answers how many runs were cancelled.
   */
  async cancelWaiting(reason: string, queueName?: string): Promise<number> {
    const queue =
      this.deps.queues.syncShards.find((q) => q.name === queueName) ?? this.deps.queues.syncShards[0]!;
    let cancelled = 0;
    for (let start = 0; start < MAX_EMPTIED; start += PAGE) {
      const jobs: Job<SyncJobData>[] = await queue.getJobs(
        ['waiting', 'delayed', 'prioritized'],
        start,
        start + PAGE - 1,
        true,
      );
      for (const job of jobs) {
        const runId = job?.data?.runId;
        // The queue empties itself right after: only the run is closed here.
        if (runId && (await this.deps.lifecycle.cancel(runId, reason))) cancelled++;
      }
      if (jobs.length < PAGE) break;
    }
    return cancelled;
  }

  /** Cancels `run` (when still active) and stops its job; undefined when it was no longer active. */
  private async cancelRun(
    run: SyncRun,
    reason: string,
    options: { keepJob?: boolean } = {},
  ): Promise<SyncRun | undefined> {
    const cancelled = await this.deps.lifecycle.cancel(run.id, reason);
    if (!cancelled) return undefined;
    await this.stopJob(cancelled.job_id ?? cancelled.id, cancelled, options.keepJob).catch((err) =>
      this.deps.logger.warn(
        { runId: cancelled.id, err: (err as Error).message },
        'cancelled run: its job could not be signalled (the worker stops at its next batch)',
      ),
    );
    return cancelled;
  }

  private async stopJob(jobId: string, run: SyncRun, keepJob = false): Promise<void> {
    const { redis, queues, prefix, logger } = this.deps;
    // The message first: a running job stops as soon as possible. No worker holds it: nobody acts.
    const heard = await bounded(redis.publish(cancelChannel(prefix), jobId), SIGNAL_TIMEOUT_MS);
    if (keepJob) return;
    // A job still waiting (or delayed, between retries) goes; one a worker holds is locked and stays
    // until that worker aborts it. Either way its run is closed, so a start finds nothing to run.
    const removed = await bounded(
      queues
        .findSyncJob(jobId, run.source_id)
        .then((found) => found?.queue.remove(jobId) ?? 0)
        .catch(() => 0),
      SIGNAL_TIMEOUT_MS,
    );
    logger.info(
      { runId: run.id, jobId, removed: removed === 1, workersListening: heard },
      'sync run cancelled',
    );
  }
}
