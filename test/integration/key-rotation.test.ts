import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContainer, type Container } from '../../src/container';
import { associatedData, rewrapSecrets } from '../../src/crypto/rewrap';
import { DecryptionError, SecretBox } from '../../src/crypto/secret-box';
import { createLogger } from '../../src/logger';
import { SourceDrafts } from '../../src/sources/source-drafts';
import type { SyncWorker } from '../../workers/sync-worker';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { createWorker } from '../../workers/worker-container';
import { until } from '../helpers/until';

/**
 * Key rotation end to end: secrets written under key a, rewrapped under b with ENCRYPTION_KEYS
 * = b,a, then read back with b alone. And tampering fails closed: a decrypt throws, a sync fails
 * with the generic message, reads (which never decrypt) go on working.
 */
const key = () => randomBytes(32).toString('base64');
const A = `a:${key()}`;
const B = `b:${key()}`;
const C = `c:${key()}`;
const TABLE = 'raw_data_sources';
const COLUMN = 'connection_string_ciphertext';
const SOURCES = 10;
const BATCH = 3;

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('key rotation and tamper resistance', () => {
  let api: TestApi;
  const extra: Container[] = [];
  const workers: SyncWorker[] = [];
  let port: number;
  /** id → the plaintext the API was given. */
  const originals = new Map<string, string>();
  let draftId: string;
  const draftSecret = `postgres://drafter:Draft-${randomBytes(6).toString('hex')}@127.0.0.1:5432/db`;

  /** A second process on the same database and queues, with another keyring. */
  const containerWith = (keys: string): Container => {
    const c = createContainer(
      { ...api.container.config, encryptionKeys: keys },
      { logger: createLogger('silent') },
    );
    extra.push(c);
    return c;
  };
  const ciphertexts = async () =>
    (await api.knex(TABLE).select('id', COLUMN).orderBy('id')) as { id: string; [COLUMN]: string }[];

  beforeAll(async () => {
    api = await startTestApi({
      // TEST_WAIT_MS 0: the draft test answers 202 at once, leaving its sealed draft in place.
      env: { ENCRYPTION_KEYS: A, SYNC_ATTEMPTS: '1', TEST_WAIT_MS: '0', CONNECT_TIMEOUT_MS: '2000' },
    });
    port = await closedPort();
    for (let i = 0; i < SOURCES; i++) {
      const webhook = i % 4 === 3;
      const secret = webhook
        ? `Webhook-Shared-${randomBytes(8).toString('hex')}`
        : `postgres://loader:Pw-${i}-${randomBytes(6).toString('hex')}@127.0.0.1:${port}/warehouse`;
      const res = await api.post('/raw-data-sources', {
        name: `rotation-${i}`,
        source_type: webhook ? 'webhook' : 'database',
        connection_string: secret,
        metadata: webhook ? {} : { table: 'items' },
      });
      expect(res.status, res.text).toBe(201);
      originals.set(res.body.id, secret);
    }
    const draft = await api.post('/raw-data-sources/test', {
      name: 'rotation-draft',
      source_type: 'database',
      connection_string: draftSecret,
    });
    expect(draft.status, draft.text).toBe(202);
    const [row] = await api.knex('source_drafts').select('id');
    draftId = row.id;
  });

  afterAll(async () => {
    for (const w of workers) await w.close();
    for (const c of extra) await c.close();
    await api?.close();
  });

  it('written with key a only, every secret says key a', async () => {
    const rows = await ciphertexts();
    expect(rows).toHaveLength(SOURCES);
    for (const row of rows) expect(row[COLUMN].startsWith('v1:a:')).toBe(true);
    const draft = await api.knex('source_drafts').where({ id: draftId }).first();
    expect(draft[COLUMN].startsWith('v1:a:')).toBe(true);
  });

  it('with b,a a rewrap pages through every row and seals each with b; a second run has nothing to do', async () => {
    const rotating = containerWith(`${B},${A}`);
    const batches: number[] = [];
    const counts = await rewrapSecrets(rotating.knex, rotating.secrets, {
      batchSize: BATCH,
      onBatch: (_table, c) => batches.push(c.scanned),
    });
    // 10 sources in pages of 3 (4 pages) and the draft (1 page): paging covered every row.
    expect(batches).toHaveLength(Math.ceil(SOURCES / BATCH) + 1);
    expect(counts).toMatchObject({ scanned: SOURCES + 1, rewrapped: SOURCES + 1, skipped: 0, failed: 0 });
    for (const row of await ciphertexts()) expect(row[COLUMN].startsWith('v1:b:')).toBe(true);
    const draft = await api.knex('source_drafts').where({ id: draftId }).first();
    expect(draft[COLUMN].startsWith('v1:b:')).toBe(true);

    const again = await rewrapSecrets(rotating.knex, rotating.secrets, { batchSize: BATCH });
    expect(again).toMatchObject({ scanned: SOURCES + 1, rewrapped: 0, skipped: 0, failed: 0 });
  });

  it('with key b alone every secret decrypts to the original; key a alone no longer opens any', async () => {
    const rotated = containerWith(B);
    for (const [id, secret] of originals)
      expect(await rotated.sources.revealSecret(id, 'connection_string')).toBe(secret);
    const draft = await new SourceDrafts(rotated.knex, rotated.secrets).take(draftId);
    expect(draft?.connection_string).toBe(draftSecret);

    const [someId] = originals.keys();
    await expect(api.container.sources.revealSecret(someId!, 'connection_string')).rejects.toThrow(
      DecryptionError,
    );
  });

  it('a value rewritten while the rewrap runs is left as the writer wrote it', async () => {
    const [first] = await ciphertexts();
    const id = first!.id;
    // Back under key a, as if an old process had written it just now.
    const boxA = new SecretBox(A);
    const aad = associatedData(TABLE, 'connection_string', id);
    await api
      .knex(TABLE)
      .where({ id })
      .update({ [COLUMN]: boxA.encrypt(originals.get(id)!, aad) });

    const rotating = containerWith(`${B},${A}`);
    // Hold the row: the rewrap reads it, then its guarded UPDATE waits on our lock.
    const trx = await api.knex.transaction();
    try {
      await trx(TABLE).where({ id }).forUpdate();
      const running = rewrapSecrets(rotating.knex, rotating.secrets, { batchSize: BATCH });
      await until(
        async () =>
          (
            await api.knex.raw(
              `SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE%'`,
            )
          ).rows[0].n as number,
        (n) => n > 0,
      );
      const concurrent = `postgres://loader:Concurrent-${randomBytes(6).toString('hex')}@127.0.0.1:${port}/w`;
      const written = new SecretBox(B).encrypt(concurrent, aad);
      await trx(TABLE)
        .where({ id })
        .update({ [COLUMN]: written });
      await trx.commit();
      const counts = await running;
      expect(counts).toMatchObject({ rewrapped: 0, skipped: 1, failed: 0 });
      const after = await api.knex(TABLE).where({ id }).first();
      expect(after[COLUMN]).toBe(written);
      originals.set(id, concurrent);
    } finally {
      if (!trx.isCompleted()) await trx.rollback();
    }
  });

  describe('tampered ciphertext fails closed', () => {
    let flipped: string;
    let swapped: string;
    let intact: string;
    let rotated: Container;

    beforeAll(async () => {
      const rows = (await api
        .knex(TABLE)
        .select('id', COLUMN)
        .where({ source_type: 'database' })
        .orderBy('id')) as { id: string; [COLUMN]: string }[];
      [flipped, swapped, intact] = rows.map((r) => r.id) as [string, string, string];
      // One byte of the sealed body flipped (in the base64url text: a character changed).
      const original = rows[0]![COLUMN];
      const at = original.length - 10;
      const changed = original.slice(0, at) + (original[at] === 'A' ? 'B' : 'A') + original.slice(at + 1);
      await api
        .knex(TABLE)
        .where({ id: flipped })
        .update({ [COLUMN]: changed });
      // Another row's valid ciphertext: the associated data binds it to that row.
      await api
        .knex(TABLE)
        .where({ id: swapped })
        .update({ [COLUMN]: rows[2]![COLUMN] });
      rotated = containerWith(B);
    });

    it('revealSecret throws DecryptionError for a flipped byte and for a copied ciphertext', async () => {
      for (const id of [flipped, swapped])
        await expect(rotated.sources.revealSecret(id, 'connection_string')).rejects.toThrow(DecryptionError);
      expect(await rotated.sources.revealSecret(intact, 'connection_string')).toBe(originals.get(intact));
    });

    it('the API still reads them: GET and list never decrypt', async () => {
      for (const id of [flipped, swapped]) {
        const res = await api.get(`/raw-data-sources/${id}`);
        expect(res.status).toBe(200);
        expect(res.body.has_connection_string).toBe(true);
        expect(res.body.connection_string).toMatch(/\*/);
      }
      const list = await api.get('/raw-data-sources?limit=100');
      expect(list.status).toBe(200);
      expect(list.body.pagination.total).toBe(SOURCES);
    });

    it('a sync of a tampered source fails with the generic message; an intact one gets past decryption', async () => {
      // The worker holds key b only: the API (key a) enqueues, this process runs the jobs.
      const worker = createWorker(rotated);
      workers.push(worker);
      await worker.start();
      const runs: Record<string, string> = {};
      for (const id of [flipped, swapped, intact]) {
        const res = await api.post(`/raw-data-sources/${id}/sync`);
        expect(res.status, res.text).toBe(202);
        runs[id] = res.body.run_id;
      }
      const settled = async (id: string) =>
        until(
          async () => (await api.get(`/raw-data-sources/${id}`)).body,
          (s) => s.sync_status === 'failed' || s.sync_status === 'success',
        );
      for (const id of [flipped, swapped]) {
        const source = await settled(id);
        expect(source.sync_status).toBe('failed');
        expect(source.error_message).toMatch(/cannot be decrypted/);
        const run = await api.knex('sync_runs').where({ id: runs[id] }).first();
        expect(run.status).toBe('failed');
        expect(run.error).toMatch(/cannot be decrypted/);
      }
      // The intact source decrypts and then fails to connect (nothing listens): not a decryption error.
      const ok = await settled(intact);
      expect(ok.sync_status).toBe('failed');
      expect(ok.error_message).not.toMatch(/decrypt/);
    });

    it('the rewrap CLI reports a tampered row by id, without the secret, and exits 1', async () => {
      const run = promisify(execFile);
      const result = await run('node_modules/.bin/tsx', ['scripts/rewrap.ts', '--batch-size=4'], {
        env: { ...process.env, DATABASE_URL: api.database.url, ENCRYPTION_KEYS: `${C},${B}` },
      }).then(
        (r) => ({ code: 0, ...r }),
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
      const output = `${result.stdout}${result.stderr}`;
      expect(result.code, output).toBe(1);
      expect(output).toContain(`scanned ${SOURCES}, rewrapped ${SOURCES - 2}, skipped 0, failed 2`);
      expect(output).toContain(flipped);
      expect(output).toContain(swapped);
      for (const secret of originals.values()) expect(output).not.toContain(secret);
    });
  });
});
