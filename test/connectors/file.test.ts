import { execFileSync } from 'node:child_process';
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PermanentSyncError } from '../../src/connectors/connector';
import { ConnectorError } from '../../src/connectors/kit/classify-error';
import { FileConnector } from '../../src/connectors/file/file.connector';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import {
  connectorContext,
  drain,
  provenanceOf,
  recordsOf,
  sendJson,
  source,
  startBlackHole,
  startHttpServer,
  type Handler,
  type TestServer,
} from './support/http-source';

const PASSWORD = 'F1le-Secret-Pw';
let base: string; // temp dir: base/root is FILE_ROOTS, base/outside is not
let root: string;
let outside: string;
let connector: FileConnector;
const fileUrl = (path: string) => pathToFileURL(path).href;
const write = (name: string, content: string | Buffer) => {
  const path = join(root, name);
  writeFileSync(path, content);
  return path;
};

const CSV = 'id,name,note\n1,Ada,"likes, commas"\n2,Linus,"says ""hi"""\n\n3,Grace,\n';
const ROWS = [
  { id: '1', name: 'Ada', note: 'likes, commas' },
  { id: '2', name: 'Linus', note: 'says "hi"' },
  { id: '3', name: 'Grace', note: '' },
];
const OBJECTS = [{ id: 1, tags: ['a'] }, { id: 2, nested: { x: null } }, { id: 3 }];

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'sluice-file-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  connector = new FileConnector([root]);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

let servers: TestServer[] = [];
async function serve(handler: Handler): Promise<TestServer> {
  const server = await startHttpServer(handler);
  servers.push(server);
  return server;
}
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function syncError(promise: Promise<unknown>): Promise<PermanentSyncError | ConnectorError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the sync should have failed').toBeInstanceOf(Error);
  return err as PermanentSyncError | ConnectorError;
}

const read = async (path: string, metadata: Record<string, unknown> = {}, c = connector) =>
  recordsOf(await drain(c, source('file', fileUrl(path), metadata), undefined, connectorContext()));

