import { duplicateRedis, type RedisClient } from '../redis/redis-client';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Logger } from '../logger';

const WINDOW_SECONDS = 60;
/** Addresses remembered as blocked at most; beyond it the oldest go (they are charged through Redis again). */
const MAX_BLOCKED = 10_000;

/**
 * Requests without a valid key (no token, an unknown or revoked one), counted per client address
 * on Redis so the budget holds across API processes (an in-memory limiter of the same size
 * answers while Redis is down). An address over its budget is remembered here until its window
 * ends, so its further requests are refused without a Redis round trip or a key lookup.
 */
export class AnonymousLimits {
  private readonly limiter?: RateLimiterRedis;
  private readonly connection: RedisClient;
  /** Address key → when its window ends (ms). Insertion order is expiry order within a window. */
  private readonly blocked = new Map<string, number>();

  /** `options.redisWaitMs`: a Redis command waits at most this long before the in-memory limiter answers instead. */
  constructor(
    redis: RedisClient,
    options: { points: number; prefix: string; redisWaitMs: number },
    logger: Logger,
  ) {
    this.connection = duplicateRedis(redis, {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      maxRetriesPerRequest: 0,
      commandTimeout: options.redisWaitMs,
      connectionName: `anonymous-limits:${options.prefix}`,
    });
    this.connection.on('error', (err) => logger.debug({ err: err.message }, 'anonymous-limit redis error'));
    if (options.points > 0)
      this.limiter = new RateLimiterRedis({
        storeClient: this.connection,
        keyPrefix: `${options.prefix}:ratelimit:anonymous`,
        points: options.points,
        duration: WINDOW_SECONDS,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new RateLimiterMemory({ points: options.points, duration: WINDOW_SECONDS }),
      });
  }

  get points(): number {
    return this.limiter?.points ?? 0;
  }

  /** Seconds until the address may try again, or 0 when it is not known to be over its budget. */
  blockedFor(key: string): number {
    const until = this.blocked.get(key);
    if (until === undefined) return 0;
    const left = until - Date.now();
    if (left > 0) return Math.ceil(left / 1000);
    this.blocked.delete(key);
    return 0;
  }

  /** Counts one request without a valid key; answers the seconds to wait when that was over the budget, else 0. */
  async charge(key: string): Promise<number> {
    if (!this.limiter) return 0;
    const held = this.blockedFor(key);
    if (held) return held;
    try {
      await this.limiter.consume(key, 1);
      return 0;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      if (this.blocked.size >= MAX_BLOCKED) {
        const oldest = this.blocked.keys().next().value;
        if (oldest !== undefined) this.blocked.delete(oldest);
      }
      this.blocked.set(key, Date.now() + rejection.msBeforeNext);
      return Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
    }
  }

  close(): void {
    this.connection.disconnect();
  }
}
