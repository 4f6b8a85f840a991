import { Queue, type DefaultJobOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger';
import { QUEUES, type QueueName } from './queue-names';

export interface QueueFactoryOptions {
  connection: Redis;
  prefix: string;
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
    prefix: options.prefix,
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
  sync: Queue;
  test: Queue;
  syncAll: Queue;
  purge: Queue;
  notify: Queue;
  all(): Queue[];
  close(): Promise<void>;
}

export function createQueues(options: QueueFactoryOptions): Queues {
  // No retention in sync jobs' own options: the sync worker applies KEEP_COMPLETED / KEEP_FAILED
  // (BullMQ's worker-level removeOnComplete/removeOnFail, used when a job sets none). A scheduler
  // stores its template, queue defaults merged in, in a Redis hash; retention there would push the
  // hash past Redis's 64-byte listpack value limit and double its size (see ScheduleService).
  const sync = createQueue(QUEUES.sync, options);
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
  const all = [sync, test, syncAll, purge, notify];
  let closing: Promise<void> | undefined;
  return {
    sync,
    test,
    syncAll,
    purge,
    notify,
    all: () => all,
    close: () => (closing ??= Promise.all(all.map((q) => q.close())).then(() => undefined)),
  };
}
