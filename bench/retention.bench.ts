/**
 * Issue 12 item 6: retention that scales. BENCH_RETENTION_ROWS (10,000,000) records are landed
 * over BENCH_RETENTION_DAYS (10) past days into the day partitions of raw_records
 * (bench/lib/records-data.ts); then RecordRetention applies a retention one day shorter, three
 * times (each drops the oldest day left, the first a partial one): detached CONCURRENTLY, dropped.
 * While it runs, one client in this process loops over three probes against the real API in a
 * child process and the database: GET /raw-data-sources/{id}/records (first page of 100), GET
 * /raw-data-sources (list of 20), and an INSERT of 100 records (landing). The same loop runs for
 * BENCH_RETENTION_PROBE_SECONDS (5) before, as the baseline.
 * Rows: the longest any probe took while retention ran (what the lock cost a reader or a writer;
 * target ≤ 1 s), and the median latency of each GET during vs before (target ≥ 0.8×: unchanged).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ApiKeyRepository } from '../src/auth/api-key.repository';
import { createLogger } from '../src/logger';
import { RecordRetention } from '../src/records/record-retention';
import { median, type BenchResult, type BenchSettings } from './lib/bench-result';
import { createBenchDatabase } from './lib/bench-database';
import { BENCH_REDIS_URL } from './lib/bench-env';
import { deletePrefixKeys } from './lib/redis-keys';
import { startChildServer } from './lib/child-server';
import { seedRecords } from './lib/records-data';

const ROWS = Number(process.env.BENCH_RETENTION_ROWS ?? 10_000_000);
const DAYS = Number(process.env.BENCH_RETENTION_DAYS ?? 10);
const STEPS = 3;
const PROBE_MS = Number(process.env.BENCH_RETENTION_PROBE_SECONDS ?? 5) * 1000;
const RUN = `sluice_bench_retention_${process.pid}`;
const DAY = 86_400_000;

interface Probes {
  records: number[];
  list: number[];
  insert: number[];
}

export default async function retentionBench(_settings: BenchSettings): Promise<BenchResult[]> {
  const db = await createBenchDatabase(RUN);
  const logger = createLogger('warn');
  try {
    const keepAll = new RecordRetention(db.knex, { retentionDays: 0, logger });
    for (let back = DAYS + 1; back > 0; back -= 7)
      await keepAll.ensurePartitions(new Date(Date.now() - back * DAY));
    const seeded = performance.now();
    const { sourceId, runId } = await seedRecords(db.knex, ROWS, { days: DAYS });
    const seedSeconds = (performance.now() - seeded) / 1000;
    process.stderr.write(`  landed ${ROWS} records over ${DAYS} days in ${seedSeconds.toFixed(0)} s\n`);
    const key = await new ApiKeyRepository(db.knex).create('bench', 'read');
    const server = await startChildServer('bench/servers/sluice-server.ts', {
      NODE_ENV: 'production',
      RATE_LIMIT_ALL: '1000000',
      DATABASE_URL: db.url,
      REDIS_URL: BENCH_REDIS_URL,
      ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
      QUEUE_PREFIX: RUN,
    });
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    try {
      const headers = { authorization: `Bearer ${key.token}` };
      const timed = async (work: () => Promise<unknown>) => {
        const started = performance.now();
        await work();
        return performance.now() - started;
      };
      const getOk = async (path: string) => {
        const res = await fetch(`${server.url}${path}`, { headers });
        await res.text();
        if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
      };
      const probe = async (until: () => boolean): Promise<Probes> => {
        const p: Probes = { records: [], list: [], insert: [] };
        do {
          p.records.push(await timed(() => getOk(`/raw-data-sources/${sourceId}/records?limit=100`)));
          p.list.push(await timed(() => getOk('/raw-data-sources?limit=20')));
          p.insert.push(
            await timed(() =>
              writer.query(
                `INSERT INTO raw_records (source_id, run_id, payload)
                 SELECT $1, $2, jsonb_build_object('n', g) FROM generate_series(1, 100) g`,
                [sourceId, runId],
              ),
            ),
          );
        } while (!until());
        return p;
      };
      // Warm-up, then the baseline.
      let end = performance.now() + 1000;
      await probe(() => performance.now() > end);
      end = performance.now() + PROBE_MS;
      const before = await probe(() => performance.now() > end);

      // Three applications, each a day shorter: each drops one more day (the first a partial one).
      const count = async () =>
        Number((await writer.query('SELECT count(*) AS n FROM raw_records')).rows[0].n);
      const during: Probes = { records: [], list: [], insert: [] };
      const steps: string[] = [];
      for (let step = 1; step <= STEPS; step++) {
        const rowsBefore = await count();
        const retention = new RecordRetention(db.knex, { retentionDays: DAYS - step, logger });
        let done = false;
        const started = performance.now();
        const applying = retention.dropExpired().finally(() => {
          done = true;
        });
        const probes = await probe(() => done);
        const dropped = await applying;
        const seconds = (performance.now() - started) / 1000;
        if (!dropped.some((name) => name.startsWith('raw_records_')))
          throw new Error(`retention of ${DAYS - step} days dropped no raw_records partition`);
        for (const key of ['records', 'list', 'insert'] as const) during[key].push(...probes[key]);
        steps.push(
          `${DAYS - step} days: ${dropped.filter((n) => n.startsWith('raw_')).join(', ')} ` +
            `(${rowsBefore - (await count())} rows) in ${seconds.toFixed(2)} s`,
        );
      }
      const all = (p: Probes) => [...p.records, ...p.list, ...p.insert];
      const longest = Math.max(...all(during)) / 1000;
      const note =
        `${ROWS} records over ${DAYS} days (seeded in ${seedSeconds.toFixed(0)} s); retention applied ${STEPS} times: ` +
        `${steps.join('; ')}; ${during.records.length} probe loops during, ${before.records.length} before; ` +
        `longest probe before: ${(Math.max(...all(before)) / 1000).toFixed(3)} s; ` +
        `INSERT p50 before ${median(before.insert).toFixed(1)} ms, during ${median(during.insert).toFixed(1)} ms`;
      return [
        {
          name: `retention drops a day, 3 times, from ${ROWS} records: longest read or insert stall meanwhile`,
          unit: 's',
          sluice: longest,
          higherIsBetter: false,
          targets: [{ on: 'value', op: '≤', value: 1 }],
          note,
        },
        {
          name: 'retention: GET …/records p50 while it runs vs before',
          unit: 'ms',
          sluice: median(during.records),
          baseline: median(before.records),
          higherIsBetter: false,
          targets: [{ on: 'ratio', op: '≥', value: 0.8 }],
        },
        {
          name: 'retention: GET /raw-data-sources p50 while it runs vs before',
          unit: 'ms',
          sluice: median(during.list),
          baseline: median(before.list),
          higherIsBetter: false,
          targets: [{ on: 'ratio', op: '≥', value: 0.8 }],
        },
      ];
    } finally {
      await writer.end();
      await server.stop();
      // The API registered its queues' meta keys under this run's prefix: leave none behind.
      await deletePrefixKeys(BENCH_REDIS_URL, RUN);
    }
  } finally {
    if (process.env.BENCH_KEEP_DATABASE !== '1') await db.drop();
    else await db.knex.destroy();
  }
}
