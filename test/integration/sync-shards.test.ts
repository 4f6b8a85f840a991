import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContainer, type Container } from '../../src/container';
import { schedulerId, syncShardOf } from '../../src/queue/queue-names';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';

/**
 * SYNC_SHARDS on one Redis, and what changing it does: a deployment made with one shard is
 * restarted with three; the schedule reconcile moves each active source's scheduler from `sync`
 * to its shard (and back again when the count returns to one), so no source ends up with two.
 * The cluster itself is test/integration/redis-cluster.test.ts.
 */
describe('sync shards on one Redis, and changing SYNC_SHARDS', () => {
  let api: TestApi;
  let resharded: Container | undefined;
  let seq = 0;
  beforeAll(async () => {
    api = await startTestApi({ connectors: [new ScriptedConnector('database')] });
  });
  afterAll(async () => {
    await resharded?.close();
    await api?.close();
  });

  const create = async () => {
    const res = await api.post('/raw-data-sources', {
      name: `shard-${process.pid}-${++seq}`,
      source_type: 'database',
      connection_string: 'postgres://loader:pw@127.0.0.1:5432/warehouse',
      refresh_interval: 3600,
      metadata: { records: 3 },
    });
    expect(res.status, res.text).toBe(201);
    return res.body.id as string;
  };

  it('SYNC_SHARDS=1 keeps the single `sync` queue and its key names', () => {
    const { queues, config } = api.container;
    expect(queues.syncShards.map((q) => q.name)).toEqual(['sync']);
    expect(queues.sync.toKey('wait')).toBe(`${config.queuePrefix}:sync:wait`);
  });

  it('restarted with SYNC_SHARDS=3: reconcile re-homes every scheduler, syncs run in their shard; back to 1 moves them back', async () => {
    const ids = await Promise.all(Array.from({ length: 12 }, () => create()));
    const one = api.container.queues.sync;
    for (const id of ids) expect(await one.getJobScheduler(schedulerId(id))).toBeDefined();

    resharded = createContainer(
      { ...api.container.config, syncShards: 3, syncShardsConsume: [0, 1, 2] },
      { logger: api.container.logger, connectors: [new ScriptedConnector('database')] },
    );
    const report = await resharded.schedules.reconcile(resharded.sourceStore);
    const moved = ids.filter((id) => syncShardOf(id, 3) !== 0);
    expect(moved.length).toBeGreaterThan(0);
    expect(report).toMatchObject({ upserted: moved.length, removed: moved.length });
    for (const id of ids) {
      const home = syncShardOf(id, 3);
      for (const [n, queue] of resharded.queues.syncShards.entries())
        expect(Boolean(await queue.getJobScheduler(schedulerId(id))), `${id} in shard ${n}`).toBe(n === home);
    }

    // A manual sync on the resharded side goes to its source's shard; GET /jobs/{id} finds it.
    const id = moved[0]!;
    const accepted = await resharded.sync.requestSync(id);
    const found = await resharded.queues.findSyncJob(accepted.job_id, id);
    expect(found?.queue.name).toBe(`sync-${syncShardOf(id, 3)}`);
    expect(await resharded.sync.getJob(accepted.job_id)).toMatchObject({ queue: 'sync' });
    await resharded.lifecycle.cancel(accepted.run_id, 'test over');
    await found!.queue.remove(accepted.job_id);

    // Back to one shard: the retired shards' schedulers are found and moved home to `sync`.
    const back = await api.container.schedules.reconcile(api.container.sourceStore);
    expect(back).toMatchObject({ upserted: moved.length, removed: moved.length });
    for (const id of ids) expect(await one.getJobScheduler(schedulerId(id))).toBeDefined();
    for (const queue of resharded.queues.syncShards.slice(1))
      expect(await queue.getJobSchedulersCount()).toBe(0);
  });
});
