/**
 * Issue 12 item 4: exporting a source's records. BENCH_EXPORT_ROWS (1,000,000) records of ~245
 * bytes are landed into raw_records (bench/lib/records-data.ts), then read whole, alternately:
 * - Sluice: GET /raw-data-sources/{id}/records with Accept: application/x-ndjson (and text/csv)
 *   from the real API in a child process (bench/servers/sluice-server.ts), read to the end by an
 *   HTTP client in this process; rows/s = rows ÷ wall time from request to last byte. The API's
 *   RSS (VmRSS) is sampled every 100 ms; its growth is the peak during the exports (a warm-up one
 *   included) minus its RSS after one small JSON page request.
 * - Baseline: COPY (SELECT id, run_id, ingested_at, payload FROM raw_records WHERE source_id = …
 *   ORDER BY id) TO STDOUT on one connection of this process, bytes read and dropped.
 * Targets: NDJSON and CSV ≥ 0.5× of COPY; API RSS growth < 50 MB. BENCH_EXPORT_ROUNDS (3) rounds
 * per side, medians.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { ApiKeyRepository } from '../src/auth/api-key.repository';
import { median, type BenchResult, type BenchSettings } from './lib/bench-result';
import { assertLoopback, createBenchDatabase } from './lib/bench-database';
import { BENCH_REDIS_URL } from './lib/bench-env';
import { deletePrefixKeys } from './lib/redis-keys';
import { startChildServer } from './lib/child-server';
import { RssSampler, rssOf } from './lib/landing-rss';
import { seedRecords } from './lib/records-data';

const ROWS = Number(process.env.BENCH_EXPORT_ROWS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_EXPORT_ROUNDS ?? 3);
const RUN = `sluice_bench_export_${process.pid}`;
const MB = 2 ** 20;

async function drain(body: ReadableStream<Uint8Array>): Promise<{ bytes: number; lines: number }> {
  let bytes = 0;
  let lines = 0;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  }
  return { bytes, lines };
}

export default async function recordsExport(_settings: BenchSettings): Promise<BenchResult[]> {
  assertLoopback(BENCH_REDIS_URL);
  const db = await createBenchDatabase(RUN);
  try {
    const seeded = performance.now();
    const { sourceId } = await seedRecords(db.knex, ROWS);
    process.stderr.write(
      `  landed ${ROWS} records in ${((performance.now() - seeded) / 1000).toFixed(1)} s\n`,
    );
    const key = await new ApiKeyRepository(db.knex).create('bench', 'read');
    const env = {
      NODE_ENV: 'production',
      RATE_LIMIT_ALL: '1000000',
      DATABASE_URL: db.url,
      REDIS_URL: BENCH_REDIS_URL,
      ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
      QUEUE_PREFIX: RUN,
    };
    const server = await startChildServer('bench/servers/sluice-server.ts', env);
    const copyClient = new pg.Client({ connectionString: db.url });
    await copyClient.connect();
    try {
      const url = `${server.url}/raw-data-sources/${sourceId}/records`;
      const get = (accept: string) =>
        fetch(url, { headers: { authorization: `Bearer ${key.token}`, accept } });
      // Growth is counted from the API as it serves small requests: the first export included.
      await (await get('application/json')).text();
      const rssStart = (await rssOf(server.pid)) ?? 0;
      const sampler = new RssSampler(server.pid);
      sampler.start();
      // Warm-up: the export pool's first connection, JIT.
      await drain((await get('application/x-ndjson')).body!);

      const timed = async (read: () => Promise<number>) => {
        const started = performance.now();
        const rows = await read();
        if (rows !== ROWS) throw new Error(`read ${rows} rows, expected ${ROWS}`);
        return ROWS / ((performance.now() - started) / 1000);
      };
      const http = (accept: string, header: number) => async () =>
        (await drain((await get(accept)).body!)).lines - header;
      const copy = async () => {
        const stream = copyClient.query(
          copyTo(
            `COPY (SELECT id, run_id, ingested_at, payload FROM raw_records WHERE source_id = '${sourceId}' ORDER BY id) TO STDOUT`,
          ),
        );
        let lines = 0;
        for await (const chunk of stream as AsyncIterable<Buffer>)
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
        return lines;
      };
      const ndjson: number[] = [];
      const csv: number[] = [];
      const baseline: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        baseline.push(await timed(copy));
        ndjson.push(await timed(http('application/x-ndjson', 0)));
        csv.push(await timed(http('text/csv', 1)));
        process.stderr.write(
          `  round ${round + 1}: COPY ${baseline.at(-1)!.toFixed(0)}, NDJSON ${ndjson.at(-1)!.toFixed(0)}, CSV ${csv.at(-1)!.toFixed(0)} rows/s\n`,
        );
      }
      sampler.stop();
      const growth = Math.max(0, sampler.peak - rssStart) / MB;
      const note = `${ROWS} rows of ~245 B; API RSS ${(rssStart / MB).toFixed(0)} MB before, peak ${(sampler.peak / MB).toFixed(0)} MB during ${ROUNDS * 2 + 1} full exports`;
      return [
        {
          name: `export ${ROWS} records as NDJSON (GET …/records) vs COPY TO STDOUT`,
          unit: 'rows/s',
          sluice: median(ndjson),
          baseline: median(baseline),
          higherIsBetter: true,
          targets: [{ on: 'ratio', op: '≥', value: 0.5 }],
          rounds: { sluice: ndjson, baseline },
          note,
        },
        {
          name: `export ${ROWS} records as CSV vs COPY TO STDOUT`,
          unit: 'rows/s',
          sluice: median(csv),
          baseline: median(baseline),
          higherIsBetter: true,
          targets: [{ on: 'ratio', op: '≥', value: 0.5 }],
          rounds: { sluice: csv, baseline },
        },
        {
          name: 'export: API RSS growth over the exports',
          unit: 'MB',
          sluice: growth,
          higherIsBetter: false,
          targets: [{ on: 'value', op: '≤', value: 50 }],
        },
      ];
    } finally {
      await copyClient.end();
      await server.stop();
      // The API registered its queues' meta keys under this run's prefix: leave none behind.
      await deletePrefixKeys(BENCH_REDIS_URL, RUN);
    }
  } finally {
    if (process.env.BENCH_KEEP_DATABASE !== '1') await db.drop();
    else await db.knex.destroy();
  }
}
