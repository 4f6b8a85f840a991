import type { RedisClient } from '../redis/redis-client';
import type { Logger } from '../logger';

/*
 * A lease-based counting semaphore per concurrency group, in Redis so that it holds over every
 * worker process. A group's holders are a sorted set `<prefix>:gate:<group>` of holder ids scored
 * by when their lease expires (Redis's own clock, so workers' clocks never matter). Acquire drops
 * expired leases and adds one only while fewer than `limit` remain, in one Lua script: two workers
 * can never both take the last slot. A live run renews its lease every third of its length; a
 * crashed worker stops renewing and its slot frees itself when the lease runs out.
 *
 * Jobs that found the group full leave their id in `<prefix>:gate:<group>:waiting`; a release
 * wakes the oldest (the caller promotes its delayed job), so a freed slot is taken at once instead
 * of at the waiter's next retry. The wake is only a shortcut: a waiter also asks again when its
 * delay ends, so a lost wake costs time, never a slot.
 */

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Keeps the set alive as long as its longest lease, and no longer (an idle group leaves no key). */
const EXPIRE = `local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2])) + 1000) end`;

/** KEYS: holders, waiting. ARGV: holder, limit, leaseMs. Returns {1} or {0, ms until the first lease expires}. */
const ACQUIRE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  ${EXPIRE}
  return {1, 0}
end
redis.call('ZADD', KEYS[2], 'NX', now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], 86400000)
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(0, tonumber(first[2]) - now)}`;

/** KEYS: holders. ARGV: holder, limit, leaseMs. 1 renewed, 2 lost but taken again, 0 lost to others. */
const RENEW = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
${EXPIRE}
if held then return 1 end
return 2`;

/** Waiters tried per release: a stale id (its job gone) must not eat the wake of a live one. */
const WAKE_TRIES = 3;

export interface GateOptions {
  prefix: string;
  /** Sluice's Redis is a cluster: the group's keys carry a hash tag (holdersKey). */
  cluster?: boolean;
  /** How long a slot is held without renewal; a crashed worker's slot is free after this. */
  leaseMs: number;
  logger: Logger;
  /** Wakes a waiting job (promotes its delayed job); false when it could not (gone, not delayed). */
  wake?: (holder: string) => Promise<boolean>;
}

/** A held slot: renewed until released. release() is idempotent. */
export interface GateLease {
  readonly group: string;
  release(): Promise<void>;
}

export type GateAnswer = { lease: GateLease } | { lease?: undefined; retryInMs: number };

export class ConcurrencyGate {
  private readonly leases = new Set<GateLease>();

  constructor(
    private readonly redis: RedisClient,
    private readonly options: GateOptions,
  ) {}

  /**
   * On a Redis Cluster the group's two keys share a hash tag (`<prefix>:{gate:<group>}…`), since
   * ACQUIRE touches both in one script; the tag runs to the first `}`, the same for both keys
   * whatever the group name holds. One Redis keeps the untagged names.
   */
  holdersKey(group: string): string {
    return this.options.cluster
      ? `${this.options.prefix}:{gate:${group}}`
      : `${this.options.prefix}:gate:${group}`;
  }

  private waitingKey(group: string): string {
    return `${this.holdersKey(group)}:waiting`;
  }

  /**
   * A slot of `group` for `holder` (a job id: the same job asking again gets its own slot back), or
   * how long until the group's oldest lease would expire when all `limit` slots are taken.
   */
  async acquire(group: string, limit: number, holder: string): Promise<GateAnswer> {
    const { leaseMs } = this.options;
    const [ok, ms] = (await this.redis.eval(
      ACQUIRE,
      2,
      this.holdersKey(group),
      this.waitingKey(group),
      holder,
      limit,
      leaseMs,
    )) as [number, number];
    if (!ok) return { retryInMs: ms };
    return { lease: this.hold(group, limit, holder) };
  }

  /** Holders of `group` whose lease has not expired (for tests and diagnostics). */
  async holders(group: string): Promise<string[]> {
    const time = await this.redis.time();
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    return this.redis.zrangebyscore(this.holdersKey(group), `(${now}`, '+inf');
  }

  private hold(group: string, limit: number, holder: string): GateLease {
    const { leaseMs, logger } = this.options;
    const renew = async () => {
      try {
        const result = Number(
          await this.redis.eval(RENEW, 1, this.holdersKey(group), holder, limit, leaseMs),
        );
        // The lease ran out (Redis unreachable longer than a lease, or the event loop stalled):
        // the group may briefly have had one run more than its limit; say so.
        if (result !== 1)
          logger.warn({ group, retaken: result === 2 }, 'concurrency lease expired before it was renewed');
      } catch (err) {
        logger.warn({ group, err: (err as Error).message }, 'concurrency lease renewal failed');
      }
    };
    const timer = setInterval(() => void renew(), Math.max(100, Math.floor(leaseMs / 3)));
    timer.unref();
    let released: Promise<void> | undefined;
    const lease: GateLease = {
      group,
      release: () =>
        (released ??= (async () => {
          clearInterval(timer);
          this.leases.delete(lease);
          try {
            await this.redis.zrem(this.holdersKey(group), holder);
            await this.wakeOne(group);
          } catch (err) {
            // The lease expires on its own.
            logger.warn({ group, err: (err as Error).message }, 'concurrency lease release failed');
          }
        })()),
    };
    this.leases.add(lease);
    return lease;
  }

  private async wakeOne(group: string): Promise<void> {
    const { wake } = this.options;
    if (!wake) return;
    for (let i = 0; i < WAKE_TRIES; i++) {
      const [next] = await this.redis.zpopmin(this.waitingKey(group));
      if (!next) return;
      if (await wake(next).catch(() => false)) return;
    }
  }

  /** Releases every lease still held (shutdown): their runs are handed back anyway. */
  async close(): Promise<void> {
    await Promise.all([...this.leases].map((lease) => lease.release()));
  }
}

/**
 * A sync whose concurrency group is full: the worker delays its job (moveToDelayed, which spends no
 * retry attempt) for `delayMs`, or until a release wakes it.
 */
export class GroupFullError extends Error {
  constructor(
    readonly group: string,
    readonly delayMs: number,
  ) {
    super(`concurrency group ${group} is full; waiting ${delayMs} ms for a slot`);
    this.name = 'GroupFullError';
  }
}
