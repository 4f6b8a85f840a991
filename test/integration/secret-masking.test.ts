import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remaskSecrets } from '../../src/crypto/rewrap';
import { rawDataSourceResource } from '../../src/generated';
import { sourceSecretMask } from '../../src/sources/source-secret-mask';
import { startTestApi, type TestApi } from '../helpers/api-harness';

// Issue 13 row 7: what a read key sees of a source's connection string is masked by allow-list,
// and a webhook's shared secret is never shown, whatever it looks like.
const BOT = 'bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcGVyYXRvciJ9.c2lnbmF0dXJl';

describe('stored masks of connection strings (row 7)', () => {
  let api: TestApi;
  let readToken: string;

  beforeAll(async () => {
    api = await startTestApi();
    const key = await api.post('/api-keys', { name: 'masking-read', scope: 'read' });
    expect(key.status).toBe(201);
    readToken = key.body.token as string;
  });
  afterAll(() => api.close());

  const readAsReader = async (id: string) => {
    const res = await api.request('GET', `/raw-data-sources/${id}`, { token: readToken });
    expect(res.status).toBe(200);
    return res.body as { connection_string: string | null; has_connection_string: boolean };
  };

  it('an api URL with a token in its path and a JWT in its query shows neither', async () => {
    const created = await api.post('/raw-data-sources', {
      name: 'masking-api',
      source_type: 'api',
      connection_string: `https://api.example/${BOT}/getUpdates?jwt=${JWT}&offset=5`,
    });
    expect(created.status, created.text).toBe(201);
    const shown = await readAsReader(created.body.id as string);
    expect(shown.connection_string).toBe('https://api.example/****/getUpdates?jwt=****&offset=****');
    expect(created.body.connection_string).toBe(shown.connection_string);
    const text = JSON.stringify(shown);
    for (const part of [BOT, 'AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw', JWT, 'eyJ'])
      expect(text).not.toContain(part);
  });

  it('a webhook secret that parses as a URL is shown as **** only', async () => {
    const secret = `https://hooks.example/${BOT}?sig=${JWT}`;
    const created = await api.post('/raw-data-sources', {
      name: 'masking-webhook',
      source_type: 'webhook',
      connection_string: secret,
    });
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;
    expect((await readAsReader(id)).connection_string).toBe('****');
    // A new secret sent without the type is masked as the stored type says.
    const updated = await api.put(`/raw-data-sources/${id}`, {
      name: 'masking-webhook',
      connection_string: 'https://hooks.example/plain/path',
    });
    expect(updated.status, updated.text).toBe(200);
    expect((await readAsReader(id)).connection_string).toBe('****');
  });

  it('changing a source to webhook (its secret resent, as a type change requires) masks it whole', async () => {
    const created = await api.post('/raw-data-sources', {
      name: 'masking-turned-webhook',
      source_type: 'api',
      connection_string: 'https://hooks.example/plain/path',
    });
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;
    expect((await readAsReader(id)).connection_string).toBe('https://hooks.example/plain/path');
    // A type change must resend the secret (it was checked against the old type's rules only).
    const unsent = await api.put(`/raw-data-sources/${id}`, { source_type: 'webhook' });
    expect(unsent.status, unsent.text).toBe(400);
    const res = await api.put(`/raw-data-sources/${id}`, {
      name: 'masking-turned-webhook',
      source_type: 'webhook',
      connection_string: 'https://hooks.example/plain/path',
    });
    expect(res.status, res.text).toBe(200);
    expect((await readAsReader(id)).connection_string).toBe('****');
    expect(res.body.connection_string).toBe('****');
  });

  it('masks stored under older rules are recomputed by the rewrap command (remaskSecrets)', async () => {
    const url = `https://api.example/${BOT}/getUpdates?jwt=${JWT}`;
    const api1 = await api.post('/raw-data-sources', {
      name: 'remask-api',
      source_type: 'api',
      connection_string: url,
    });
    const hook = await api.post('/raw-data-sources', {
      name: 'remask-webhook',
      source_type: 'webhook',
      connection_string: 'https://hooks.example/plain/path',
    });
    // What the rules before this change stored: the path and the jwt value shown, the webhook URL too.
    await api.knex('raw_data_sources').where({ id: api1.body.id }).update({ connection_string_masked: url });
    await api
      .knex('raw_data_sources')
      .where({ id: hook.body.id })
      .update({ connection_string_masked: 'https://hooks.example/plain/path' });
    const masks = new Map([[rawDataSourceResource.table, sourceSecretMask]]);
    const counts = await remaskSecrets(api.knex, api.container.secrets, { batchSize: 2, masks });
    expect(counts).toMatchObject({ remasked: 2, skipped: 0, failed: 0 });
    expect((await readAsReader(api1.body.id as string)).connection_string).toBe(
      'https://api.example/****/getUpdates?jwt=****',
    );
    expect((await readAsReader(hook.body.id as string)).connection_string).toBe('****');
    const again = await remaskSecrets(api.knex, api.container.secrets, { masks });
    expect(again).toMatchObject({ remasked: 0, failed: 0 });
    expect(again.scanned).toBe(counts.scanned);
  });
});
