import { duplicateRedis, type RedisClient } from '../redis/redis-client';
import type { Context, Middleware, Next } from 'koa';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config';
import { TooManyRequestsError } from '../http/errors';
import type { Logger } from '../logger';
import { principalOf } from './auth.middleware';

const WINDOW_SECONDS = 60;

const SYNC_PATH = /^\/raw-data-sources\/(sync-all|[^/]+\/sync)\/?$/i;
const TEST_PATH = /^\/raw-data-sources\/([^/]+\/)?test\/?$/i;

type Kind = 'all' | 'sync' | 'test';

/**
 * A lease is at most this fraction of a key's limit (1%): a process can leave at most that
 * unused at the end of a window, and a key at the bench's 1,000,000 a minute goes to Redis once
 * per 10,000 requests instead of waiting on it every few milliseconds.
 */
const LEASE_SHARE = 100;
/** Leases kept at most; beyond it they start over (each key then asks Redis again). */
const MAX_LEASES = 10_000;

interface Lease {
  /** Points taken from Redis and not used yet. */
  left: number;
  /** Size of the last lease taken (the next is fetched when `left` falls to half of it). */
  size: number;
  /** Points Redis had left for the key after the last lease. */
  shared: number;
  /** End of the window the points belong to. */
  until: number;
  refill?: Promise<void>;
}

interface Allowance {
  limit: number;
  remaining: number;
  resetSeconds: number;
}
const allowance = (limit: number, remaining: number, resetMs: number): Allowance => ({
  limit,
  remaining,
  resetSeconds: Math.ceil(resetMs / 1000),
});

/**
 * Per-key request limits on Redis, so they hold across API processes; a busy key's points are
 * leased a few at a time (take()), so most requests cost no Redis round trip. When Redis is down
 * or slow, each process falls back to an in-memory limiter of the same size (the insurance
 * limiter): requests keep being served, limited per process.
 */
export class RateLimits {
  private readonly limiters = new Map<Kind, RateLimiterRedis>();
  /** Points this process took from Redis ahead, per kind and key, valid until the window ends. */
  private readonly leases = new Map<string, Lease>();
  private readonly connection: RedisClient;
  private readonly connected: Promise<void>;

