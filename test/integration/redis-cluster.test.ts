import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyGate } from '../../src/runs/concurrency-gate';
import { schedulerId, syncQueueName, syncShardOf } from '../../src/queue/queue-names';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster';
import { ScriptedConnector } from '../support/scripted-connector';

/**
 * Sluice on a real Redis Cluster: 6 private redis-server nodes on loopback (3 masters, 3 replicas,
 * ports 7101-7106), the API and a worker in this process with REDIS_CLUSTER_NODES and
 * SYNC_SHARDS=3. Every queue, script and lock must keep its keys in one slot (a CROSSSLOT error
 * would fail the syncs here), and a master failover in the middle of syncs must lose nothing and
 * land nothing twice. `make cluster-test` runs this file alone.
 */
const PORTS = [7101, 7102, 7103, 7104, 7105, 7106];
const SHARDS = 3;

async function until<T>(
  what: string,
  read: () => Promise<T>,
  done: (v: T) => boolean,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not met within ${ms} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('Sluice on a Redis Cluster (6 nodes, SYNC_SHARDS=3)', () => {
  let cluster: TestRedisCluster;
  let api: TestApi;
  let seq = 0;

  beforeAll(async () => {
    cluster = await startRedisCluster(PORTS);
    api = await startTestApi({
      connectors: [new ScriptedConnector('database'), new ScriptedConnector('api')],
      env: {
        // Two seeds of six: the client learns the rest from the cluster.
        REDIS_CLUSTER_NODES: cluster.seeds.split(',').slice(0, 2).join(','),
        SYNC_SHARDS: String(SHARDS),
        SYNC_ATTEMPTS: '6',
        SYNC_BACKOFF_MS: '200',
        WORKER_CONCURRENCY: '12',
        // The worker's close on a cluster is bounded by grace + 5 s (workers/sync-worker.ts).
        SHUTDOWN_GRACE_MS: '3000',
        // A job whose worker lost it in the failover is noticed in seconds (yet not so soon that a loaded
        // machine's pause makes a live job look lost), and so is a lost run (grace = lock duration).
        WORKER_LOCK_DURATION_MS: '8000',
        WORKER_STALLED_INTERVAL_MS: '4000',
        RECONCILE_INTERVAL_MS: '2000',
        // The limits run on the cluster too (high enough never to refuse these tests).
        RATE_LIMIT_ALL: '100000',
        RATE_LIMIT_SYNC: '100000',
      },
    });
    await api.startWorker();
  }, 90_000);
  afterAll(async () => {
    // The nodes are stopped whatever happens to the close (bounded well inside the hook's timeout).
    try {
      await Promise.race([
        api?.close(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('api.close() took over 60 s')), 60_000)),
      ]);
    } finally {
      await cluster?.stop();
    }
  }, 120_000);

  const create = async (metadata: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const res = await api.post('/raw-data-sources', {
      name: `cluster-${process.pid}-${++seq}`,
      source_type: 'database',
      connection_string: 'postgres://loader:pw@127.0.0.1:5432/warehouse',
      metadata,
      ...extra,
    });
    expect(res.status, `${res.text}\n${api.logs.filter((l) => l.includes('"level":50')).join('\n')}`).toBe(
      201,
    );
    return res.body.id as string;
  };
  const landed = async (sourceId: string) =>
    Number((await api.knex('raw_records').where({ source_id: sourceId }).count({ n: '*' }).first())?.n);
  const runsOf = async (sourceId: string) =>
    (await api.get(`/raw-data-sources/${sourceId}/runs`)).body.data as {
      id: string;
      status: string;
      records: number;
    }[];
  const allFinished = (ids: string[]) =>
    until(
      'every source finished',
      async () =>
        Promise.all(ids.map(async (id) => (await api.get(`/raw-data-sources/${id}`)).body.sync_status)),
      (statuses) => statuses.every((s) => s === 'success' || s === 'failed'),
      45_000,
    );

  /** The shard most of `ids` hash to, the master holding its slot and that master's replica. */
  const masterOfBusiestShard = async (ids: string[]) => {
    const counts = new Map<number, number>();
    for (const id of ids) counts.set(syncShardOf(id, SHARDS), (counts.get(syncShardOf(id, SHARDS)) ?? 0) + 1);
    const busiest = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
    const key = api.container.queues.syncShards[busiest]!.toKey('wait');
    const topology = await cluster.topology();
    const alive = topology[0]!.port;
    const slot = Number(await cluster.cli(alive, 'cluster', 'keyslot', key));
    for (const node of topology.filter((n) => n.role === 'master')) {
      const mine = (await cluster.cli(node.port, 'cluster', 'nodes'))
        .split('\n')
        .find((l) => l.includes('myself'))!;
      const owns = mine
        .split(' ')
        .slice(8)
        .some((range) => {
          const [lo, hi] = range.split('-').map(Number);
          return slot >= lo! && slot <= (hi ?? lo)!;
        });
      if (!owns) continue;
      const replica = topology.find((n) => n.masterId === node.id);
      expect(replica, `master ${node.port} has a replica`).toBeDefined();
      return { busiest, master: node, replica: replica! };
    }
    throw new Error(`no master owns slot ${slot}`);
  };
  const openRuns = async (ids: string[]) =>
    Number(
      (
        await api
          .knex('sync_runs')
          .whereIn('source_id', ids)
          .whereIn('status', ['queued', 'running'])
          .count({ n: '*' })
      )[0]?.n,
    );
  const duplicates = (ids: string[]) =>
    api
      .knex('raw_records')
      .whereIn('source_id', ids)
      .select('source_id', api.knex.raw("payload->>'n' as n"))
      .groupByRaw("source_id, payload->>'n'")
      .havingRaw('count(*) > 1');

  it('syncs land exactly, each job in its source’s shard; GET /jobs/{id}, events and readiness work', async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, () => create({ records: 7, batch: 3 })));
    const accepted = await Promise.all(ids.map((id) => api.post(`/raw-data-sources/${id}/sync`)));
    for (const res of accepted) expect(res.status, res.text).toBe(202);
    expect(await allFinished(ids)).toEqual(ids.map(() => 'success'));
    const { queues, events, redis } = api.container;
    for (const [i, id] of ids.entries()) {
      expect(await landed(id)).toBe(7);
      const runId = accepted[i]!.body.run_id as string;
      expect(await runsOf(id)).toMatchObject([{ id: runId, status: 'success', records: 7 }]);
      // The job is in its shard's queue and nowhere else.
      const shard = syncShardOf(id, SHARDS);
      expect(queues.syncFor(id).name).toBe(syncQueueName(shard));
      for (const [n, queue] of queues.syncShards.entries())
        expect(Boolean(await queue.getJob(runId)), `shard ${n}`).toBe(n === shard);
      const job = await api.get(`/jobs/${runId}`);
      expect(job.body).toMatchObject({ id: runId, queue: 'sync', state: 'completed' });
    }
    // Each shard is its own hash tag, so its keys can sit on any master.
    const slots = await Promise.all(
      queues.syncShards.map(async (q) => cluster.cli(PORTS[0]!, 'cluster', 'keyslot', q.toKey('wait'))),
    );
    expect(new Set(slots).size).toBe(SHARDS);
    const recent = await redis.xrevrange(events.key, '+', '-', 'COUNT', 500);
    const succeeded = recent.filter(([, fields]) => fields.join(' ').includes('sync.succeeded'));
    expect(succeeded.length).toBeGreaterThanOrEqual(ids.length);
    expect((await api.get('/readyz')).status).toBe(200);
    // The dashboard lists every shard, with its completed jobs.
    const board = await api.get('/admin/queues/api/queues?activeQueue=sync-1&status=completed&page=1');
    expect(board.status, board.text).toBe(200);
    const names = (board.body.queues as { name: string }[]).map((q) => q.name);
    expect(names).toEqual(expect.arrayContaining(['sync', 'sync-1', 'sync-2', 'test', 'sync-all']));
    // The rate limiter counted on the cluster (a key of its own, in some slot).
    const limiterKeys = await Promise.all(
      cluster.ports.map(async (port) =>
        (
          await cluster.cli(port, '--scan', '--pattern', `${api.container.config.queuePrefix}:ratelimit:*`)
        ).trim(),
      ),
    );
    expect(limiterKeys.join('')).not.toBe('');
    const metrics = (await api.get('/metrics')).text;
    expect(metrics).toMatch(/sluice_redis_up 1/);
    expect(metrics).toMatch(/sluice_queue_jobs\{queue="sync-2",state="completed"\}/);
  }, 60_000);

  it('schedules: one scheduler per source in its shard; reconcile re-homes strays and clears a retired shard', async () => {
    const { queues, schedules, sourceStore, config } = api.container;
    const id = await create({ records: 1 }, { refresh_interval: 3600 });
    const home = queues.syncFor(id);
    expect(await home.getJobScheduler(schedulerId(id))).toBeDefined();
    // As if SYNC_SHARDS had been different: a copy in another shard and one in retired shard 5.
    const other = queues.syncShards.find((q) => q !== home)!;
    const retiredName = syncQueueName(5);
    const retired = new Queue(retiredName, {
      connection: api.container.redis,
      prefix: queues.prefixOf(retiredName),
    });
    try {
      for (const queue of [other, retired])
        await queue.upsertJobScheduler(schedulerId(id), { every: 3_600_000 }, { data: { sourceId: id } });
      await home.removeJobScheduler(schedulerId(id));
      const report = await schedules.reconcile(sourceStore);
      expect(report.removed).toBeGreaterThanOrEqual(2);
      expect(await home.getJobScheduler(schedulerId(id))).toBeDefined();
      expect(await other.getJobScheduler(schedulerId(id))).toBeUndefined();
      expect(await retired.getJobSchedulersCount()).toBe(0);
      // Deactivated: gone from every shard.
      expect((await api.put(`/raw-data-sources/${id}`, { is_active: false })).status).toBe(200);
      await until(
        'scheduler removed',
        async () => Promise.all(queues.syncShards.map((q) => q.getJobScheduler(schedulerId(id)))),
        (found) => found.every((s) => !s),
        10_000,
      );
      expect(config.syncShards).toBe(SHARDS);
    } finally {
      await retired.close();
    }
  }, 60_000);

  it('cancel stops a running sync in any shard; the concurrency gate script runs in one slot', async () => {
    const id = await create({ records: 200, batch: 1, delay_ms: 100 });
    const started = await api.post(`/raw-data-sources/${id}/sync`);
    expect(started.status, started.text).toBe(202);
    await until(
      'sync running',
      async () => (await runsOf(id))[0]?.status,
      (s) => s === 'running',
    );
    const cancelled = await api.post(`/raw-data-sources/${id}/cancel`);
    expect(cancelled.status, cancelled.text).toBe(200);
    const job = await until(
      'job stopped',
      async () => (await api.container.queues.findSyncJob(started.body.job_id, id))?.job.getState(),
      (state) => state === 'completed',
    );
    expect(job).toBe('completed');
    expect((await runsOf(id))[0]).toMatchObject({ status: 'cancelled' });
    expect(await landed(id)).toBeLessThan(200);

    const gate = new ConcurrencyGate(api.container.redis, {
      prefix: api.container.config.queuePrefix,
      cluster: true,
      leaseMs: 5000,
      logger: api.container.logger,
    });
    const first = await gate.acquire('db.example:5432', 1, 'job-a');
    expect(first.lease).toBeDefined();
    expect((await gate.acquire('db.example:5432', 1, 'job-b')).lease).toBeUndefined();
    await first.lease!.release();
    const again = await gate.acquire('db.example:5432', 1, 'job-b');
    expect(again.lease).toBeDefined();
    await again.lease!.release();
  }, 60_000);

  it('every cluster node is Sluice’s own Redis: a stream source on a node that is no seed is refused', async () => {
    for (const port of [PORTS[0]!, PORTS[4]!]) {
      const res = await api.post('/raw-data-sources/test', {
        name: `own-node-${port}`,
        source_type: 'stream',
        connection_string: `redis://127.0.0.1:${port}/0`,
        metadata: { stream: 'anything' },
      });
      expect(res.status, res.text).toBe(200);
      const resolve = (res.body.steps as { name: string; code?: string; message: string }[]).find(
        (s) => s.name === 'resolve',
      );
      expect(resolve, `port ${port}`).toMatchObject({ code: 'forbidden_address' });
      expect(resolve?.message).toMatch(/Sluice's own Redis/);
    }
  }, 60_000);

  it('a master failover in the middle of syncs: nothing lost, nothing landed twice, no run left running', async () => {
    const ids = await Promise.all(
      Array.from({ length: 9 }, () => create({ records: 24, batch: 2, delay_ms: 150 })),
    );
    // The earlier tests' sources sit this fan-out out.
    const others: string[] = await api
      .knex('raw_data_sources')
      .whereNotIn('id', ids)
      .where({ is_active: true })
      .pluck('id');
    for (const other of others)
      expect((await api.put(`/raw-data-sources/${other}`, { is_active: false })).status).toBe(200);
    const fanOut = await api.post('/raw-data-sources/sync-all');
    expect(fanOut.status, fanOut.text).toBe(202);
    expect(fanOut.body.queued).toBe(ids.length);
    await until(
      'syncs running',
      async () =>
        api.knex('sync_runs').whereIn('source_id', ids).where({ status: 'running' }).count({ n: '*' }),
      (rows) => Number(rows[0]?.n) >= 2,
    );

    // The master holding the most-used shard hands over to its replica (CLUSTER FAILOVER: the
    // replica catches up first), with syncs running and jobs waiting on it.
    const { busiest, master, replica } = await masterOfBusiestShard(ids);
    const inFlight = await api
      .knex('sync_runs')
      .whereIn('source_id', ids)
      .where({ status: 'running' })
      .count({ n: '*' });
    expect((await cluster.cli(replica.port, 'cluster', 'failover')).trim()).toBe('OK');
    await until(
      'replica promoted',
      async () => (await cluster.topology()).find((n) => n.port === replica.port)!.role,
      (role) => role === 'master',
      20_000,
    );
    await cluster.settled();

    // For the reader of the output: what was under way when the master went (not asserted: timing).
    console.log(
      `failover of the master of shard ${busiest} (port ${master.port} → ${replica.port}) with ${inFlight[0]?.n} syncs running`,
    );
    expect(await allFinished(ids)).toEqual(ids.map(() => 'success'));
    for (const id of ids) {
      expect(await landed(id), `records of ${id}`).toBe(24);
      const runs = await runsOf(id);
      expect(runs, `runs of ${id}`).toHaveLength(1);
      expect(runs[0]).toMatchObject({ status: 'success', records: 24 });
    }
    expect(await openRuns(ids)).toBe(0);
    // Landed once: no record index twice for any source.
    expect(await duplicates(ids)).toEqual([]);
  }, 90_000);
  it('a master killed in the middle of syncs: its replica takes over, nothing lands twice, no run is left open', async () => {
    const others: string[] = await api.knex('raw_data_sources').where({ is_active: true }).pluck('id');
    for (const other of others)
      expect((await api.put(`/raw-data-sources/${other}`, { is_active: false })).status).toBe(200);
    const ids = await Promise.all(
      Array.from({ length: 6 }, () => create({ records: 24, batch: 2, delay_ms: 150 })),
    );
    for (const id of ids) expect((await api.post(`/raw-data-sources/${id}/sync`)).status).toBe(202);
    await until(
      'syncs running',
      async () =>
        api.knex('sync_runs').whereIn('source_id', ids).where({ status: 'running' }).count({ n: '*' }),
      (rows) => Number(rows[0]?.n) >= 2,
    );
    const { busiest, master, replica } = await masterOfBusiestShard(ids);
    // A crash, not a hand-over: replication is asynchronous, so the last writes of the dead master
    // may be gone (a lock renewal, a job's move). Sluice must still close every run.
    await cluster.kill(master.port);
    await until(
      'replica promoted',
      async () => (await cluster.topology()).find((n) => n.port === replica.port)!.role,
      (role) => role === 'master',
      20_000,
    );
    await cluster.settled();
    console.log(`killed the master of shard ${busiest} (port ${master.port}); ${replica.port} took over`);
    await until(
      'every run closed',
      () => openRuns(ids),
      (n) => n === 0,
      60_000,
    );
    expect(await duplicates(ids)).toEqual([]);
    const outcomes: Record<string, number> = {};
    for (const id of ids) {
      const runs = await runsOf(id);
      for (const run of runs) outcomes[run.status] = (outcomes[run.status] ?? 0) + 1;
      // A run that succeeded landed everything; one closed otherwise says why.
      for (const run of runs) expect(['success', 'failed']).toContain(run.status);
      if (runs.some((r) => r.status === 'success')) expect(await landed(id)).toBe(24);
      expect(await landed(id)).toBeLessThanOrEqual(24);
    }
    console.log(`after the crash: runs ${JSON.stringify(outcomes)}`);
  }, 90_000);
});
