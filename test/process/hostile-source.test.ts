import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { TEST_ENCRYPTION_KEYS, TEST_REDIS_URL } from '../helpers/test-env';
import { startHttpServer, type TestServer } from '../connectors/support/http-source';
import {
  freePort,
  killAll,
  logTailsOnFailure,
  sleep,
  track,
  until,
  waitForLog,
  WORKER_READY_MS,
  type Child,
} from './process-kit';

/**
 * One hostile source cannot hurt the rest, with a real process: `src/main.ts all` (API and
 * worker in one process, default byte limits) syncs file sources from a loopback HTTP server this
 * test runs. The measured failure: 400 gzip members, each one 15 MB NDJSON line
 * (≈ 6 MB on the wire) took a worker from 130 MB to 3.9 GB and out of memory. Now the run fails
 * with the cap in its message, at once (no retry), while the process stays under 300 MB RSS and
 * its /healthz keeps answering fast. Same for one JSON record with millions of keys.
 */
const LINE_BYTES = 15 * 1024 * 1024;
const MEMBERS = 400;
const RSS_LIMIT_MB = 300;

/** One gzip member holding one NDJSON line of LINE_BYTES, compressed a MiB at a time (the test stays small). */
async function bombMember(): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const out: Buffer[] = [];
  gzip.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((resolve) => gzip.on('end', resolve));
  const piece = Buffer.alloc(1024 * 1024, 'a');
  gzip.write('{"pad":"');
  for (let i = 0; i < LINE_BYTES / piece.length; i += 1) gzip.write(piece);
  gzip.end('"}\n');
  await ended;
  return Buffer.concat(out);
}

/** Resident memory of a process in MB, from /proc (Linux). */
function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return line ? Number(line[1]) / 1024 : NaN;
}

