import { randomUUID } from 'node:crypto';
import type { Job, Queue } from 'bullmq';
import type { RedisClient } from '../redis/redis-client';
import { ConflictError, NotFoundError, ServiceUnavailableError } from '../http/errors';
import type { CrudRepository } from '../db/crud.repository';
import type { RawDataSource } from '../generated';
import type { Logger } from '../logger';
import type { Queues } from '../queue/queue-factory';
import {
  syncDedupId,
  syncJobName,
  isSyncQueue,
  type SyncAllJobData,
  type SyncJobData,
  type TestJobData,
} from '../queue/queue-names';
import type { DraftInput, SourceDrafts } from '../sources/source-drafts';
import type { RunLifecycle } from './run-lifecycle';
import { syncJobRetry, type RetryDefaults } from './run-policy';
import type { JobView, SyncAccepted, SyncAllAccepted, TestResult } from './sync.contracts';
import { testBudgetMs } from './test-budget';

/**
 * How long a producer may wait on Redis before the API gives up with a 503. The whole answer must
 * come within 2 s, Postgres work before and after the wait included, so the wait itself is shorter.
 */
export const ENQUEUE_TIMEOUT_MS = 1200;
const TEST_POLL_MS = 50;

export interface SyncServiceDeps {
  redis: RedisClient;
  queues: Queues;
  lifecycle: RunLifecycle;
  sources: CrudRepository<RawDataSource>;
  logger: Logger;
  testWaitMs: number;
  drafts: SourceDrafts;
  /** Global retry defaults; a source's retry_attempts / retry_backoff_seconds go over them in its job. */
  retryDefaults?: RetryDefaults;
}

export type TestOutcome = { done: true; result: TestResult } | { done: false; job_id: string };

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer from Redis within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The API side of syncing: validates, records the run, enqueues ids, and reads job state back. */
export class SyncService {
  constructor(private readonly deps: SyncServiceDeps) {}

  private ensureRedis(): void {
    if (this.deps.redis.status !== 'ready')
      throw new ServiceUnavailableError('The job queue (Redis) is unavailable.');
  }

