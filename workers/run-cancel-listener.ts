import { duplicateRedis, type RedisClient } from '../src/redis/redis-client';
import type { Logger } from '../src/logger';
import { cancelChannel } from '../src/runs/run-cancel';

/**
 * The worker's ear for cancels (src/runs/run-cancel.ts): a subscriber connection of its own on the
 * cancel channel. Each message is a job id; `onCancel` aborts that job if this process holds it
 * (BullMQ's Worker.cancelJob only reaches jobs of its own process, hence the channel). ioredis
 * subscribes again by itself after a reconnect; a message sent while it was away is caught by the
 * fences instead (the run is no longer `running`, so the next batch or the finish stops the job).
 */
export class RunCancelListener {
  private subscriber?: RedisClient;
  private closing?: Promise<void>;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  async listen(onCancel: (jobId: string) => boolean): Promise<void> {
    const channel = cancelChannel(this.prefix);
    // A connection in subscriber mode can do nothing else: a duplicate, never the shared one.
    const subscriber = (this.subscriber = duplicateRedis(this.redis, { maxRetriesPerRequest: null }));
    subscriber.on('error', (err) =>
      this.logger.debug({ err: err.message }, 'cancel listener connection error'),
    );
    subscriber.on('message', (from: string, jobId: string) => {
      if (from !== channel) return;
      if (onCancel(jobId)) this.logger.info({ jobId }, 'cancel signal received: aborting the job');
    });
    await subscriber.subscribe(channel);
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      this.subscriber?.disconnect();
    })());
  }
}
