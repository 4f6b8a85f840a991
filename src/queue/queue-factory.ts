import { Queue, type DefaultJobOptions, type Job } from 'bullmq';
import type { Logger } from '../logger';
import type { RedisClient } from '../redis/redis-client';
import { bullPrefix, QUEUES, syncQueueName, syncShardOf, type QueueName } from './queue-names';

export interface QueueFactoryOptions {
  connection: RedisClient;
  /** QUEUE_PREFIX: on a cluster each queue's BullMQ prefix is a hash tag made from it (bullPrefix). */
  prefix: string;
  /** Redis Cluster: every queue gets its own hash-tagged prefix. */
  cluster?: boolean;
  /** Sync queues (SYNC_SHARDS); 1 unless given. */
  syncShards?: number;
  logger: Logger;
  attempts: number;
  /** First retry delay of a job, doubling after (SYNC_BACKOFF_MS); 2 s unless given. */
  backoffMs?: number;
  /** Tries per notification delivery and the first retry delay (NOTIFY_ATTEMPTS, NOTIFY_BACKOFF_MS). */
  notify?: { attempts: number; backoffMs: number };
}

/** Finished jobs stay long enough for GET /jobs/{id} to answer after completion, but bounded. */
export const KEEP_COMPLETED = { age: 24 * 3600, count: 1000 };
export const KEEP_FAILED = { age: 7 * 24 * 3600, count: 5000 };
export const RETRY_BACKOFF = { type: 'exponential', delay: 2000 };

/** The one place queues are made: shared defaults, an error listener, and prefix isolation. */
export function createQueue<T>(
  name: QueueName,
  options: QueueFactoryOptions,
  overrides: DefaultJobOptions = {},
): Queue<T> {
  const queue = new Queue<T>(name, {
    connection: options.connection,
    prefix: bullPrefix(options.prefix, name, options.cluster ?? false),
    // Producers answer HTTP requests: do not wait for a Redis that is down.
    skipWaitingForReady: true,
    defaultJobOptions: {
      attempts: options.attempts,
      backoff: options.backoffMs ? { ...RETRY_BACKOFF, delay: options.backoffMs } : RETRY_BACKOFF,
      ...overrides,
    },
  });
  queue.on('error', (err) => options.logger.warn({ queue: name, err: err.message }, 'queue error'));
  return queue;
}

export interface Queues {
  /** Shard 0 of the sync queues: with SYNC_SHARDS=1 (the default) the only one. Pick by source: syncFor. */
  sync: Queue;
  /** Every sync queue, shard i at index i. */
  syncShards: Queue[];
  /** The sync queue of a source (its shard: syncShardOf). */
  syncFor(sourceId: string): Queue;
  /**
   * The sync job `jobId` and its queue, looked up in `sourceId`'s shard first, then in the others
   * (a job queued before SYNC_SHARDS changed), or undefined.
   */
  findSyncJob(jobId: string, sourceId?: string): Promise<{ queue: Queue; job: Job } | undefined>;
  test: Queue;
  syncAll: Queue;
  purge: Queue;
  notify: Queue;
  /** The BullMQ prefix of queue `name` (bullPrefix): a Worker or a second Queue of it must use this. */
  prefixOf(name: string): string;
  all(): Queue[];
  close(): Promise<void>;
}

export function createQueues(options: QueueFactoryOptions): Queues {
  // No retention in sync jobs' own options: the sync worker applies KEEP_COMPLETED / KEEP_FAILED
  // (BullMQ's worker-level removeOnComplete/removeOnFail, used when a job sets none). A scheduler
  // stores its template, queue defaults merged in, in a Redis hash; retention there would push the
  // hash past Redis's 64-byte listpack value limit and double its size (see ScheduleService).
  const shards = Math.max(1, options.syncShards ?? 1);
  const syncShards = Array.from({ length: shards }, (_, i) => createQueue(syncQueueName(i), options));
  const sync = syncShards[0]!;
  const syncFor = (sourceId: string) => syncShards[syncShardOf(sourceId, shards)]!;
  // A test is answered now or never: retrying it later helps nobody.
  const test = createQueue(QUEUES.test, options, {
    attempts: 1,
    removeOnComplete: { age: 3600, count: 1000 },
    removeOnFail: KEEP_FAILED,
  });
  const syncAll = createQueue(QUEUES.syncAll, options, {
    attempts: 3,
    removeOnComplete: KEEP_COMPLETED,
    removeOnFail: KEEP_FAILED,
  });
  // A purge is idempotent (it deletes what is left): retried, and re-queued by the repair if lost.
  const purge = createQueue(QUEUES.purge, options, {
    attempts: 5,
    removeOnComplete: KEEP_COMPLETED,
    removeOnFail: KEEP_FAILED,
  });
  // A delivery retries on the receiver's 5xx and network trouble, each wait twice the one before.
  const notify = createQueue(QUEUES.notify, options, {
    attempts: options.notify?.attempts ?? 8,
    backoff: { type: 'exponential', delay: options.notify?.backoffMs ?? 10_000 },
    removeOnComplete: KEEP_COMPLETED,
    removeOnFail: KEEP_FAILED,
  });
  const all = [...syncShards, test, syncAll, purge, notify];
  let closing: Promise<void> | undefined;
  return {
    sync,
    syncShards,
    syncFor,
    async findSyncJob(jobId, sourceId) {
      const first = sourceId ? syncFor(sourceId) : sync;
      for (const queue of [first, ...syncShards.filter((q) => q !== first)]) {
        const job = await queue.getJob(jobId);
        if (job) return { queue, job };
      }
      return undefined;
    },
    test,
    syncAll,
    purge,
    notify,
    prefixOf: (name) => bullPrefix(options.prefix, name, options.cluster ?? false),
    all: () => all,
    close: () => (closing ??= Promise.all(all.map((q) => q.close())).then(() => undefined)),
  };
}
