import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentSyncError } from '../../src/connectors/connector';
import { SecretBox } from '../../src/crypto/secret-box';
import { rawDataSourceResource, type RawDataSource } from '../../src/generated';
import { CrudRepository } from '../../src/db/crud.repository';
import { SourceStore } from '../../src/sources/source-store';
import { SyncRunRepository } from '../../src/runs/sync-run.repository';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { TEST_ENCRYPTION_KEYS } from '../helpers/test-env';

/**
 * The run transitions a worker makes on every sync (start, succeed, fail) are single statements;
 * these pin down what the transactions they replaced guaranteed: both rows or neither, the
 * attempt fence, and a deactivated source cancelling its run.
 */
describe('SyncRunRepository transitions and SourceStore', () => {
  let database: TestDatabase;
  let knex: Knex;
  let runs: SyncRunRepository;
  let sources: CrudRepository<RawDataSource>;
  let reader: SourceStore;
  let seq = 0;

  beforeAll(async () => {
    database = await createTestDatabase();
    knex = database.knex;
    const secrets = new SecretBox(TEST_ENCRYPTION_KEYS);
    runs = new SyncRunRepository(knex);
    sources = new CrudRepository<RawDataSource>(rawDataSourceResource, knex, secrets);
    reader = new SourceStore(sources, knex, secrets);
  });
  afterAll(() => database.drop());

  const source = async (patch: Record<string, unknown> = {}) =>
    sources.create({
      name: `run-repo-${++seq}`,
      source_type: 'database',
      connection_string: `postgres://loader:s3cret-${seq}@127.0.0.1:5432/warehouse`,
      is_active: true,
      metadata: { table: 'events' },
      ...patch,
    });
  const status = async (id: string) =>
    (await knex('raw_data_sources')
      .select('sync_status', 'error_message', 'last_sync_at')
      .where({ id })
      .first()) as {
      sync_status: string;
      error_message: string | null;
      last_sync_at: Date | null;
    };
  const queued = async (sourceId: string) =>
    (await runs.createQueued({ id: randomUUID(), sourceId, trigger: 'manual' }))!;

  it('start moves the run to running and the source to syncing together', async () => {
    const s = await source();
    const run = await queued(s.id);
    const started = await runs.start(run.id, 1);
    expect(started).toMatchObject({ id: run.id, source_id: s.id, status: 'running', attempt: 1 });
    expect(started!.started_at).not.toBeNull();
    expect(Object.keys(started!)).not.toContain('source_active');
    expect((await status(s.id)).sync_status).toBe('syncing');

    // A later attempt keeps the first start time.
    const again = await runs.start(run.id, 2);
    expect(again).toMatchObject({ status: 'running', attempt: 2, started_at: started!.started_at });
  });

  it('start cancels the run of a deactivated source and leaves the source alone', async () => {
    const s = await source();
    const run = await queued(s.id);
    await knex('raw_data_sources').update({ is_active: false }).where({ id: s.id });
    expect(await runs.start(run.id, 1)).toBeUndefined();
    expect(await runs.get(run.id)).toMatchObject({
      status: 'cancelled',
      error: 'source was deactivated',
    });
    expect((await runs.get(run.id))!.finished_at).not.toBeNull();
    expect((await status(s.id)).sync_status).toBe('pending');
  });

  it('start of a finished or unknown run changes nothing', async () => {
    const s = await source();
    const run = await queued(s.id);
    await runs.start(run.id, 1);
    await runs.succeed(run.id, undefined, 1);
    expect(await runs.start(run.id, 2)).toBeUndefined();
    expect(await runs.get(run.id)).toMatchObject({ status: 'success', attempt: 1 });
    expect((await status(s.id)).sync_status).toBe('success');
    expect(await runs.start(randomUUID(), 1)).toBeUndefined();
  });

  it('succeed and fail close the run and the source with the same outcome', async () => {
    const s = await source();
    const run = await queued(s.id);
    await runs.start(run.id, 1);
    const done = await runs.succeed(run.id, { records: 5, bytes: 120, invalid: 1 }, 1);
    expect(done).toMatchObject({ status: 'success', records: 5, bytes: 120, invalid: 1, error: null });
    expect(done!.duration_ms).toBeGreaterThanOrEqual(0);
    const after = await status(s.id);
    expect(after).toMatchObject({ sync_status: 'success', error_message: null });
    expect(after.last_sync_at!.toISOString()).toBe(done!.finished_at);

    const second = await queued(s.id);
    await runs.start(second.id, 1);
    const failed = await runs.fail(second.id, 'boom');
    // Without counts, the run keeps the ones its batches committed.
    expect(failed).toMatchObject({ status: 'failed', error: 'boom', records: 0 });
    expect(await status(s.id)).toMatchObject({ sync_status: 'failed', error_message: 'boom' });
  });

  it('an attempt that lost its run closes nothing (attempt fence)', async () => {
    const s = await source();
    const run = await queued(s.id);
    await runs.start(run.id, 1);
    await runs.start(run.id, 2);
    expect(await runs.succeed(run.id, undefined, 1)).toBeUndefined();
    expect(await runs.fail(run.id, 'late', undefined, 1)).toBeUndefined();
    expect(await runs.get(run.id)).toMatchObject({ status: 'running', attempt: 2 });
    expect((await status(s.id)).sync_status).toBe('syncing');
    expect(await runs.succeed(run.id, undefined, 2)).toMatchObject({ status: 'success' });
  });

  it('SourceStore loads settings, decrypted secret and state in one call', async () => {
    const s = await source();
    const loaded = await reader.loadWithState(s.id);
    expect(loaded).toEqual({
      source: {
        id: s.id,
        name: s.name,
        source_type: 'database',
        connection_string: `postgres://loader:s3cret-${seq}@127.0.0.1:5432/warehouse`,
        metadata: { table: 'events' },
        schema_definition: null,
      },
      landing: { syncMode: 'append', maxInvalidRatio: null },
      state: undefined,
    });
    expect(await reader.load(s.id)).toEqual(loaded!.source);

    const run = await queued(s.id);
    await knex('source_sync_state').insert({ source_id: s.id, state: { cursor: 42 }, run_id: run.id });
    expect((await reader.loadWithState(s.id))!.state).toEqual({ cursor: 42 });

    await knex('raw_data_sources')
      .update({
        sync_mode: 'dedup',
        max_invalid_ratio: 0.25,
        metadata: { table: 'events', primary_key: 'id' },
      })
      .where({ id: s.id });
    expect((await reader.loadWithState(s.id))!.landing).toEqual({
      syncMode: 'dedup',
      maxInvalidRatio: 0.25,
      dedup: { primaryKey: ['id'] },
    });

    const bare = await source({ connection_string: null, source_type: 'webhook', metadata: null });
    expect((await reader.loadWithState(bare.id))!.source.connection_string).toBeNull();
    expect(await reader.loadWithState(randomUUID())).toBeUndefined();
    expect(await reader.load(randomUUID())).toBeUndefined();
  });

  it('SourceStore fails closed on a secret that does not decrypt', async () => {
    const s = await source();
    const other = await source();
    // A ciphertext copied from another row: its associated data no longer matches.
    const { connection_string_ciphertext: copied } = await knex('raw_data_sources')
      .select('connection_string_ciphertext')
      .where({ id: other.id })
      .first();
    await knex('raw_data_sources').update({ connection_string_ciphertext: copied }).where({ id: s.id });
    await expect(reader.loadWithState(s.id)).rejects.toBeInstanceOf(PermanentSyncError);
    await expect(reader.load(s.id)).rejects.toThrow(/cannot be decrypted/);
  });
});