describe('file connector: formats', () => {
  it('reads CSV keyed by header (quotes, escaped quotes, blank lines), TSV and custom delimiters', async () => {
    expect(await read(write('people.csv', CSV))).toEqual(ROWS);
    expect(await read(write('people.tsv', 'id\tname\n1\tAda\n'))).toEqual([{ id: '1', name: 'Ada' }]);
    expect(await read(write('semi.csv', "id;name\n1;'A;da'\n"), { delimiter: ';', quote: "'" })).toEqual([
      { id: '1', name: 'A;da' },
    ]);
  });

  it('reads CSV without a header by the configured columns (or column_N), and renames a header', async () => {
    const path = write('raw.csv', '1,Ada\n2,Linus\n');
    expect(await read(path, { header: false, columns: ['id', 'name'] })).toEqual([
      { id: '1', name: 'Ada' },
      { id: '2', name: 'Linus' },
    ]);
    expect(await read(path, { header: false })).toEqual([
      { column_1: '1', column_2: 'Ada' },
      { column_1: '2', column_2: 'Linus' },
    ]);
    expect(await read(write('renamed.csv', 'a,b\n1,2\n'), { columns: ['x', 'y'] })).toEqual([
      { x: '1', y: '2' },
    ]);
  });

  it('reads a JSON array (at records_path too) and NDJSON (blank lines skipped)', async () => {
    expect(await read(write('list.json', JSON.stringify(OBJECTS)))).toEqual(OBJECTS);
    const wrapped = write('wrapped.json', JSON.stringify({ meta: { n: 3, data: [0] }, data: OBJECTS }));
    expect(await read(wrapped, { records_path: 'data' })).toEqual(OBJECTS);
    const nd = OBJECTS.map((o) => JSON.stringify(o)).join('\n');
    expect(await read(write('events.ndjson', `${nd}\n\n`))).toEqual(OBJECTS);
    expect(await read(write('events.jsonl', `\uFEFF${nd}`))).toEqual(OBJECTS);
    expect(await read(write('events.data', nd), { format: 'ndjson' })).toEqual(OBJECTS);
  });

  it('reads gzip by extension and by magic bytes, taking the format from the name without .gz', async () => {
    expect(await read(write('people.csv.gz', gzipSync(CSV)))).toEqual(ROWS);
    expect(await read(write('disguised.csv', gzipSync(CSV)))).toEqual(ROWS);
    const nd = OBJECTS.map((o) => JSON.stringify(o)).join('\n');
    expect(await read(write('events.ndjson.gz', gzipSync(nd)))).toEqual(OBJECTS);
    expect(await read(write('tiny.ndjson', '1'))).toEqual([1]);
    expect(await read(write('empty.csv', ''))).toEqual([]);
  });

  it('fails clearly on content that does not parse', async () => {
    const badLine = await syncError(read(write('bad.ndjson', '{"a":1}\n{"a":\n')));
    expect(badLine).toMatchObject({ code: 'protocol' });
    expect(badLine.message).toContain('line 2 is not valid JSON');
    const notArray = await syncError(read(write('obj.json', '{"a":1}')));
    expect(notArray).toMatchObject({ code: 'protocol' });
    const ragged = await syncError(read(write('ragged.csv', 'a,b\n1,2,3\n')));
    expect(ragged.message).toContain('CSV');
    const unknown = await syncError(read(write('data.bin', 'x')));
    expect(unknown).toBeInstanceOf(PermanentSyncError);
    expect(unknown).toMatchObject({ code: 'invalid_config' });
    const steps = await connector.test(source('file', fileUrl(join(root, 'data.bin'))), connectorContext());
    expect(steps.find((s) => s.status === 'failed')).toMatchObject({
      name: 'format',
      code: 'invalid_config',
    });
  });

  it('lands bounded batches with no state (a file is a full refresh)', async () => {
    const path = write(
      'many.ndjson',
      Array.from({ length: 2500 }, (_, i) => JSON.stringify({ i })).join('\n'),
    );
    const batches = await drain(connector, source('file', fileUrl(path)), undefined, connectorContext());
    expect(batches.map((b) => b.records.length)).toEqual([1000, 1000, 500]);
    expect(batches.every((b) => b.state === undefined)).toBe(true);
  });
});

describe('file connector: provenance', () => {
  const places = provenanceOf;

  it('each record carries its file and line (CSV: the line it ends on; NDJSON) or array index (JSON)', async () => {
    const csv = write('prov.csv', 'id,note\n1,a\n\n2,"two\nlines"\n3,c\n');
    expect(
      places(await drain(connector, source('file', fileUrl(csv)), undefined, connectorContext())),
    ).toEqual([
      { file: csv, line: 2 },
      { file: csv, line: 5 },
      { file: csv, line: 6 },
    ]);
    const nd = write('prov.ndjson', '{"a":1}\n\n{"a":2}\n');
    expect(
      places(await drain(connector, source('file', fileUrl(nd)), undefined, connectorContext())),
    ).toEqual([
      { file: nd, line: 1 },
      { file: nd, line: 3 },
    ]);
    const json = write('prov.json', JSON.stringify(OBJECTS));
    expect(
      places(await drain(connector, source('file', fileUrl(json)), undefined, connectorContext())),
    ).toEqual(OBJECTS.map((_, index) => ({ file: json, index })));
  });

  it('a downloaded file is named by its URL without credentials or query', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end('{"a":1}\n');
    });
    const url = server.url.replace('http://', `http://u:${PASSWORD}@`);
    const batches = await drain(
      connector,
      source('file', `${url}/feed.ndjson?token=${PASSWORD}`),
      undefined,
      connectorContext(),
    );
    expect(places(batches)).toEqual([{ url: `${server.url}/feed.ndjson`, line: 1 }]);
    expect(JSON.stringify(batches.map((b) => b.provenance))).not.toContain(PASSWORD);
  });
});

