import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { TEST_ENCRYPTION_KEYS, TEST_REDIS_URL } from '../helpers/test-env';
import { sendJson, startHttpServer, type TestServer } from '../connectors/support/http-source';
import {
  kill,
  killAll,
  logTailsOnFailure,
  track,
  until,
  waitForLog,
  WORKER_READY_MS,
  type Child,
} from './process-kit';

/** How long each peer holds a request: long enough that unlimited syncs overlap. */
const hold = { ms: 400 };
/** Workers' lease on a slot: short, so a killed worker's slot frees itself within the test. */
const LEASE_MS = 3000;
const BARRIER_MS = 15_000;
const ON_A = 12;
const ON_B = 4;
const LIMIT = 2;

/**
 * A loopback API peer that records how many requests it holds at once, and when each ended. With
 * `barrier`, it answers only once it has held that many at once (or after BARRIER_MS): a peer whose
 * syncs were wrongly held to another host's limit never gets there.
 */
async function countingPeer(
  barrier = 0,
): Promise<TestServer & { inFlight: number; max: number; lastEnd: number }> {
  const peer = { inFlight: 0, max: 0, lastEnd: 0 };
  const server = await startHttpServer((_req, res) => {
    peer.inFlight += 1;
    peer.max = Math.max(peer.max, peer.inFlight);
    // A session ends when its response is sent or its client goes away (a killed worker).
    res.once('close', () => {
      peer.inFlight -= 1;
      peer.lastEnd = Date.now();
    });
    const started = Date.now();
    const answer = () => {
      if (peer.max < barrier && Date.now() - started < BARRIER_MS) return void setTimeout(answer, 20);
      if (!res.destroyed) sendJson(res, [{ n: 1 }, { n: 2 }]);
    };
    setTimeout(answer, hold.ms);
  });
  return Object.assign(peer, server);
}

/**
 * The concurrency gate across real worker processes: three `src/main.ts worker` processes (real
 * api connector), 12 sources on one loopback host limited to 2 (CONCURRENCY_GROUP_LIMITS) and 4 on
 * another host without a limit. The first peer never holds more than 2 requests at once; the
 * second is not held to that limit; no sync spends a retry attempt on waiting for a slot.
 */
