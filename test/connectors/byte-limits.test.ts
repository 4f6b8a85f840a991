import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { createGzip, gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PermanentSyncError, type SyncBatch } from '../../src/connectors/connector';
import { ApiConnector } from '../../src/connectors/api/api.connector';
import { FileConnector } from '../../src/connectors/file/file.connector';
import {
  approxJsonBytes,
  ByteBatcher,
  DEFAULT_BYTE_LIMITS,
  MIB,
  splitByBytes,
  TooLargeError,
  type ByteLimits,
} from '../../src/connectors/kit/byte-limits';
import { classifyError, PERMANENT_CODES } from '../../src/connectors/kit/classify-error';
import { loadConfig } from '../../src/config';
import {
  connectorContext,
  drain,
  recordsOf,
  sendJson,
  source,
  startHttpServer,
  type Handler,
  type TestServer,
} from './support/http-source';

/**
 * Memory bounded by bytes: batches cut by bytes in every connector, one record
 * bounded in every file format (JSON streamed token by token), and decompression bounded in total
 * and by ratio. Peers are loopback HTTP servers and files this test writes.
 */
let dir: string;
let servers: TestServer[] = [];
async function serve(handler: Handler): Promise<TestServer> {
  const server = await startHttpServer(handler);
  servers.push(server);
  return server;
}
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-bytes-'));
});
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fileUrl = (path: string) => pathToFileURL(path).href;
const limits = (over: Partial<ByteLimits>): ByteLimits => ({ ...DEFAULT_BYTE_LIMITS, ...over });
const jsonBytes = (batch: SyncBatch) => Buffer.byteLength(JSON.stringify(batch.records));

async function failure(work: Promise<unknown>): Promise<Error & { code?: string }> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the sync should have failed').toBeInstanceOf(Error);
  return err as Error & { code?: string };
}

/** Every batch fits the cap, unless it is one record on its own; returns the batch sizes. */
function expectBounded(batches: SyncBatch[], cap: number): number[] {
  // approxJsonBytes counts characters and 8 per number: allow it a little slack over exact JSON.
  for (const b of batches)
    if (b.records.length > 1)
      expect(jsonBytes(b), `a batch of ${b.records.length}`).toBeLessThanOrEqual(cap * 1.1);
  return batches.map((b) => b.records.length);
}

