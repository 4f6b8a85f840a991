import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app';
import type { Connector, ConnectorContext, SyncBatch } from '../../src/connectors/connector';
import { Outbound } from '../../src/connectors/outbound';
import { WebhookBuffer } from '../../src/connectors/webhook/webhook-buffer';
import { WebhookConnector } from '../../src/connectors/webhook/webhook.connector';
import { webhookRoutes } from '../../src/sources/webhook.routes';
import { signWebhookBody, signWebhookBodyLegacy } from '../../src/connectors/webhook/webhook-signature';
import { WebhookReplayGuard } from '../../src/sources/webhook-replay-guard';
import { createLogger } from '../../src/logger';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { until } from '../helpers/until';

/** The saved-source lookup the composition root hands the webhook connector. */
const savedSourceOf = (api: TestApi) => (id: string, timeoutMs: number) =>
  api.container.sourceStore.activity(id, timeoutMs);

const SECRET = 'whsec-Zq8v3LmN0pX7rT2y';
const OTHER_SECRET = 'whsec-not-the-right-one';
let seq = 0;

interface Receipt {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary response shapes
  body: any;
}

describe('webhook source', () => {
  let api: TestApi;
  let server: Server;
  let hookBase: string;
  /** The same pipeline with WEBHOOK_LEGACY_SIGNATURES=true. */
  let legacyServer: Server;
  let legacyBase: string;
  // The connector needs the app's knex, which exists only once the harness has built the container:
  // the registry gets this delegate, which forwards to the real connector built right after.
  const real: { connector?: WebhookConnector } = {};
  const delegate: Connector = {
    type: 'webhook',
    checkConnectionString: (v) => real.connector!.checkConnectionString(v),
    test: (s, c) => real.connector!.test(s, c),
    sync: (s, st, c) => real.connector!.sync(s, st, c),
  };

  beforeAll(async () => {
    api = await startTestApi({ connectors: [delegate], env: { TEST_WAIT_MS: '10000' } });
    const { knex, sources, logger, config } = api.container;
    real.connector = new WebhookConnector({ knex, savedSource: savedSourceOf(api), batchSize: 3 });
    // The real app pipeline (request context, errors, the global JSON parser) with the webhook router.
    const listen = async (legacy: boolean): Promise<Server> => {
      const app = createApp({
        logger,
        bodyLimit: config.bodyLimit,
        routers: [
          webhookRoutes({
            knex,
            sources,
            logger,
            bodyLimit: config.bodyLimit,
            signatures: { toleranceSeconds: config.webhookToleranceSeconds, legacy },
            replays: new WebhookReplayGuard(
              api.container.redis,
              config.queuePrefix,
              config.webhookToleranceSeconds,
            ),
          }),
        ],
      });
      return new Promise((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
    };
    server = await listen(false);
    hookBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    legacyServer = await listen(true);
    legacyBase = `http://127.0.0.1:${(legacyServer.address() as AddressInfo).port}`;
    await api.startWorker();
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    legacyServer?.closeAllConnections();
    await new Promise((r) => legacyServer?.close(r));
    await api?.close();
  });

  const createSource = async (extra: Record<string, unknown> = {}): Promise<string> => {
    const res = await api.post('/raw-data-sources', {
      name: `webhook-${process.pid}-${++seq}`,
      source_type: 'webhook',
      connection_string: SECRET,
      ...extra,
    });
    expect(res.status, res.text).toBe(201);
    return res.body.id;
  };

  /** POSTs `raw` signed with `secret` unless `signature` overrides the header (null: none). */
  const receive = async (
    id: string,
    raw: string | Buffer,
    opts: {
      secret?: string;
      signature?: string | null;
      headers?: Record<string, string>;
      base?: string;
    } = {},
  ): Promise<Receipt> => {
    const signature =
      opts.signature === undefined ? signWebhookBody(opts.secret ?? SECRET, raw) : opts.signature;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      ...(signature === null ? {} : { 'X-Sluice-Signature': signature }),
      ...opts.headers,
    };
    const res = await fetch(`${opts.base ?? hookBase}/webhooks/${id}`, {
      method: 'POST',
      headers,
      body: raw,
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
  const send = (id: string, value: unknown) => receive(id, JSON.stringify(value));

  const buffered = async (id: string) =>
    (await api.knex('webhook_buffer').where({ source_id: id }).orderBy('id').select('id', 'payload')).map(
      (r: { id: string; payload: unknown }) => ({ id: String(r.id), payload: r.payload }),
    );
  const landed = async (id: string) =>
    (await api.knex('raw_records').where({ source_id: id }).orderBy('id').select('payload')).map(
      (r: { payload: unknown }) => r.payload,
    );

  const syncNow = async (id: string) => {
    const queued = await api.post(`/raw-data-sources/${id}/sync`);
    expect(queued.status, JSON.stringify(queued.body)).toBe(202);
    return until(
      async () => (await api.get(`/raw-data-sources/${id}/runs`)).body.data[0],
      (r) => r?.id === queued.body.run_id && (r.status === 'success' || r.status === 'failed'),
    );
  };

  const ctx = (): ConnectorContext => ({
    signal: new AbortController().signal,
    logger: createLogger('silent'),
    outbound: new Outbound(),
    timeoutMs: 5000,
  });

  describe('receiving', () => {
    it('a correctly signed object is 202 and buffered as one record, as sent', async () => {
      const id = await createSource();
      const raw = '{"event":"order.paid","order":{"id":42,"total":"19.90"},"tags":["a","ü"]}';
      const res = await receive(id, raw);
      expect(res.status).toBe(202);
      expect(res.body).toEqual({ received: 1 });
      expect((await buffered(id)).map((r) => r.payload)).toEqual([JSON.parse(raw)]);
    });

    it('an array is a batch: one record per element, in order', async () => {
      const id = await createSource();
      const res = await send(id, [{ n: 1 }, { n: 2 }, { n: 3 }]);
      expect(res.status).toBe(202);
      expect(res.body).toEqual({ received: 3 });
      expect((await buffered(id)).map((r) => r.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
      // An empty batch is accepted and stores nothing.
      expect((await send(id, [])).body).toEqual({ received: 0 });
      expect(await buffered(id)).toHaveLength(3);
    });

    it('a missing, malformed or wrong signature is 401 and stores nothing', async () => {
      const id = await createSource();
      const raw = JSON.stringify({ n: 1 });
      const good = signWebhookBody(SECRET, raw);
      const [stamp, v1] = good.split(',') as [string, string];
      const hex = v1.slice('v1='.length);
      const bad = [
        null,
        '',
        signWebhookBody(OTHER_SECRET, raw),
        hex,
        stamp,
        v1,
        `${stamp},v0=${hex}`,
        `${stamp},v1=${hex.slice(0, 62)}`,
        `${stamp},v1=${hex}00`,
        `${stamp},v1=${'z'.repeat(64)}`,
        `t=abc,${v1}`,
        `t=${Number(stamp.slice(2)) + 1},${v1}`,
        `${good}, ${good}`,
        `sha256=${hex}`,
        good.replace(/.$/, (c) => (c === '0' ? '1' : '0')),
      ];
      for (const signature of bad) {
        const res = await receive(id, raw, { signature });
        expect(res.status, String(signature)).toBe(401);
        expect(res.headers.get('content-type')).toContain('application/problem+json');
        expect(res.headers.get('www-authenticate')).toContain('X-Sluice-Signature');
        expect(res.body.type).toBe('/problems/invalid-signature');
      }
      expect(await buffered(id)).toEqual([]);
      // The same request, signed right, is accepted: the cases above failed on the signature alone
      // (hex in either case; unknown schemes beside v1 are ignored; any v1 of several may match).
      expect(
        (
          await receive(id, raw, {
            signature: `${stamp},v2=abc,v1=${'0'.repeat(64)},v1=${hex.toUpperCase()}`,
          })
        ).status,
      ).toBe(202);
    });

    it('the timestamp must be within the window: an expired or future-skewed signature is 401, with the reason', async () => {
      const id = await createSource();
      const raw = JSON.stringify({ n: 1 });
      const now = Math.floor(Date.now() / 1000);
      const tolerance = api.container.config.webhookToleranceSeconds;
      expect(tolerance).toBe(300);
      const expired = await receive(id, raw, {
        signature: signWebhookBody(SECRET, raw, now - tolerance - 5),
      });
      expect(expired.status).toBe(401);
      expect(expired.body.type).toBe('/problems/invalid-signature');
      expect(expired.body.detail).toContain('in the past');
      const future = await receive(id, raw, { signature: signWebhookBody(SECRET, raw, now + tolerance + 5) });
      expect(future.status).toBe(401);
      expect(future.body.detail).toContain('in the future');
      // Only a correct HMAC learns about the clock: a wrong secret with an old stamp gets the generic answer.
      const wrong = await receive(id, raw, {
        signature: signWebhookBody(OTHER_SECRET, raw, now - tolerance - 5),
      });
      expect(wrong.status).toBe(401);
      expect(wrong.body.detail).not.toContain('in the past');
      // Inside the window either way is fine.
      expect(
        (await receive(id, raw, { signature: signWebhookBody(SECRET, raw, now - tolerance + 30) })).status,
      ).toBe(202);
      expect((await receive(id, raw, { signature: signWebhookBody(SECRET, raw, now + 60) })).status).toBe(
        202,
      );
      expect(await buffered(id)).toHaveLength(2);
    });

    it('issue 13 #8: the same signed body sent twice is accepted once, the replay is 409', async () => {
      const id = await createSource();
      const raw = JSON.stringify({ order: 7 });
      const signature = signWebhookBody(SECRET, raw);
      const first = await receive(id, raw, { signature });
      const replay = await receive(id, raw, { signature });
      expect([first.status, replay.status]).toEqual([202, 409]);
      expect(replay.body.type).toBe('/problems/replayed-signature');
      // Concurrent replays too: of ten deliveries of one signature exactly one is stored.
      const again = signWebhookBody(SECRET, raw, Math.floor(Date.now() / 1000) - 100);
      const statuses = await Promise.all(
        Array.from({ length: 10 }, () => receive(id, raw, { signature: again }).then((r) => r.status)),
      );
      expect(statuses.sort((a, b) => a - b)).toEqual([202, ...Array<number>(9).fill(409)]);
      // Another source with the same secret and the same signed bytes is a different delivery.
      const other = await createSource();
      expect((await receive(other, raw, { signature })).status).toBe(202);
      expect(await buffered(id)).toHaveLength(2);
      // A delivery refused before storing (here: the source is inactive) does not burn its signature:
      // the sender's retry of it is accepted once the source is active again.
      const gone = await createSource();
      const late = signWebhookBody(SECRET, raw);
      await api.knex('raw_data_sources').where({ id: gone }).update({ is_active: false });
      expect((await receive(gone, raw, { signature: late })).status).toBe(409);
      await api.knex('raw_data_sources').where({ id: gone }).update({ is_active: true });
      expect((await receive(gone, raw, { signature: late })).status).toBe(202);
    });

    it('the legacy sha256= form is refused by default and accepted with WEBHOOK_LEGACY_SIGNATURES=true', async () => {
      const id = await createSource();
      const raw = JSON.stringify({ legacy: true });
      const legacy = signWebhookBodyLegacy(SECRET, raw);
      const refused = await receive(id, raw, { signature: legacy });
      expect(refused.status).toBe(401);
      expect(refused.body.detail).toContain('t=<unix seconds>');
      expect(api.container.config.webhookLegacySignatures).toBe(false);
      expect((await receive(id, raw, { signature: legacy, base: legacyBase })).status).toBe(202);
      // Wrong legacy signatures stay 401 there; stamped ones keep working beside them.
      expect(
        (await receive(id, raw, { signature: signWebhookBodyLegacy(OTHER_SECRET, raw), base: legacyBase }))
          .status,
      ).toBe(401);
      expect((await receive(id, raw, { base: legacyBase })).status).toBe(202);
      expect(await buffered(id)).toHaveLength(2);
    });

    it('a signature over other bytes of the same JSON (re-serialised) is 401', async () => {
      const id = await createSource();
      const value = { b: 1, a: [1, 2] };
      const signedOver = JSON.stringify(value);
      const res = await receive(id, JSON.stringify(value, null, 2), {
        signature: signWebhookBody(SECRET, signedOver),
      });
      expect(res.status).toBe(401);
      expect(await buffered(id)).toEqual([]);
    });

    it('a body over the limit is 413 (declared or streamed) and the connection stays usable', async () => {
      const id = await createSource();
      const big = JSON.stringify({ pad: 'x'.repeat(1024 * 1024 + 10) });
      const res = await receive(id, big);
      expect(res.status).toBe(413);
      expect(res.body.type).toBe('/problems/payload-too-large');
      // Chunked, so the limit must hold while reading, not only against Content-Length.
      const chunks = [Buffer.from('{"pad":"'), Buffer.alloc(1024 * 1024, 'y'), Buffer.from('"}')];
      const stream = new ReadableStream({
        start(controller) {
          for (const c of chunks) controller.enqueue(c);
          controller.close();
        },
      });
      const streamed = await fetch(`${hookBase}/webhooks/${id}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'X-Sluice-Signature': signWebhookBody(SECRET, Buffer.concat(chunks)),
        },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      expect(streamed.status).toBe(413);
      await streamed.text();
      expect((await send(id, { after: 'oversize' })).status).toBe(202);
      expect((await buffered(id)).map((r) => r.payload)).toEqual([{ after: 'oversize' }]);
    });

    it('bodies that are not JSON records are 400 or 415, and store nothing', async () => {
      const id = await createSource();
      const cases: {
        raw: string | Buffer;
        status: number;
        pointer?: string;
        headers?: Record<string, string>;
      }[] = [
        { raw: 'not json', status: 400 },
        { raw: '', status: 400 },
        { raw: '{"a":1', status: 400 },
        { raw: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]), status: 400 },
        { raw: '42', status: 400, pointer: '' },
        { raw: '"text"', status: 400, pointer: '' },
        { raw: '[{"a":1},2]', status: 400, pointer: '/1' },
        { raw: '[{"a":1},[]]', status: 400, pointer: '/1' },
        { raw: '{"a":"nul\\u0000"}', status: 400, pointer: '/a' },
        { raw: '{"a":{"b\\ud800":1}}', status: 400, pointer: '/a/b\ud800' },
        { raw: `{"a":${'['.repeat(100)}${']'.repeat(100)}}`, status: 400 },
        { raw: '{"a":1}', status: 415, headers: { 'content-type': 'text/plain' } },
        { raw: '{"a":1}', status: 415, headers: { 'content-encoding': 'gzip' } },
      ];
      for (const c of cases) {
        const res = await receive(id, c.raw, { headers: c.headers });
        expect(res.status, String(c.raw)).toBe(c.status);
        expect(res.headers.get('content-type')).toContain('application/problem+json');
        if (c.pointer !== undefined) expect(res.body.errors?.[0]?.pointer, String(c.raw)).toBe(c.pointer);
      }
      expect(await buffered(id)).toEqual([]);
      // Nesting just inside the limit is fine.
      expect((await receive(id, `{"a":${'['.repeat(98)}${']'.repeat(98)}}`)).status).toBe(202);
    });

    it('unknown, malformed and non-webhook ids are the same 404', async () => {
      const other = await api.post('/raw-data-sources', {
        name: `not-a-webhook-${process.pid}-${++seq}`,
        source_type: 'database',
        connection_string: 'postgres://u:p@127.0.0.1:5432/db',
      });
      expect(other.status).toBe(201);
      const ids = ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', other.body.id];
      const answers = [];
      for (const id of ids) {
        const res = await send(id, { n: 1 });
        expect(res.status, id).toBe(404);
        answers.push(res.body);
      }
      expect(answers[1]).toEqual(answers[0]);
      expect(answers[2]).toEqual(answers[0]);
      expect(await api.knex('webhook_buffer').where({ source_id: other.body.id }).first()).toBeUndefined();
      // Only POST is served there.
      const get = await fetch(`${hookBase}/webhooks/${other.body.id}`);
      expect(get.status).toBe(405);
    });

    it('an inactive source is 409 to a signed request, 401 to an unsigned one; no secret means 401', async () => {
      const inactive = await createSource({ is_active: false });
      expect((await send(inactive, { n: 1 })).status).toBe(409);
      expect((await receive(inactive, '{"n":1}', { secret: OTHER_SECRET })).status).toBe(401);
      const noSecret = await createSource({ connection_string: null });
      expect((await receive(noSecret, '{"n":1}', { signature: null })).status).toBe(401);
      expect((await receive(noSecret, '{"n":1}', { signature: signWebhookBody('', '{"n":1}') })).status).toBe(
        401,
      );
      expect(await buffered(inactive)).toEqual([]);
      expect(await buffered(noSecret)).toEqual([]);
    });

    it('rejects a short shared secret at create (400)', async () => {
      const res = await api.post('/raw-data-sources', {
        name: `short-secret-${process.pid}`,
        source_type: 'webhook',
        connection_string: 'tooshort',
      });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).not.toContain('tooshort');
    });

    it('deleting the source deletes its buffer', async () => {
      const id = await createSource();
      await send(id, { n: 1 });
      expect((await api.del(`/raw-data-sources/${id}`)).status).toBe(204);
      expect(await buffered(id)).toEqual([]);
    });
  });

  describe('syncing', () => {
    it('a sync lands the buffered payloads; a second lands only the new ones', async () => {
      const id = await createSource();
      const first = Array.from({ length: 7 }, (_, i) => ({ n: i, note: `first-${i}` }));
      expect((await send(id, first.slice(0, 4))).status).toBe(202);
      for (const r of first.slice(4)) expect((await send(id, r)).status).toBe(202);

      const receipts = await buffered(id);
      const run1 = await syncNow(id);
      expect(run1).toMatchObject({ status: 'success', records: 7 });
      expect(await landed(id)).toEqual(first);
      // Each landed row names its receipt: the buffer id and when it was received.
      const provenance = await api
        .knex('raw_records')
        .where({ run_id: run1.id })
        .orderBy('id')
        .pluck('provenance');
      expect(provenance).toEqual(
        receipts.map((r) => ({ receipt_id: String(r.id), received_at: expect.any(String) })),
      );
      const state1 = (await api.knex('source_sync_state').where({ source_id: id }).first()).state;
      const ids1 = (await buffered(id)).map((r) => r.id);
      expect(state1).toEqual({ last_id: ids1[ids1.length - 1] });

      const second = [{ n: 7 }, { n: 8 }];
      for (const r of second) await send(id, r);
      const run2 = await syncNow(id);
      expect(run2).toMatchObject({ status: 'success', records: 2 });
      expect(await landed(id)).toEqual([...first, ...second]);
      // The second sync removed what the first had landed, and nothing else.
      expect((await buffered(id)).map((r) => r.payload)).toEqual(second);

      const run3 = await syncNow(id);
      expect(run3).toMatchObject({ status: 'success', records: 0 });
      expect(await buffered(id)).toEqual([]);
      expect(await landed(id)).toHaveLength(9);
    });

    it('landing fails over schema_definition like any source: invalid records are quarantined', async () => {
      const id = await createSource({
        schema_definition: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } },
      });
      await send(id, [{ n: 1 }, { n: 'two' }, { n: 3 }]);
      const run = await syncNow(id);
      expect(run).toMatchObject({ status: 'success', records: 2, invalid: 1 });
      expect(await landed(id)).toEqual([{ n: 1 }, { n: 3 }]);
    });

    it('a drain stopped between batches resumes from the committed state: no loss, no duplicate', async () => {
      const id = await createSource();
      const sent = Array.from({ length: 8 }, (_, i) => ({ n: i }));
      await send(id, sent);
      const connector = new WebhookConnector({
        knex: api.container.knex,
        savedSource: savedSourceOf(api),
        batchSize: 3,
      });
      const source = {
        id,
        name: 'x',
        source_type: 'webhook',
        connection_string: SECRET,
        metadata: null,
        schema_definition: null,
      };

      // The first batch lands (its state is committed), then the worker dies.
      const it1 = connector.sync(source, undefined, ctx())[Symbol.asyncIterator]();
      const batch1 = (await it1.next()).value as SyncBatch;
      await it1.return?.();
      expect(batch1.records).toEqual(sent.slice(0, 3));

      // A retry before the commit (state still undefined) deletes nothing and starts over.
      const before = await buffered(id);
      const again = connector.sync(source, undefined, ctx())[Symbol.asyncIterator]();
      expect(((await again.next()).value as SyncBatch).records).toEqual(sent.slice(0, 3));
      await again.return?.();
      expect(await buffered(id)).toEqual(before);

      // The retry after the commit resumes past it, and only then drops what had landed.
      const rest: unknown[] = [];
      let state = batch1.state;
      for await (const batch of connector.sync(source, state, ctx())) {
        rest.push(...batch.records);
        state = batch.state;
      }
      expect([...batch1.records, ...rest]).toEqual(sent);
      expect((await buffered(id)).map((r) => r.payload)).toEqual(sent.slice(3));
      expect(state).toEqual({ last_id: before[before.length - 1]!.id });
    });

    it('batches are bounded by bytes as well as by count', async () => {
      const id = await createSource();
      const pad = 'p'.repeat(100_000);
      for (let i = 0; i < 5; i++) await send(id, { i, pad });
      const connector = new WebhookConnector({
        knex: api.container.knex,
        savedSource: savedSourceOf(api),
        batchSize: 1000,
        batchBytes: 250_000,
      });
      const sizes: number[] = [];
      const source = {
        id,
        name: 'x',
        source_type: 'webhook',
        connection_string: SECRET,
        metadata: null,
        schema_definition: null,
      };
      const seen: number[] = [];
      for await (const batch of connector.sync(source, undefined, ctx())) {
        sizes.push(batch.records.length);
        seen.push(...batch.records.map((r) => (r as { i: number }).i));
      }
      expect(sizes).toEqual([2, 2, 1]);
      expect(seen).toEqual([0, 1, 2, 3, 4]);
    });

    it('a receipt still committing when a drain starts is not skipped (the drain waits for it)', async () => {
      const id = await createSource();
      const buffer = new WebhookBuffer(api.container.knex);
      const connector = new WebhookConnector({ knex: api.container.knex, savedSource: savedSourceOf(api) });
      const source = {
        id,
        name: 'x',
        source_type: 'webhook',
        connection_string: SECRET,
        metadata: null,
        schema_definition: null,
      };

      // A receipt takes its id, then stalls before commit; a later receipt commits meanwhile.
      const trx = await api.container.knex.transaction();
      await buffer.append(id, [{ order: 'first, slow' }], trx);
      expect((await send(id, { order: 'second, fast' })).status).toBe(202);

      const drained: unknown[] = [];
      let finished = false;
      const drain = (async () => {
        for await (const batch of connector.sync(source, undefined, ctx())) drained.push(...batch.records);
        finished = true;
      })();
      try {
        // Either the drain waits for the slow receipt's lock (right), or it has already run past it.
        const waiting = () =>
          api.knex
            .raw(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)
            .then((r: { rows: { n: number }[] }) => r.rows[0]!.n > 0);
        await until(async () => finished || (await waiting()), Boolean);
        expect(drained).toEqual([]);
      } finally {
        await trx.commit();
      }
      await drain;
      expect(drained).toEqual([{ order: 'first, slow' }, { order: 'second, fast' }]);
    });

    it('receipts arriving while syncs drain are all landed exactly once', async () => {
      const id = await createSource();
      const total = 120;
      const sends: Promise<Receipt>[] = [];
      const syncs: Promise<unknown>[] = [];
      for (let i = 0; i < total; i++) {
        sends.push(send(id, { i }));
        if (i % 40 === 20) syncs.push(api.post(`/raw-data-sources/${id}/sync`));
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      expect((await Promise.all(sends)).every((r) => r.status === 202)).toBe(true);
      await Promise.all(syncs);
      await until(
        async () => (await api.get(`/raw-data-sources/${id}`)).body.sync_status,
        (s) => s !== 'syncing' && s !== 'pending',
      );
      await until(
        async () => (await api.get(`/raw-data-sources/${id}/runs`)).body.data,
        (runs: { status: string }[]) => runs.every((r) => r.status !== 'queued' && r.status !== 'running'),
      );
      const last = await syncNow(id);
      expect(last.status).toBe('success');
      const values = (await landed(id)).map((p) => (p as { i: number }).i).sort((a, b) => a - b);
      expect(values).toEqual(Array.from({ length: total }, (_, i) => i));
    });
  });

  describe('test connection', () => {
    const testSource = async (id: string) => {
      const res = await api.post(`/raw-data-sources/${id}/test`);
      expect(res.status, res.text).toBe(200);
      return res.body as {
        ok: boolean;
        steps: { name: string; status: string; code?: string; message: string }[];
      };
    };

    it('passes for an active source with a secret, counting what waits', async () => {
      const id = await createSource();
      await send(id, [{ n: 1 }, { n: 2 }]);
      const result = await testSource(id);
      expect(result.ok).toBe(true);
      expect(result.steps.map((s) => [s.name, s.status])).toEqual([
        ['configuration', 'passed'],
        ['buffer', 'passed'],
        ['endpoint', 'passed'],
      ]);
      expect(result.steps[1]!.message).toContain('2 payload(s) waiting');
      expect(result.steps[2]!.message).toContain(`/webhooks/${id}`);
      expect(JSON.stringify(result)).not.toContain(SECRET);
      await syncNow(id);
      expect((await testSource(id)).steps[1]!.message).toBe('no payloads waiting to be synced');
    });

    it('warns when payloads have waited through two schedule ticks: intervals, and cron fires in the zone', async () => {
      const backdate = (id: string, seconds: number) =>
        api.container
          .knex('webhook_buffer')
          .where({ source_id: id })
          .update({ received_at: api.container.knex.raw(`now() - interval '${seconds} seconds'`) });
      const buffer = async (id: string) => (await testSource(id)).steps[1]!;

      // Every hour: 90 minutes is one missed tick, three hours is two.
      const hourly = await createSource({ refresh_interval: 3600 });
      await send(hourly, { n: 1 });
      await backdate(hourly, 90 * 60);
      expect(await buffer(hourly)).toMatchObject({ status: 'passed' });
      await backdate(hourly, 3 * 3600);
      expect(await buffer(hourly)).toMatchObject({ status: 'warning', code: 'stale_buffer' });

      // Nightly by cron (refresh_interval keeps its hourly default): three hours is not stale,
      // three days is; an every-5-minutes cron is stale after 11 minutes.
      const nightly = await createSource({ schedule_cron: '0 2 * * *', schedule_timezone: 'Europe/Berlin' });
      await send(nightly, { n: 1 });
      await backdate(nightly, 3 * 3600);
      expect(await buffer(nightly)).toMatchObject({ status: 'passed' });
      await backdate(nightly, 3 * 86_400);
      expect(await buffer(nightly)).toMatchObject({ status: 'warning', code: 'stale_buffer' });
      const often = await createSource({ schedule_cron: '*/5 * * * *' });
      await send(often, { n: 1 });
      await backdate(often, 11 * 60);
      expect(await buffer(often)).toMatchObject({ status: 'warning', code: 'stale_buffer' });
    });

    it('warns for an inactive source and fails without a secret', async () => {
      const inactive = await testSource(await createSource({ is_active: false }));
      expect(inactive.ok).toBe(true);
      expect(inactive.steps[0]).toMatchObject({ name: 'configuration', status: 'warning', code: 'inactive' });
      const noSecret = await testSource(await createSource({ connection_string: null }));
      expect(noSecret.ok).toBe(false);
      expect(noSecret.steps.map((s) => [s.name, s.status, s.code])).toEqual([
        ['configuration', 'failed', 'invalid_config'],
        ['buffer', 'skipped', undefined],
        ['endpoint', 'skipped', undefined],
      ]);
    });
  });
});