describe('concurrency limit per destination over three worker processes', () => {
  let api: TestApi;
  let a: Awaited<ReturnType<typeof countingPeer>>;
  let b: Awaited<ReturnType<typeof countingPeer>>;
  const workers: Child[] = [];

  logTailsOnFailure();

  beforeAll(async () => {
    a = await countingPeer();
    b = await countingPeer(LIMIT + 1);
    api = await startTestApi();
    for (let i = 1; i <= 3; i += 1) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'worker'], {
        cwd: new URL('../../', import.meta.url).pathname,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: process.env.HOME ?? '/tmp',
          NODE_ENV: 'test',
          DATABASE_URL: api.database.url,
          DATABASE_POOL_MAX: '4',
          REDIS_URL: TEST_REDIS_URL,
          ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
          QUEUE_PREFIX: api.container.config.queuePrefix,
          SYNC_ATTEMPTS: '3',
          WORKER_CONCURRENCY: '8',
          CONCURRENCY_GROUP_LIMITS: `127.0.0.1:${a.port}=${LIMIT}`,
          CONCURRENCY_WAIT_MS: '500',
          CONCURRENCY_LEASE_MS: String(LEASE_MS),
          WORKER_LOCK_DURATION_MS: '3000',
          WORKER_STALLED_INTERVAL_MS: '2000',
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      workers.push(track(`worker-${i}`, child));
    }
    await Promise.all(workers.map((w) => waitForLog(w, (l) => l.msg === 'worker started', WORKER_READY_MS)));
  }, 150_000);

  afterAll(async () => {
    await killAll();
    await api?.close();
    await a?.close();
    await b?.close();
  });

  it('the limited host never sees more than 2 syncs at once; the other host is not held to it', async () => {
    const create = async (peer: TestServer, i: number) => {
      const res = await api.post('/raw-data-sources', {
        name: `gate-${peer.port}-${i}`,
        source_type: 'api',
        connection_string: `${peer.url}/items?source=${i}`,
      });
      expect(res.status, res.text).toBe(201);
      return res.body.id as string;
    };
    const onA = await Promise.all(Array.from({ length: ON_A }, (_, i) => create(a, i)));
    const onB = await Promise.all(Array.from({ length: ON_B }, (_, i) => create(b, i)));
    // A first, so B's syncs queue behind all of A's: B finishing first shows A's limit does not hold B up.
    for (const id of [...onA, ...onB])
      expect((await api.post(`/raw-data-sources/${id}/sync`)).status).toBe(202);

    const statuses = await until(
      'every sync finished',
      async () =>
        (await api
          .knex('raw_data_sources')
          .select('id', 'sync_status')
          .whereIn('id', [...onA, ...onB])) as {
          sync_status: string;
        }[],
      (rows) => rows.every((r) => r.sync_status === 'success' || r.sync_status === 'failed'),
      120_000,
      200,
    );
    expect(statuses.every((r) => r.sync_status === 'success')).toBe(true);

    expect(a.max).toBeLessThanOrEqual(LIMIT);
    expect(a.max).toBe(LIMIT);
    expect(a.requests.length).toBeGreaterThanOrEqual(ON_A);
    expect(b.max).toBeGreaterThan(LIMIT);
    expect(b.lastEnd).toBeLessThan(a.lastEnd);

    // Waiting for a slot is no attempt: every run succeeded at its first.
    const runs = await api.knex('sync_runs').select('attempt', 'status').whereIn('source_id', onA);
    expect(runs.filter((r) => r.status === 'success').map((r) => r.attempt)).toEqual(Array(ON_A).fill(1));
    // More than one process ran the limited host's syncs: the limit held across processes.
    // (Read once the lines are flushed: a child batches its log for up to 200 ms.)
    const ranA = await until(
      'two processes logged host A syncs',
      async () =>
        workers.filter((w) =>
          w.logs.some((l) => l.msg === 'sync started' && onA.includes(String(l.sourceId))),
        ),
      (ran) => ran.length >= 2,
      10_000,
      50,
    );
    expect(ranA.length).toBeGreaterThanOrEqual(2);
    for (const w of workers) expect(w.logs.filter((l) => String(l.msg).includes('lease'))).toEqual([]);
  }, 180_000);

  it("a worker killed while holding a slot loses it when its lease expires; the others finish the host's syncs", async () => {
    hold.ms = 2500;
    a.max = 0;
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const res = await api.post('/raw-data-sources', {
        name: `gate-crash-${i}`,
        source_type: 'api',
        connection_string: `${a.url}/items?crash=${i}`,
      });
      ids.push(res.body.id as string);
    }
    for (const id of ids) expect((await api.post(`/raw-data-sources/${id}/sync`)).status).toBe(202);
    await until(
      'two syncs on host A',
      async () => a.inFlight,
      (n) => n === LIMIT,
      60_000,
      50,
    );
    // A worker running one of them, killed without a chance to release its slot. Its 'sync started'
    // line may still be in its log buffer (flushed at least every 200 ms) when the peer sees the
    // request: wait for the line, never assert on it at once.
    const holder = await until(
      'a worker logged one of them started',
      async () =>
        workers.find((w) => w.logs.some((l) => l.msg === 'sync started' && ids.includes(String(l.sourceId)))),
      (w) => w !== undefined,
      10_000,
      50,
    );
    await kill(holder!);
    const statuses = await until(
      'every sync finished after the kill',
      async () =>
        (await api.knex('raw_data_sources').select('sync_status').whereIn('id', ids)) as {
          sync_status: string;
        }[],
      (rows) => rows.every((r) => r.sync_status === 'success' || r.sync_status === 'failed'),
      120_000,
      200,
    );
    expect(statuses.every((r) => r.sync_status === 'success')).toBe(true);
    expect(a.max).toBeLessThanOrEqual(LIMIT);
    // Nothing holds a slot of host A any more.
    const holders = await api.container.redis.zrangebyscore(
      `${api.container.config.queuePrefix}:gate:127.0.0.1:${a.port}`,
      Date.now(),
      '+inf',
    );
    expect(holders).toEqual([]);
  }, 180_000);
});