describe('file connector: FILE_ROOTS', () => {
  it('test passes every step for a readable file below the root', async () => {
    const steps = await connector.test(source('file', fileUrl(write('ok.csv', CSV))), connectorContext());
    expect(steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      'configuration:passed',
      'locate:passed',
      'open:passed',
      'format:passed',
      'read_sample:passed',
    ]);
    expect(steps[4]?.message).toContain('read 3 records');
  });

  it('a missing file is not_found (locate step and a permanent sync error)', async () => {
    const missing = source('file', fileUrl(join(root, 'nope.csv')));
    const steps = await connector.test(missing, connectorContext());
    expect(steps.map((s) => s.status)).toEqual(['passed', 'failed', 'skipped', 'skipped', 'skipped']);
    expect(steps[1]).toMatchObject({ name: 'locate', code: 'not_found' });
    const err = await syncError(drain(connector, missing, undefined, connectorContext()));
    expect(err).toBeInstanceOf(PermanentSyncError);
    expect(err).toMatchObject({ code: 'not_found' });
  });

  it('refuses paths outside the roots, /etc/shadow included, whether or not they exist', async () => {
    for (const path of [
      '/etc/shadow',
      '/etc/passwd',
      join(outside, 'x.csv'),
      `${root}/../outside/x.csv`,
      `${root}-other/x.csv`,
    ]) {
      const err = await syncError(
        drain(connector, source('file', `file://${path}`), undefined, connectorContext()),
      );
      expect(err, path).toMatchObject({ code: 'permission' });
      const steps = await connector.test(source('file', `file://${path}`), connectorContext());
      expect(
        steps.find((s) => s.status === 'failed'),
        path,
      ).toMatchObject({ name: 'locate', code: 'permission' });
    }
  });

  it('refuses a symlink (to a file or through a directory) that escapes the root, and allows one inside', async () => {
    writeFileSync(join(outside, 'secret.csv'), 'k\nv\n');
    symlinkSync(join(outside, 'secret.csv'), join(root, 'escape.csv'));
    symlinkSync(outside, join(root, 'outdir'));
    symlinkSync('/etc/shadow', join(root, 'shadow.csv'));
    symlinkSync(write('target.csv', CSV), join(root, 'alias.csv'));
    for (const name of ['escape.csv', 'outdir/secret.csv', 'shadow.csv']) {
      const err = await syncError(read(join(root, name)));
      expect(err, name).toMatchObject({ code: 'permission' });
      expect(err.message).not.toContain('secret.csv');
    }
    expect(await read(join(root, 'alias.csv'))).toEqual(ROWS);
  });

  it('with no FILE_ROOTS no local file is readable; directories and FIFOs are refused without blocking', async () => {
    const none = new FileConnector([]);
    const err = await syncError(read(join(root, 'people.csv'), {}, none));
    expect(err).toMatchObject({ code: 'permission' });
    const dir = await syncError(read(root));
    expect(dir).toMatchObject({ code: 'invalid_config' });
    execFileSync('mkfifo', [join(root, 'pipe.csv')]);
    const fifo = await syncError(read(join(root, 'pipe.csv')));
    expect(fifo).toMatchObject({ code: 'invalid_config' });
  });

  it('rejects connection strings that are not file:/// or http(s) URLs, or local paths outside the roots', () => {
    expect(connector.checkConnectionString(fileUrl(join(root, 'not-there-yet.csv')))).toBeUndefined();
    expect(connector.checkConnectionString('https://files.example/x.csv')).toBeUndefined();
    // Outside the roots as written, whether or not the file exists; links are followed only when read.
    for (const path of [
      '/etc/passwd',
      '/etc/no-such-file',
      join(outside, 'x.csv'),
      `${root}/../outside/x.csv`,
    ])
      expect(connector.checkConnectionString(`file://${path}`), path).toBe(
        `a local file must be below FILE_ROOTS (${root})`,
      );
    expect(new FileConnector([]).checkConnectionString(fileUrl(join(root, 'x.csv')))).toContain(
      'FILE_ROOTS is not set',
    );
    expect(new FileConnector([]).checkConnectionString('https://files.example/x.csv')).toBeUndefined();
    expect(connector.checkConnectionString('/data/x.csv')).toContain('file:///');
    expect(connector.checkConnectionString('file://server/share/x.csv')).toContain('local path');
    expect(connector.checkConnectionString('ftp://host/x.csv')).toBeDefined();
  });
});

