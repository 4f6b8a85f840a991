import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger';
import { ConcurrencyGate } from '../../src/runs/concurrency-gate';
import { until } from '../helpers/until';
import { TEST_REDIS_URL, uniqueSuffix } from '../helpers/test-env';

/** The gate against real Redis: k slots over any number of callers, leases that expire, wakes. */
describe('ConcurrencyGate', () => {
  let redis: Redis;
  const prefix = `sluice_test_gate_${uniqueSuffix()}`;
  const woken: string[] = [];
  let gate: ConcurrencyGate;

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    gate = new ConcurrencyGate(redis, {
      prefix,
      leaseMs: 60_000,
      logger: createLogger('silent'),
      wake: async (id) => {
        woken.push(id);
        return true;
      },
    });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.unlink(...keys);
    redis.disconnect();
  });

  it('gives at most k slots of a group to 20 callers asking at once, and none of another group is held up', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => gate.acquire('db.example:5432', 2, `job-${i}`)),
    );
    const leases = answers.flatMap((a) => (a.lease ? [a.lease] : []));
    expect(leases).toHaveLength(2);
    expect(await gate.holders('db.example:5432')).toHaveLength(2);
    for (const a of answers) if (!a.lease) expect(a.retryInMs).toBeGreaterThan(50_000);
    const other = await gate.acquire('other.example:5432', 2, 'job-other');
    expect(other.lease).toBeDefined();
    await other.lease!.release();

    // The same holder asking again keeps its slot instead of taking a second one.
    const holder = (await gate.holders('db.example:5432'))[0]!;
    expect((await gate.acquire('db.example:5432', 2, holder)).lease).toBeDefined();
    expect(await gate.holders('db.example:5432')).toHaveLength(2);

    // A release frees one slot and wakes the oldest waiter (job-… that asked first and was refused).
    woken.length = 0;
    await leases[0]!.release();
    await leases[0]!.release(); // idempotent
    expect(woken).toHaveLength(1);
    expect(await gate.holders('db.example:5432')).toHaveLength(1);
    const third = await gate.acquire('db.example:5432', 2, woken[0]!);
    expect(third.lease).toBeDefined();
    await Promise.all([leases[1]!.release(), third.lease!.release()]);
    expect(await gate.holders('db.example:5432')).toHaveLength(0);
  });

  it('frees the slot of a holder that stopped renewing (a crashed worker) once its lease expires', async () => {
    // Short enough to expire within the test, long enough that a loaded machine stalling this
    // process's timers for a few hundred ms does not let a live lease lapse (it renews every third).
    const leaseMs = 1500;
    const shortGate = new ConcurrencyGate(redis, { prefix, leaseMs, logger: createLogger('silent') });
    const key = `${prefix}:gate:crash:5432`;
    // A crashed worker: its lease is written, then nothing renews it.
    await redis.zadd(key, Date.now() + leaseMs, 'dead-worker-job');
    const blocked = await shortGate.acquire('crash:5432', 1, 'live-job');
    expect(blocked.lease).toBeUndefined();
    const { lease } = await until(
      () => shortGate.acquire('crash:5432', 1, 'live-job'),
      (r) => r.lease !== undefined,
      30_000,
    );
    expect(lease).toBeDefined();
    // A live lease is renewed: it outlasts several lease lengths. Seen in its score (its expiry),
    // pushed forward past three lease lengths from when it was taken; no fixed wait.
    const takenAt = Number(await redis.zscore(key, 'live-job'));
    await until(
      async () => Number(await redis.zscore(key, 'live-job')),
      (expiry) => expiry >= takenAt + 2 * leaseMs,
      30_000,
    );
    expect(await shortGate.holders('crash:5432')).toEqual(['live-job']);
    expect((await shortGate.acquire('crash:5432', 1, 'another-job')).lease).toBeUndefined();
    await lease!.release();
    expect(await shortGate.holders('crash:5432')).toEqual([]);
  });
});