  private async enqueue<T>(work: Promise<T>, what: string): Promise<T> {
    try {
      return await withTimeout(work, ENQUEUE_TIMEOUT_MS, what);
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message }, 'enqueue failed');
      throw new ServiceUnavailableError('The job queue (Redis) is unavailable.');
    }
  }

  private async source(id: string): Promise<RawDataSource> {
    const source = await this.deps.sources.get(id);
    if (!source) throw new NotFoundError('RawDataSource not found.');
    return source;
  }

  /** Queues a manual sync; a second request while one is queued or running gets that same run. */
  async requestSync(sourceId: string, requestId?: string): Promise<SyncAccepted> {
    const source = await this.source(sourceId);
    if (!source.is_active) throw new ConflictError('The source is inactive; activate it before syncing.');
    this.ensureRedis();
    const runId = randomUUID();
    const { lifecycle } = this.deps;
    const { runs } = lifecycle;
    const run = await runs.createQueued({ id: runId, sourceId, trigger: 'manual' });
    if (!run) {
      const active = await runs.activeRun(sourceId);
      if (active) return { job_id: active.job_id ?? active.id, run_id: active.id, status: active.status };
      throw new ConflictError('A sync of this source just finished; try again.');
    }
    const data: SyncJobData = { sourceId, runId, trigger: 'manual', ...(requestId ? { requestId } : {}) };
    let job: Job;
    try {
      job = await this.enqueue(
        this.deps.queues.syncFor(sourceId).add(syncJobName(source.name), data, {
          jobId: runId,
          deduplication: { id: syncDedupId(sourceId) },
          ...(this.deps.retryDefaults ? syncJobRetry(source, this.deps.retryDefaults) : {}),
        }),
        'enqueue sync',
      );
    } catch (err) {
      await lifecycle.cancelUnqueued(runId, 'could not be queued: the job queue was unavailable');
      throw err;
    }
    if (job.id !== runId) {
      // Deduplicated in the queue: another job of this source is still there. BullMQ hands back our
      // own data under the other job's id, so its run is looked up, not read from `job.data` (that
      // was the run just cancelled). No active run: that job is finishing (its run closed, its
      // dedup key not yet released), so this request started nothing: 409, never a dead run id.
      await lifecycle.cancelUnqueued(runId, `deduplicated: job ${job.id} is already queued`);
      const active = await runs.activeRun(sourceId);
      if (active) return { job_id: active.job_id ?? active.id, run_id: active.id, status: active.status };
      throw new ConflictError(`A sync of this source (job ${job.id}) is just finishing; try again.`);
    }
    await lifecycle.queued([{ runId, sourceId, trigger: 'manual' }]);
    return { job_id: runId, run_id: runId, status: 'queued' };
  }

  /**
   * Runs a test job and waits up to testWaitMs for it; otherwise the caller polls GET /jobs/{id}.
   * Polling the job (not QueueEvents) cannot miss a finish that happens before a subscription starts.
   */
  async test(sourceId: string, requestId?: string): Promise<TestOutcome> {
    await this.source(sourceId);
    return this.runTest({ sourceId, ...(requestId ? { requestId } : {}) });
  }

  /** Tests a configuration before it is saved: sealed as a short-lived draft, the job carries its id. */
  async testDraft(input: DraftInput, requestId?: string): Promise<TestOutcome> {
    this.ensureRedis();
    const draftId = await this.deps.drafts.save(input);
    return this.runTest({ draftId, ...(requestId ? { requestId } : {}) });
  }

  private async runTest(request: TestJobData): Promise<TestOutcome> {
    this.ensureRedis();
    const budgetMs = testBudgetMs(this.deps.testWaitMs);
    const data: TestJobData = { ...request, ...(budgetMs ? { budgetMs } : {}) };
    const queue = this.deps.queues.test;
    const job = await this.enqueue(queue.add('test', data, { jobId: randomUUID() }), 'enqueue test');
    const jobId = job.id ?? '';
    const deadline = Date.now() + this.deps.testWaitMs;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, TEST_POLL_MS));
      const current = await queue.getJob(jobId).catch(() => undefined);
      if (!current?.finishedOn) continue;
      if (current.returnvalue) return { done: true, result: current.returnvalue as TestResult };
      // The processor itself failed (not a failed step): report it as a failed test, not a 500.
      const message = current.failedReason || 'the test job failed';
      return {
        done: true,
        result: {
          ok: false,
          steps: [{ name: 'run test', status: 'failed', message, code: 'internal', duration_ms: 0 }],
          duration_ms: 0,
        },
      };
    }
    return { done: false, job_id: jobId };
  }

  /** Counts what a fan-out will queue now and hands the fan-out itself to a job. */
  async syncAll(requestId?: string): Promise<SyncAllAccepted> {
    this.ensureRedis();
    const { runs } = this.deps.lifecycle;
    const { queued, skipped } = await runs.syncAllCounts();
    const batchId = randomUUID();
    const data: SyncAllJobData = { batchId, ...(requestId ? { requestId } : {}) };
    await runs.openBatch(batchId);
    try {
      await this.enqueue(
        this.deps.queues.syncAll.add('sync-all', data, { jobId: batchId }),
        'enqueue sync-all',
      );
    } catch (err) {
      // A frozen Redis may still take the job once it wakes: the batch says it was refused.
      await runs.cancelBatch(batchId);
      throw err;
    }
    return { batch_id: batchId, queued, skipped };
  }

  async getJob(jobId: string): Promise<JobView | undefined> {
    this.ensureRedis();
    // Purge and notification jobs are the worker's own housekeeping, never handed out as a job id.
    const internal = [this.deps.queues.purge, this.deps.queues.notify];
    for (const queue of this.deps.queues.all().filter((q) => !internal.includes(q))) {
      const job = await this.enqueue(queue.getJob(jobId), 'read job');
      if (job) return this.view(queue, job);
    }
    return undefined;
  }

  private async view(queue: Queue, loaded: Job): Promise<JobView> {
    let job = loaded;
    const state = await job.getState();
    // The job was read before its state: one that finished in between has its result only in a
    // fresh read (otherwise a poller sees "completed" with a null result).
    if ((state === 'completed' || state === 'failed') && !job.finishedOn)
      job = (await this.enqueue(queue.getJob(job.id ?? ''), 'read job')) ?? job;
    const iso = (ms?: number) => (ms ? new Date(ms).toISOString() : null);
    return {
      id: job.id ?? '',
      // Every sync shard answers as `sync`: the shards are an deployment detail, not the API's.
      queue: (isSyncQueue(queue.name) ? 'sync' : queue.name) as JobView['queue'],
      name: job.name,
      state,
      data: job.data as Record<string, unknown>,
      attempts_made: job.attemptsMade,
      result: job.returnvalue ?? null,
      error: job.failedReason || null,
      created_at: iso(job.timestamp),
      finished_at: iso(job.finishedOn),
    };
  }
}