describe('file connector: URLs', () => {
  it('downloads CSV (Content-Encoding gzip) and NDJSON named only by Content-Type, with credentials', async () => {
    const server = await serve((req, res, url) => {
      if (req.headers.authorization !== `Basic ${Buffer.from(`u:${PASSWORD}`).toString('base64')}`)
        return sendJson(res, {}, 401);
      if (url.pathname === '/export/people.csv') {
        res.writeHead(200, { 'content-type': 'text/csv', 'content-encoding': 'gzip' });
        return res.end(gzipSync(CSV));
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end(OBJECTS.map((o) => JSON.stringify(o)).join('\n'));
    });
    const at = (path: string, pw = PASSWORD) => `http://u:${pw}@127.0.0.1:${server.port}${path}`;
    const csv = await drain(
      connector,
      source('file', at('/export/people.csv')),
      undefined,
      connectorContext(),
    );
    expect(recordsOf(csv)).toEqual(ROWS);
    const nd = await drain(connector, source('file', at('/export/latest')), undefined, connectorContext());
    expect(recordsOf(nd)).toEqual(OBJECTS);
    const steps = await connector.test(source('file', at('/export/people.csv')), connectorContext());
    expect(steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      'configuration:passed',
      'resolve:passed',
      'connect:passed',
      'request:passed',
      'format:passed',
      'read_sample:passed',
    ]);
    const denied = await connector.test(
      source('file', at('/export/people.csv', 'wrong')),
      connectorContext(),
    );
    expect(denied.find((s) => s.status === 'failed')).toMatchObject({ name: 'request', code: 'auth' });
    const anonymous = await syncError(
      drain(connector, source('file', `${server.url}/x.csv`), undefined, connectorContext()),
    );
    expect(anonymous).toMatchObject({ code: 'auth' });
    expect(JSON.stringify(steps) + JSON.stringify(denied)).not.toContain(PASSWORD);
  });

  it('a black-holed URL times out within the timeout', async () => {
    const hole = await startBlackHole();
    try {
      const src = source('file', `http://127.0.0.1:${hole.port}/big.csv`);
      const steps = await connector.test(src, connectorContext({ timeoutMs: 500 }));
      expect(steps.find((s) => s.status === 'failed')).toMatchObject({ name: 'request', code: 'timeout' });
      const err = await syncError(drain(connector, src, undefined, connectorContext({ timeoutMs: 500 })));
      expect(err).toBeInstanceOf(ConnectorError);
      expect(err).toMatchObject({ code: 'timeout' });
    } finally {
      await hole.close();
    }
  });

  it('a body that stalls mid-file times out (idle read), and an abort stops the read', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('{"a":1}\n'.repeat(5000)); // then never ends
    });
    const small = new FileConnector([root], { batchSize: 100 });
    const src = source('file', `${server.url}/stall.ndjson`);
    const landed: number[] = [];
    const err = await syncError(
      (async () => {
        for await (const b of small.sync(src, undefined, connectorContext({ timeoutMs: 500 })))
          landed.push(b.records.length);
      })(),
    );
    expect(err).toMatchObject({ code: 'timeout' });
    expect(landed.reduce((a, b) => a + b, 0)).toBe(5000);
    const abort = new AbortController();
    const aborted = syncError(
      (async () => {
        for await (const _ of small.sync(
          src,
          undefined,
          connectorContext({ timeoutMs: 30_000, signal: abort.signal }),
        ))
          abort.abort(new Error('worker shutting down'));
      })(),
    );
    expect((await aborted).message).toContain('worker shutting down');
  });
});

