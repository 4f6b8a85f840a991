import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COUNTS_TABLE } from '../../src/sources/source-counts';
import { startTestApi, type TestApi } from '../helpers/api-harness';

describe('worker maintenance', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(() => api?.close());

  it('the periodic repair folds the source counts ledger to one row per key', async () => {
    const { knex } = api.container;
    // Written behind the API's back, one statement each: every one appends its own ledger delta.
    for (let i = 0; i < 40; i++)
      await knex('raw_data_sources').insert({
        name: `fold-${process.pid}-${i}`,
        source_type: i % 2 ? 'api' : 'database',
        is_active: i % 3 !== 0,
        metadata: {},
      });
    const rows = async () => Number((await knex(COUNTS_TABLE).count({ n: '*' }).first())!.n);
    const keys = async () =>
      Number(
        (await knex
          .from(knex('raw_data_sources').distinct('source_type', 'is_active', 'sync_status').as('k'))
          .count({ n: '*' })
          .first())!.n,
      );
    expect(await rows()).toBeGreaterThan(await keys());
    const before = await api.get('/raw-data-sources?type=api&active=true');

    await (await api.startWorker()).repair();

    expect(await rows()).toBe(await keys());
    const after = await api.get('/raw-data-sources?type=api&active=true');
    expect(after.body.pagination.total).toBe(before.body.pagination.total);
  });

  it('the periodic repair purges expired unsaved-test drafts (and their sealed secrets), keeping live ones', async () => {
    const { knex, drafts } = api.container;
    const draft = {
      name: `draft-${process.pid}`,
      source_type: 'api',
      connection_string: 'https://u:p@127.0.0.1/x',
    };
    const expired = await drafts.save(draft);
    const live = await drafts.save(draft);
    await knex('source_drafts')
      .update({ expires_at: new Date(Date.now() - 1000) })
      .where({ id: expired });

    // One repair per interval across all workers: the pass of the test above still holds the lock.
    await api.container.redis.del(`${api.container.config.queuePrefix}:lock:repair-runs`);
    await (await api.startWorker()).repair();

    const left = (await knex('source_drafts').select('id').whereIn('id', [expired, live])).map((r) => r.id);
    expect(left).toEqual([live]);
  });
});