describe('byte limits: kit', () => {
  it('too_large is a stable, permanent code', () => {
    const err = new TooLargeError('x');
    expect(err).toBeInstanceOf(PermanentSyncError);
    expect(classifyError(err)).toBe('too_large');
    expect(PERMANENT_CODES.has('too_large')).toBe(true);
  });

  it('config defaults equal the kit defaults, and each limit is configurable', () => {
    const base = {
      DATABASE_URL: 'postgres://x@127.0.0.1/x',
      REDIS_URL: 'redis://127.0.0.1',
      ENCRYPTION_KEYS: '',
    };
    const env = { ...base, ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}` };
    expect(loadConfig(env).byteLimits).toEqual(DEFAULT_BYTE_LIMITS);
    expect(loadConfig(env).workerMaxStalled).toBe(1);
    const set = loadConfig({
      ...env,
      RECORD_MAX_BYTES: '2048',
      BATCH_MAX_BYTES: '4096',
      DECOMPRESSED_MAX_BYTES: '8192',
      MAX_COMPRESSION_RATIO: '10',
      WORKER_MAX_STALLED: '3',
    });
    expect(set.byteLimits).toEqual({
      recordMaxBytes: 2048,
      batchMaxBytes: 4096,
      decompressedMaxBytes: 8192,
      maxCompressionRatio: 10,
    });
    expect(set.workerMaxStalled).toBe(3);
    expect(() => loadConfig({ ...env, BATCH_MAX_BYTES: '10' })).toThrow(/BATCH_MAX_BYTES/);
  });

  it('splitByBytes and ByteBatcher cut by count and by bytes; one oversized item is a piece of its own', () => {
    const items = [10, 10, 10, 100, 10, 10];
    expect(splitByBytes(items, 1000, 25, (n) => n)).toEqual([[10, 10], [10], [100], [10, 10]]);
    expect(splitByBytes(items, 2, 1000, (n) => n)).toEqual([
      [10, 10],
      [10, 100],
      [10, 10],
    ]);
    const batcher = new ByteBatcher<number>(1000, 25);
    const out = items.map((n) => batcher.add(n, n)).filter(Boolean);
    expect([...out, batcher.flush()]).toEqual([[10, 10], [10], [100], [10, 10]]);
    expect(approxJsonBytes({ a: 'xyz', b: [1, null, true] })).toBeGreaterThanOrEqual(
      JSON.stringify({ a: 'xyz', b: [1, null, true] }).length,
    );
  });
});

describe('byte limits: file batches and records', () => {
  const connectorWith = (over: Partial<ByteLimits>) => new FileConnector([dir], { limits: limits(over) });

  it('NDJSON, CSV and JSON batches stay under BATCH_MAX_BYTES (a single larger record lands alone)', async () => {
    const cap = 32 * 1024;
    const connector = connectorWith({ batchMaxBytes: cap });
    const rows = Array.from({ length: 3000 }, (_, i) => ({ id: i, pad: 'x'.repeat(i % 7 === 0 ? 500 : 20) }));
    rows[1500] = { id: 1500, pad: 'y'.repeat(100 * 1024) }; // larger than a batch on its own
    writeFileSync(join(dir, 'rows.ndjson'), rows.map((r) => JSON.stringify(r)).join('\n'));
    writeFileSync(join(dir, 'rows.json'), JSON.stringify(rows));
    writeFileSync(join(dir, 'rows.csv'), `id,pad\n${rows.map((r) => `${r.id},${r.pad}`).join('\n')}\n`);
    for (const name of ['rows.ndjson', 'rows.json', 'rows.csv']) {
      const batches = await drain(
        connector,
        source('file', fileUrl(join(dir, name))),
        undefined,
        connectorContext(),
      );
      const sizes = expectBounded(batches, cap);
      expect(recordsOf(batches), name).toHaveLength(rows.length);
      expect(sizes.length, `${name}: cut by bytes, not by the 1000-record count`).toBeGreaterThan(8);
      expect(
        batches.some((b) => b.records.length === 1 && jsonBytes(b) > cap),
        name,
      ).toBe(true);
    }
  });

  it('a JSON element with millions of keys fails too_large after RECORD_MAX_BYTES, before it is built', async () => {
    const connector = connectorWith({ recordMaxBytes: 1 * MIB });
    // Streamed by the server as it is read: [{"k0":0,"k1":1,... 3 million keys (≈ 40 MB)}].
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      Readable.from(
        (function* () {
          yield '[{"k":0';
          for (let chunk = 0; chunk < 300; chunk += 1) {
            let text = '';
            for (let i = 0; i < 10_000; i += 1) text += `,"k${chunk}_${i}":${i}`;
            yield text;
          }
          yield '}]';
        })(),
      )
        .on('error', () => undefined)
        .pipe(res)
        .on('error', () => undefined);
    });
    const heapBefore = process.memoryUsage().heapUsed;
    const err = await failure(
      drain(connector, source('file', `${server.url}/big.json`), undefined, connectorContext()),
    );
    expect(err).toBeInstanceOf(TooLargeError);
    expect(err.code).toBe('too_large');
    expect(err.message).toContain(
      'JSON array element 1 is larger than the per-record limit of 1 MiB (RECORD_MAX_BYTES)',
    );
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(200 * MIB);
  });

  it('one giant JSON string (no tokens until it ends) fails too_large too', async () => {
    const connector = connectorWith({ recordMaxBytes: 256 * 1024 });
    const path = join(dir, 'string.json');
    writeFileSync(path, `[{"ok":1},"${'z'.repeat(4 * MIB)}"]`);
    const err = await failure(drain(connector, source('file', fileUrl(path)), undefined, connectorContext()));
    expect(err).toMatchObject({ code: 'too_large' });
    expect(err.message).toContain('JSON array element 2 is larger than the per-record limit');
  });

  it('an NDJSON line or CSV row over RECORD_MAX_BYTES fails too_large, naming the line', async () => {
    const connector = connectorWith({ recordMaxBytes: 64 * 1024 });
    const nd = join(dir, 'long.ndjson');
    writeFileSync(nd, `{"a":1}\n{"pad":"${'p'.repeat(100 * 1024)}"}\n`);
    const err = await failure(drain(connector, source('file', fileUrl(nd)), undefined, connectorContext()));
    expect(err).toMatchObject({ code: 'too_large' });
    expect(err.message).toContain('line 2 is larger than the per-record limit of 64 KiB');
    const csv = join(dir, 'long.csv');
    writeFileSync(csv, `a,b\n1,2\n3,${'q'.repeat(100 * 1024)}\n`);
    const csvErr = await failure(
      drain(connector, source('file', fileUrl(csv)), undefined, connectorContext()),
    );
    expect(csvErr).toMatchObject({ code: 'too_large' });
    expect(csvErr.message).toMatch(/CSV row at line 3 is larger than the per-record limit/);
  });
});

describe('byte limits: decompression', () => {
  /** One gzip member holding one NDJSON line of about `lineBytes`, compressed 1 MiB at a time. */
  async function bombMember(lineBytes: number): Promise<Buffer> {
    const gzip = createGzip();
    const out: Buffer[] = [];
    gzip.on('data', (c: Buffer) => out.push(c));
    const done = new Promise((resolve) => gzip.on('end', resolve));
    const piece = Buffer.alloc(MIB, 'a');
    gzip.write('{"pad":"');
    for (let left = lineBytes; left > 0; left -= MIB)
      gzip.write(left >= MIB ? piece : piece.subarray(0, left));
    gzip.end('"}\n');
    await done;
    return Buffer.concat(out);
  }

  const serveBomb = (member: Buffer, members: number, headers: Record<string, string>) =>
    serve((_req, res) => {
      res.writeHead(200, headers);
      Readable.from(
        (function* () {
          for (let i = 0; i < members; i += 1) yield member;
        })(),
      )
        .on('error', () => undefined)
        .pipe(res)
        .on('error', () => undefined);
    });

  it('a gzip file over MAX_COMPRESSION_RATIO fails too_large after a few MiB', async () => {
    const member = await bombMember(MIB);
    const server = await serveBomb(member, 400, { 'content-type': 'application/x-ndjson' });
    const connector = new FileConnector([dir], { limits: limits({ recordMaxBytes: 2 * MIB }) });
    const err = await failure(
      drain(connector, source('file', `${server.url}/bomb.ndjson`), undefined, connectorContext()),
    );
    expect(err).toMatchObject({ code: 'too_large' });
    expect(err.message).toMatch(/the gzipped file decompresses more than 100:1 .*MAX_COMPRESSION_RATIO/);
  });

  it('a body over DECOMPRESSED_MAX_BYTES fails too_large (Content-Encoding of an API page and a file)', async () => {
    const page = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(
        gzipSync(
          Buffer.from(
            JSON.stringify({ rows: Array.from({ length: 2000 }, (_, i) => ({ i, pad: 'c'.repeat(100) })) }),
          ),
        ),
      );
    });
    const api = new ApiConnector({ limits: limits({ decompressedMaxBytes: 64 * 1024 }) });
    const apiErr = await failure(
      drain(api, source('api', `${page.url}/x`, { records_path: 'rows' }), undefined, connectorContext()),
    );
    expect(apiErr).toMatchObject({ code: 'too_large' });
    expect(apiErr.message).toContain('decompresses to more than 64 KiB (DECOMPRESSED_MAX_BYTES)');

    const file = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' });
      res.end(
        gzipSync(Buffer.from(Array.from({ length: 2000 }, (_, i) => JSON.stringify({ i })).join('\n'))),
      );
    });
    const connector = new FileConnector([dir], { limits: limits({ decompressedMaxBytes: 8 * 1024 }) });
    const fileErr = await failure(
      drain(connector, source('file', `${file.url}/f.ndjson`), undefined, connectorContext()),
    );
    expect(fileErr).toMatchObject({ code: 'too_large' });
  });

  it('an ordinary compressed body still reads whole, and an API page is split by bytes', async () => {
    const rows = Array.from({ length: 3000 }, (_, i) => ({ i, pad: 'd'.repeat(50) }));
    const server = await serve((_req, res) => sendJson(res, { rows }, 200, {}));
    const api = new ApiConnector({ limits: limits({ batchMaxBytes: 16 * 1024 }) });
    const batches = await drain(
      api,
      source('api', `${server.url}/x`, { records_path: 'rows' }),
      undefined,
      connectorContext(),
    );
    expect(recordsOf(batches)).toEqual(rows);
    expectBounded(batches, 16 * 1024);
    expect(batches.length).toBeGreaterThan(10);

    writeFileSync(
      join(dir, 'ok.ndjson.gz'),
      gzipSync(Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n'))),
    );
    const file = await drain(
      new FileConnector([dir]),
      source('file', fileUrl(join(dir, 'ok.ndjson.gz'))),
      undefined,
      connectorContext(),
    );
    expect(recordsOf(file)).toEqual(rows);
  });
});