describe('file connector: memory', () => {
  it('streams a 1M-row NDJSON file with a flat heap', async () => {
    const path = join(root, 'million.ndjson');
    const out = createWriteStream(path);
    for (let start = 0; start < 1_000_000; start += 10_000) {
      let chunk = '';
      for (let i = start; i < start + 10_000; i++)
        chunk += `{"id":${i},"name":"row-${i}","amount":${(i % 1000) / 10},"tags":["a","b"],"active":${i % 2 === 0}}\n`;
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    await new Promise<void>((r) => out.end(() => r()));
    const size = statSync(path).size;
    // A forced GC now and then measures what is really held (live heap), not garbage awaiting collection.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage();
    let peakHeap = before.heapUsed;
    let peakRss = before.rss;
    let peakLive = before.heapUsed;
    let count = 0;
    let batches = 0;
    let last: unknown;
    for await (const batch of connector.sync(source('file', fileUrl(path)), undefined, connectorContext())) {
      count += batch.records.length;
      last = batch.records.at(-1);
      const now = process.memoryUsage();
      peakHeap = Math.max(peakHeap, now.heapUsed);
      peakRss = Math.max(peakRss, now.rss);
      if (++batches % 100 === 0) {
        gc();
        peakLive = Math.max(peakLive, process.memoryUsage().heapUsed);
      }
    }
    const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
    console.log(
      `1M-row NDJSON (${mb(size)} MB): live heap delta ${mb(peakLive - before.heapUsed)} MB (after GC, every 100 batches), ` +
        `peak heap delta ${mb(peakHeap - before.heapUsed)} MB, peak RSS delta ${mb(peakRss - before.rss)} MB`,
    );
    expect(count).toBe(1_000_000);
    expect(last).toMatchObject({ id: 999_999 });
    // Held whole, 1M parsed rows would take hundreds of MB; streaming holds about one batch.
    expect(peakLive - before.heapUsed).toBeLessThan(32 * 1024 * 1024);
  }, 60_000);
});

describe('file connector end to end (API + worker)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({
      connectors: [new FileConnector([root], { batchSize: 100 })],
      env: { TEST_WAIT_MS: '10000', SYNC_ATTEMPTS: '2', OUTBOUND_ALLOW: '127.0.0.0/8' },
    });
    await api.startWorker();
  });
  afterAll(() => api?.close());

  const until = async <T>(read: () => Promise<T>, done: (v: T) => boolean, ms = 30000): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await read();
      if (done(value)) return value;
      if (Date.now() > deadline) throw new Error(`not met within ${ms} ms: ${JSON.stringify(value)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const create = async (connection_string: string, metadata: Record<string, unknown> = {}) => {
    const res = await api.post('/raw-data-sources', {
      name: `file-e2e-${process.pid}-${Math.random()}`,
      source_type: 'file',
      connection_string,
      metadata,
    });
    expect(res.status, res.text).toBe(201);
    return res.body.id as string;
  };
  const syncOnce = async (id: string) => {
    const queued = (await api.post(`/raw-data-sources/${id}/sync`)).body;
    return until(
      async () =>
        (await api.get(`/raw-data-sources/${id}/runs`)).body.data.find(
          (r: { id: string }) => r.id === queued.run_id,
        ),
      (r) => r?.status === 'success' || r?.status === 'failed',
    );
  };

  it('tests and syncs a local CSV; the run lands each row once', async () => {
    const id = await create(fileUrl(write('e2e.csv', CSV)));
    const tested = await api.post(`/raw-data-sources/${id}/test`);
    expect(tested.body.ok, tested.text).toBe(true);
    const run = await syncOnce(id);
    expect(run).toMatchObject({ status: 'success', records: 3 });
    const payloads = await api
      .knex('raw_records')
      .where({ source_id: id, run_id: run.id })
      .orderBy('id')
      .pluck('payload');
    expect(payloads).toEqual(ROWS);
    const missing = await create(fileUrl(join(root, 'gone.csv')));
    const failed = await api.post(`/raw-data-sources/${missing}/test`);
    expect(failed.body.steps.find((s: { status: string }) => s.status === 'failed')).toMatchObject({
      name: 'locate',
      code: 'not_found',
    });
    // Outside FILE_ROOTS as written: refused at create. Through a link inside: refused when read.
    const outsideRoots = await api.post('/raw-data-sources', {
      name: `file-e2e-outside-${process.pid}`,
      source_type: 'file',
      connection_string: 'file:///etc/shadow',
    });
    expect(outsideRoots.status, outsideRoots.text).toBe(400);
    expect(outsideRoots.body.errors[0]).toMatchObject({ pointer: '/connection_string' });
    symlinkSync('/etc/shadow', join(root, 'e2e-shadow.csv'));
    const escaped = await create(fileUrl(join(root, 'e2e-shadow.csv')));
    const refused = await api.post(`/raw-data-sources/${escaped}/test`);
    expect(refused.body.steps.find((s: { status: string }) => s.status === 'failed')).toMatchObject({
      name: 'locate',
      code: 'permission',
    });
    expect(await syncOnce(escaped)).toMatchObject({ status: 'failed', attempt: 1 });
  });

  it('snapshot mode: 3 full refreshes of a 1,050-line NDJSON file leave one current snapshot, the latest, with file and line', async () => {
    const path = join(root, 'snapshot.ndjson');
    const version = (v: number) =>
      writeFileSync(
        path,
        Array.from({ length: 1050 }, (_, id) => JSON.stringify({ id, v: id < 3 ? v : 0 })).join('\n'),
      );
    version(1);
    const res = await api.post('/raw-data-sources', {
      name: `file-e2e-snapshot-${process.pid}`,
      source_type: 'file',
      connection_string: fileUrl(path),
      sync_mode: 'snapshot',
    });
    expect(res.status, res.text).toBe(201);
    const id = res.body.id as string;
    let last: { id: string } | undefined;
    for (const v of [1, 2, 3]) {
      version(v);
      last = await syncOnce(id);
      expect(last).toMatchObject({ status: 'success', records: 1050 });
    }
    // Raw history keeps all three (3,150 rows); what is current is the last run alone.
    const all = await api.knex('raw_records').where({ source_id: id }).count({ c: '*' }).first();
    expect(Number(all?.c)).toBe(3150);
    const current = await api
      .knex('raw_records as r')
      .join('source_snapshots as s', 's.run_id', 'r.run_id')
      .where('s.source_id', id)
      .orderBy('r.id')
      .select('r.payload', 'r.provenance', 'r.run_id');
    expect(current).toHaveLength(1050);
    expect(new Set(current.map((r) => r.run_id))).toEqual(new Set([last!.id]));
    expect(current.slice(0, 4).map((r) => r.payload)).toEqual([
      { id: 0, v: 3 },
      { id: 1, v: 3 },
      { id: 2, v: 3 },
      { id: 3, v: 0 },
    ]);
    expect(current[1049].provenance).toEqual({ file: path, line: 1050 });
  });

  it('a download cut mid-file is retried as a full refresh: every record exactly once', async () => {
    const lines = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ n: i })).join('\n');
    let calls = 0;
    const server = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      if (++calls === 1) {
        // Half the file, then the connection drops: several batches have landed by then.
        res.write(lines.slice(0, lines.length / 2));
        setTimeout(() => req.socket.destroy(), 200);
        return;
      }
      res.end(lines);
    });
    const id = await create(`${server.url}/feed.ndjson`);
    const run = await syncOnce(id);
    expect(run).toMatchObject({ status: 'success', attempt: 2, records: 1000 });
    expect(calls).toBe(2);
    const ns = await api.knex('raw_records').where({ source_id: id }).pluck('payload');
    expect(ns).toHaveLength(1000);
    expect(new Set(ns.map((p: { n: number }) => p.n)).size).toBe(1000);
  });
});