  /**
   * `config.rateLimitRedisWaitMs`: a Redis command of the limiter waits at most this long before the
   * in-memory limiter answers instead (and a process's first requests wait at most four times this
   * for the first connect).
   */
  constructor(
    redis: RedisClient,
    config: Pick<Config, 'rateLimits' | 'queuePrefix' | 'rateLimitRedisWaitMs'>,
    logger: Logger,
  ) {
    // Its own connection: no offline queue (a down Redis fails at once, the insurance answers),
    // a command timeout, and auto-pipelining so concurrent requests share round trips.
    this.connection = duplicateRedis(redis, {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      maxRetriesPerRequest: 0,
      commandTimeout: config.rateLimitRedisWaitMs,
      connectionName: `rate-limits:${config.queuePrefix}`,
    });
    this.connection.on('error', (err) => logger.debug({ err: err.message }, 'rate-limit redis error'));
    // Until the connection is first up, requests wait for it (bounded): the in-memory fallback
    // counts apart from Redis, so answering from it while merely connecting would give a key
    // its budget twice. Once it has been up, a lost connection falls back at once.
    this.connected = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, config.rateLimitRedisWaitMs * 4);
      timer.unref();
      this.connection.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    for (const kind of ['all', 'sync', 'test'] as const) {
      const points = config.rateLimits[kind];
      if (points === 0) continue;
      this.limiters.set(
        kind,
        new RateLimiterRedis({
          storeClient: this.connection,
          keyPrefix: `${config.queuePrefix}:ratelimit:${kind}`,
          points,
          duration: WINDOW_SECONDS,
          rejectIfRedisNotReady: true,
          insuranceLimiter: new RateLimiterMemory({ points, duration: WINDOW_SECONDS }),
        }),
      );
    }
  }

  /** Checks the request's key against every limit that applies; 429 with Retry-After when one is spent. */
  middleware(): Middleware {
    // Not async itself: the common request (one limit, its point from a live lease) is answered
    // without a promise of its own; the rest goes through check().
    return (ctx, next) => {
      const principal = principalOf(ctx.state);
      if (!principal || this.limiters.size === 0) return next();
      const kinds: Kind[] = ['all'];
      if (ctx.method === 'POST' && SYNC_PATH.test(ctx.path)) kinds.push('sync');
      if (ctx.method === 'POST' && TEST_PATH.test(ctx.path)) kinds.push('test');
      const all = kinds.length === 1 && this.connection.status === 'ready' && this.limiters.get('all');
      const leased = all ? this.fromLease('all', all, principal.name) : undefined;
      if (!leased) return this.check(ctx, next, principal.name, kinds);
      ctx.set(headers(leased.limit, leased.remaining, leased.resetSeconds));
      return next();
    };
  }

  /** Every limit that applies, taking points from Redis when no lease has them. */
  private async check(ctx: Context, next: Next, key: string, kinds: Kind[]): Promise<void> {
    if (this.connection.status !== 'ready') await this.connected;
    let tightest: Allowance | undefined;
    for (const kind of kinds) {
      const limiter = this.limiters.get(kind);
      if (!limiter) continue;
      // From the lease without a promise when possible: this runs on every request.
      const allowance = this.fromLease(kind, limiter, key) ?? (await this.take(kind, limiter, key));
      if ('retryAfter' in allowance)
        throw new TooManyRequestsError(
          `More than ${limiter.points} ${kind === 'all' ? '' : `${kind} `}requests a minute with this key; retry in ${allowance.retryAfter} s.`,
          allowance.retryAfter,
          headers(limiter.points, 0, allowance.retryAfter),
        );
      if (!tightest || allowance.remaining < tightest.remaining) tightest = allowance;
    }
    if (tightest) ctx.set(headers(tightest.limit, tightest.remaining, tightest.resetSeconds));
    return next();
  }

  /**
   * One request's point, from this process's lease when it has one. Leases are taken from Redis
   * only while plenty remains (at most an eighth of what is left, and 1% of the limit), so the shared
   * count never exceeds the limit and the last points of a window go one by one. The next lease
   * is fetched in the background once half of the current one is used, so a busy key neither
   * pays nor waits for a Redis round trip on most requests. Points leased but unused when the
   * window ends are lost, which can only make a limit stricter.
   */
  private async take(
    kind: Kind,
    limiter: RateLimiterRedis,
    key: string,
  ): Promise<Allowance | { retryAfter: number }> {
    const id = `${kind}:${key}`;
    const pending = this.leases.get(id)?.refill;
    // A key whose lease ran dry while its next one is on the way waits for that one.
    if (pending && !(this.leases.get(id)!.left > 0)) await pending;
    const fromLease = this.fromLease(kind, limiter, key);
    if (fromLease) return fromLease;
    try {
      const res = await limiter.consume(key, 1);
      const now = Date.now();
      // Concurrent requests of the key got here too: keep one lease per key and window, never
      // replace a live one (its points would be lost).
      let lease = this.leases.get(id);
      if (!lease || lease.until <= now) {
        if (this.leases.size >= MAX_LEASES) this.leases.clear();
        lease = { left: 0, size: 0, shared: res.remainingPoints, until: now + res.msBeforeNext };
        this.leases.set(id, lease);
      } else lease.shared = res.remainingPoints;
      if (!lease.refill && lease.shared > 0) this.refill(id, lease, limiter, key);
      return allowance(limiter.points, res.remainingPoints + lease.left, res.msBeforeNext);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      return { retryAfter: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
    }
  }

  /** The request's point from a live lease with points left, or undefined (take() then asks Redis). */
  private fromLease(kind: Kind, limiter: RateLimiterRedis, key: string): Allowance | undefined {
    const id = `${kind}:${key}`;
    const live = this.leases.get(id);
    const now = Date.now();
    if (!live || live.until <= now || live.left <= 0) return undefined;
    live.left -= 1;
    if (!live.refill && live.left <= live.size / 2 && live.shared > 0) this.refill(id, live, limiter, key);
    return allowance(limiter.points, live.shared + live.left, live.until - now);
  }

  /** Takes the next lease for `lease` from Redis, in the background; one at a time per key. */
  private refill(id: string, lease: Lease, limiter: RateLimiterRedis, key: string): void {
    const size = Math.min(Math.ceil(limiter.points / LEASE_SHARE), Math.floor(lease.shared / 8));
    if (size < 2) return; // near the limit: point by point, through Redis
    lease.refill = limiter.consume(key, size).then(
      (res) => {
        lease.left += size;
        lease.size = size;
        lease.shared = res.remainingPoints;
        lease.until = Date.now() + res.msBeforeNext;
      },
      () => {
        // Refused (too few points left) or Redis trouble: no more leases in this window.
        lease.shared = 0;
      },
    );
    void lease.refill.finally(() => {
      if (this.leases.get(id) === lease) lease.refill = undefined;
    });
  }

  close(): void {
    this.connection.disconnect();
  }
}

/** The IETF draft's RateLimit-* fields, as most clients read them. */
const headers = (limit: number, remaining: number, resetSeconds: number): Record<string, string> => ({
  'RateLimit-Limit': String(limit),
  'RateLimit-Remaining': String(Math.max(0, remaining)),
  'RateLimit-Reset': String(Math.max(0, resetSeconds)),
});
