import { Worker } from 'bullmq';
import { workerConnection, type RedisClient } from '../src/redis/redis-client';
import type { Logger } from '../src/logger';
import type { Metrics } from '../src/metrics/metrics';
import type { NotificationDelivery } from '../src/notifications/notification-delivery';
import type { NotificationDispatcher, NotifyJobData } from '../src/notifications/notification-dispatcher';
import { KEEP_COMPLETED, KEEP_FAILED } from '../src/queue/queue-factory';
import { bullPrefix, QUEUES } from '../src/queue/queue-names';
import type { SourceFreshness } from '../src/sources/source-freshness';

export interface NotifyWorkerOptions {
  redisUrl: string;
  /** REDIS_CLUSTER_NODES: the worker connects to that cluster instead (src/redis/redis-client.ts). */
  redisClusterNodes?: { host: string; port: number }[];
  prefix: string;
  concurrency: number;
  /** Deliveries' total tries (the notify queue's attempts), to know the last one. */
  attempts: number;
  /** How often (at most, across all workers) freshness is checked. */
  freshnessIntervalMs: number;
}

/**
 * The worker role's notification side: the dispatcher (events stream → deliveries), the `notify`
 * queue's BullMQ worker (one attempt of one delivery per job) and the freshness check on a timer,
 * lock-elected like the other periodic jobs so one worker of many runs each pass.
 */
export class NotifyWorker {
  private worker?: Worker<NotifyJobData>;
  private connection?: { close(): void };
  private timer?: NodeJS.Timeout;
  private closing?: Promise<void>;

  constructor(
    private readonly deps: {
      redis: RedisClient;
      logger: Logger;
      dispatcher: NotificationDispatcher;
      delivery: NotificationDelivery;
      freshness: SourceFreshness;
      metrics?: Metrics;
    },
    private readonly options: NotifyWorkerOptions,
  ) {}

  async start(): Promise<void> {
    const { deps, options } = this;
    const redis = (this.connection = workerConnection(options));
    this.worker = new Worker<NotifyJobData>(
      QUEUES.notify,
      async (job) => {
        const started = performance.now();
        let outcome: 'success' | 'retried' | 'failed' | 'skipped' = 'failed';
        try {
          const result = await deps.delivery.deliver(
            job.data.deliveryId,
            job.attemptsMade + 1,
            options.attempts,
          );
          outcome = result === 'skipped' ? 'skipped' : 'success';
          return result;
        } catch (err) {
          outcome = err instanceof Error && err.name === 'DeliveryAttemptFailed' ? 'retried' : 'failed';
          throw err;
        } finally {
          deps.metrics?.jobFinished(QUEUES.notify, undefined, outcome, (performance.now() - started) / 1000);
        }
      },
      {
        connection: redis.connection,
        prefix: bullPrefix(options.prefix, QUEUES.notify, Boolean(options.redisClusterNodes?.length)),
        concurrency: options.concurrency,
        removeOnComplete: KEEP_COMPLETED,
        removeOnFail: KEEP_FAILED,
      },
    );
    this.worker.on('error', (err) =>
      deps.logger.warn({ queue: QUEUES.notify, err: err.message }, 'worker error'),
    );
    await this.worker.waitUntilReady();
    deps.dispatcher.start();
    void this.checkFreshness();
    this.timer = setInterval(() => void this.checkFreshness(), options.freshnessIntervalMs);
    this.timer.unref();
  }

  /**
   * One freshness pass, at most once per interval over all workers: the lock is left to expire
   * rather than deleted, so it is also the interval's marker.
   */
  async checkFreshness(): Promise<void> {
    const lock = `${this.options.prefix}:lock:freshness`;
    const got = await this.deps.redis
      .set(lock, String(process.pid), 'PX', this.options.freshnessIntervalMs, 'NX')
      .catch(() => null);
    if (!got) return;
    await this.deps.freshness
      .check()
      .catch((err) => this.deps.logger.error({ err }, 'freshness check failed'));
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      clearInterval(this.timer);
      await Promise.all([this.deps.dispatcher.close(), this.worker?.close()]);
      this.connection?.close();
    })());
  }
}