describe('a hostile file source (gzip bomb, one huge JSON record)', () => {
  let api: TestApi;
  let server: TestServer;
  let proc: Child;
  let port: number;
  let member: Buffer;
  let bombBytesSent = 0;

  logTailsOnFailure();

  beforeAll(async () => {
    member = await bombMember();
    server = await startHttpServer((req, res, url) => {
      const stream =
        url.pathname === '/bomb.ndjson'
          ? Readable.from(
              (function* () {
                for (let i = 0; i < MEMBERS; i += 1) {
                  bombBytesSent += member.length;
                  yield member;
                }
              })(),
            )
          : Readable.from(
              // [{"k0_0":0,"k0_1":1,...}]: 30 million keys (≈ 450 MB), generated as it is read.
              (function* () {
                yield '[{"k":0';
                for (let chunk = 0; chunk < 3000; chunk += 1) {
                  let text = '';
                  for (let i = 0; i < 10_000; i += 1) text += `,"k${chunk}_${i}":${i}`;
                  yield text;
                }
                yield '}]';
              })(),
            );
      res.writeHead(200, {
        'content-type': url.pathname === '/bomb.ndjson' ? 'application/x-ndjson' : 'application/json',
      });
      stream.on('error', () => undefined);
      res.on('close', () => stream.destroy());
      stream.pipe(res);
    });
    api = await startTestApi({ env: { SYNC_ATTEMPTS: '3' } });
    port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'all'], {
      cwd: new URL('../../', import.meta.url).pathname,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        NODE_ENV: 'test',
        HOST: '127.0.0.1',
        PORT: String(port),
        DATABASE_URL: api.database.url,
        DATABASE_POOL_MAX: '4',
        REDIS_URL: TEST_REDIS_URL,
        ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
        QUEUE_PREFIX: api.container.config.queuePrefix,
        SYNC_ATTEMPTS: '3',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc = track('main-all', child);
    await waitForLog(proc, (l) => l.msg === 'api listening', WORKER_READY_MS);
    await waitForLog(proc, (l) => l.msg === 'worker started', WORKER_READY_MS);
  }, 150_000);

  afterAll(async () => {
    await killAll();
    await server?.close();
    await api?.close();
  });

  /**
   * The API stayed responsive while the worker chewed on the hostile source: the median /healthz
   * latency under 100 ms, or, on a machine so loaded that the same probe with nothing running is
   * already slow, within 4× that idle median. An event loop blocked by a 15 MB parse answers in
   * seconds, far above either.
   */
  const expectResponsive = (figures: { healthMedianMs: number; idleHealthMedianMs: number }) =>
    expect(figures.healthMedianMs, JSON.stringify(figures)).toBeLessThan(
      Math.max(100, 4 * figures.idleHealthMedianMs),
    );

  /** Syncs `path` and samples the process (RSS, /healthz latency) until the run is final. */
  async function syncSampled(name: string, path: string) {
    const created = await api.post('/raw-data-sources', {
      name,
      source_type: 'file',
      connection_string: `${server.url}${path}`,
      metadata: {},
    });
    expect(created.status, created.text).toBe(201);
    const sourceId: string = created.body.id;
    const rssBefore = rssMb(proc.pid);
    // The same probe with nothing running, for comparison on a shared machine.
    const idle: number[] = [];
    for (let i = 0; i < 20; i += 1) {
      const started = performance.now();
      await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(30_000) });
      idle.push(performance.now() - started);
      await sleep(25);
    }
    idle.sort((a, b) => a - b);
    const queued = await api.post(`/raw-data-sources/${sourceId}/sync`);
    expect(queued.status, queued.text).toBe(202);
    const runId: string = queued.body.run_id;
    const rss: number[] = [];
    const health: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling && proc.running()) {
        rss.push(rssMb(proc.pid));
        const started = performance.now();
        // Bounded, but not tight: a loaded machine may stall one request for seconds; the median counts.
        const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(30_000) });
        health.push(performance.now() - started);
        expect(res.status).toBe(200);
        await sleep(25);
      }
    })();
    const startedAt = Date.now();
    let run: Record<string, unknown>;
    try {
      run = await until(
        `the run of ${name} is final`,
        async () => (await api.knex('sync_runs').where({ id: runId }).first()) as Record<string, unknown>,
        (r) => r.status !== 'queued' && r.status !== 'running',
        90_000,
        100,
      );
    } finally {
      sampling = false;
      await sampler;
    }
    const sorted = [...health].sort((a, b) => a - b);
    const figures = {
      ms: Date.now() - startedAt,
      rssBefore: Math.round(rssBefore),
      rssPeak: Math.round(Math.max(...rss)),
      idleHealthMedianMs: Number(idle[10]!.toFixed(1)),
      healthSamples: health.length,
      healthMedianMs: Number(sorted[Math.floor(sorted.length / 2)]?.toFixed(1)),
      healthP95Ms: Number(sorted[Math.floor(sorted.length * 0.95)]?.toFixed(1)),
      healthMaxMs: Number(sorted[sorted.length - 1]?.toFixed(1)),
    };
    return { run, figures, sourceId };
  }

  it('case #2, a gzip bomb of 15 MB lines: the run fails on RECORD_MAX_BYTES, once; the process stays small and healthy', async () => {
    const { run, figures } = await syncSampled('bomb', '/bomb.ndjson');
    console.log(
      `[hostile-source] gzip bomb (${MEMBERS} × ${LINE_BYTES / 1024 / 1024} MB lines, ${(member.length / 1024).toFixed(0)} KB per member; ` +
        `${(bombBytesSent / 1024 / 1024).toFixed(1)} MB handed to the socket): ${JSON.stringify(figures)}; error: ${String(run.error)}`,
    );
    expect(run.status).toBe('failed');
    expect(String(run.error)).toContain(
      'line 1 is larger than the per-record limit of 4 MiB (RECORD_MAX_BYTES)',
    );
    // Permanent: one attempt, not retried (nor crashed and retried).
    expect(run.attempt).toBe(1);
    expect(proc.running()).toBe(true);
    expect(figures.rssPeak).toBeLessThan(RSS_LIMIT_MB);
    expect(figures.healthSamples).toBeGreaterThan(0);
    // A loaded shared machine can stall any single request; the bulk of them must be fast.
    expectResponsive(figures);
  }, 120_000);

  it('one JSON record with 30 million keys: the run fails on RECORD_MAX_BYTES before the object is built', async () => {
    const { run, figures } = await syncSampled('huge-json', '/huge.json');
    console.log(
      `[hostile-source] 30M-key JSON record: ${JSON.stringify(figures)}; error: ${String(run.error)}`,
    );
    expect(run.status).toBe('failed');
    expect(String(run.error)).toContain(
      'JSON array element 1 is larger than the per-record limit of 4 MiB (RECORD_MAX_BYTES)',
    );
    expect(run.attempt).toBe(1);
    expect(proc.running()).toBe(true);
    expect(figures.rssPeak).toBeLessThan(RSS_LIMIT_MB);
    expectResponsive(figures);
  }, 120_000);
});
