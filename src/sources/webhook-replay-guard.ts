import type { RedisClient } from '../redis/redis-client';
import { ServiceUnavailableError } from '../http/errors';

/** A Redis answer is waited for at most this long; beyond it the receipt is refused with 503 (senders retry). */
const REDIS_WAIT_MS = 1000;

/**
 * Remembers accepted webhook signatures in Redis (shared by every API process) for as long as
 * their timestamp is inside the tolerance window: SET NX claims one, so of two deliveries of the
 * same signed request exactly one gets through. Without Redis nothing can be told apart, so
 * receipts are refused (503, which senders retry) rather than accepted unchecked.
 */
export class WebhookReplayGuard {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly toleranceSeconds: number,
  ) {}

  /** True when this is the first time the signature is seen; false for a replay. */
  async claim(sourceId: string, digest: string, timestamp: number): Promise<boolean> {
    if (this.redis.status !== 'ready')
      throw new ServiceUnavailableError('Webhook receipts cannot be checked for replays right now; retry.');
    // Remembered until the timestamp leaves the window (its latest point is timestamp + tolerance).
    const ttl = Math.max(1, timestamp + this.toleranceSeconds - Math.floor(Date.now() / 1000) + 1);
    const claimed = await bounded(this.redis.set(this.key(sourceId, digest), '1', 'EX', ttl, 'NX'));
    return claimed === 'OK';
  }

  /** Gives a claim back when the receipt was not stored after all, so the sender's retry is not a replay. */
  async release(sourceId: string, digest: string): Promise<void> {
    await bounded(this.redis.del(this.key(sourceId, digest))).catch(() => undefined);
  }

  private key(sourceId: string, digest: string): string {
    return `${this.prefix}:webhook-seen:${sourceId}:${digest}`;
  }
}

function bounded<T>(command: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ServiceUnavailableError('Webhook receipts cannot be checked for replays right now; retry.'),
        ),
      REDIS_WAIT_MS,
    );
  });
  return Promise.race([command, timeout])
    .catch((err: unknown) => {
      if (err instanceof ServiceUnavailableError) throw err;
      throw new ServiceUnavailableError('Webhook receipts cannot be checked for replays right now; retry.');
    })
    .finally(() => clearTimeout(timer));
}
