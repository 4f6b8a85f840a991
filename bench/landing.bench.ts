/**
 * Issue item 6: rows per second landed in raw_records by a real sync, from a PostgreSQL table and
 * from an NDJSON file of BENCH_LANDING_ROWS (1,000,000) rows, beside COPY of the same rows into the
 * same table in the same run. Targets: ≥ 0.5× of COPY; worker RSS ≤ 200 MB throughout.
 * - Data: a scratch database (not the bench database) with an `orders` table made by
 *   generate_series (bench/lib/landing-data.ts, ~245 bytes a row as JSON) and the same rows as
 *   an NDJSON file in a temp directory (row_to_json, id order, UTC).
 * - Sluice: sources created through the repository (a database source on the scratch database with
 *   cursor_column id, a file source file:///tmp/.../orders.ndjson), a sync requested with
 *   SyncService.requestSync as POST /raw-data-sources/{id}/sync does, run end to end by the real
 *   worker in a child process (bench/servers/landing-worker.ts: built-in connectors, Landing).
 *   rows/s = records ÷ (finished_at − started_at) of the run row. The worker's RSS (VmRSS) is read
 *   from /proc every 100 ms for as long as it runs.
 * - Baseline: COPY raw_records (source_id, run_id, payload) FROM STDIN on one connection, timed
 *   from the first byte to COPY's completion. From the file: its lines streamed in, each prefixed
 *   with the two ids. From the table: COPY (SELECT ids, row_to_json(t) FROM orders t ORDER BY id)
 *   TO STDOUT on the scratch database piped into it (bench/lib/landing-copy.ts). The baseline reads
 *   the table through the same loopback forward as the worker (see below): both read the source
 *   over the same path, and neither pays for a hop the other does not take.
 * Before every round raw_records and quarantined_records are truncated, the source's sync state
 * is removed (the table is read whole again) and Postgres checkpoints, so no round pays for
 * another's dirty pages. BENCH_LANDING_ROUNDS (3) alternating rounds per source, no warm-up (the
 * data is fresh in cache from its creation); medians of rows/s. BENCH_CPU_PROF=dir profiles the worker;
 * BENCH_WORKER_NODE_OPTIONS adds node flags to it (e.g. --max-semi-space-size=4);
 * BENCH_MEMORY_TRACE=1 has it write the peaks of its heap and off-heap memory per sync;
 * BENCH_LANDING_KINDS=database (or file) measures one source only.
 */
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import pg from 'pg';
import { median, type BenchResult, type BenchSettings } from './lib/bench-result';
import { createBenchDatabase, type BenchDatabase } from './lib/bench-database';
import { BENCH_REDIS_URL, benchContainer, benchEnv } from './lib/bench-env';
import { startChild, type ChildProcess } from './lib/child-server';
import { copyFileIn, copyTableIn } from './lib/landing-copy';
import { createLandingData, SOURCE_TABLE, type LandingData } from './lib/landing-data';
import { RssSampler, rssOf } from './lib/landing-rss';
import { deleteKeys } from './lib/redis-keys';
import { startTcpForward } from '../test/connectors/support/tcp-forward';

const ROWS = Number(process.env.BENCH_LANDING_ROWS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_LANDING_ROUNDS ?? 3);
// Names of this run's own (databases, queue prefix): a second run at the same time must not drop them.
const RUN = `sluice_bench_landing_${process.pid}`;
const PREFIX = RUN;
const RATIO_TARGET = 0.5;
const RSS_TARGET_MB = 200;
const RUN_TIMEOUT_MS = 600_000;
const MB = 2 ** 20;

type Kind = 'database' | 'file';
const LABEL: Record<Kind, string> = { database: 'PostgreSQL table', file: 'NDJSON file' };

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export default async function landing(_settings: BenchSettings): Promise<BenchResult[]> {
  const loadBefore = load();
  const keep = process.env.BENCH_KEEP_DATABASE === '1';
  process.stderr.write(`  creating ${ROWS} source rows and the NDJSON file\n`);
  const data = await createLandingData(`${RUN}_src`, ROWS);
  try {
    const db = await createBenchDatabase(RUN);
    try {
      return await measure(data, db, loadBefore);
    } finally {
      if (keep) await db.knex.destroy();
      else await db.drop();
    }
  } finally {
    if (!keep) await data.drop();
  }
}

async function measure(data: LandingData, db: BenchDatabase, loadBefore: string): Promise<BenchResult[]> {
  // The database source is on loopback, which production refuses unless OUTBOUND_ALLOW covers it.
  const env = { ...benchEnv(db.url, PREFIX), FILE_ROOTS: data.dir, OUTBOUND_ALLOW: '127.0.0.1/32' };
  const container = benchContainer(env);
  const redis = new Redis(BENCH_REDIS_URL);
  const bench = new pg.Client({ connectionString: db.url });
  // The baseline reads the source through the same loopback forward as the worker (below).
  let source: pg.Client | undefined;
  // A connection Postgres ends (an operator, another tool) fails the current query, not the process.
  bench.on('error', () => undefined);
  let worker: ChildProcess | undefined;
  let rss: RssSampler | undefined;
  // The source table lives in the same PostgreSQL server as Sluice's own database, which the
  // outbound policy never lets a source reach (whatever OUTBOUND_ALLOW says): the worker reads it
  // through a loopback forward, as it would read any other server, and so does the baseline's COPY
  // TO STDOUT. The forward runs in this process, not the worker's.
  const forward = await startTcpForward(Number(new URL(data.sourceUrl).port || 5432));
  const forwardedUrl = new URL(data.sourceUrl);
  forwardedUrl.port = String(forward.port);
  try {
    source = new pg.Client({ connectionString: forwardedUrl.toString() });
    source.on('error', () => undefined);
    await Promise.all([bench.connect(), source.connect()]);
    await deleteKeys(redis, `${PREFIX}:*`);
    const common = { refresh_interval: 86400, is_active: true } as const;
    const ids: Record<Kind, string> = {
      database: (
        await container.sources.create({
          ...common,
          name: 'landing-database',
          source_type: 'database',
          connection_string: `${forwardedUrl.toString()}?sslmode=disable`,
          metadata: { table: SOURCE_TABLE, cursor_column: 'id' },
        })
      ).id,
      file: (
        await container.sources.create({
          ...common,
          name: 'landing-file',
          source_type: 'file',
          connection_string: `file://${data.file}`,
          metadata: {},
        })
      ).id,
    };

    const nodeOptions = [
      ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
      ...(process.env.BENCH_WORKER_NODE_OPTIONS?.split(/\s+/).filter(Boolean) ?? []),
    ];
    worker = await startChild('bench/servers/landing-worker.ts', env, nodeOptions);
    rss = new RssSampler(worker.pid);
    rss.start();
    // The worker reconciled schedules at start; remove them so that only the benchmark's syncs run.
    const marker = `${PREFIX}:meta:schedules-reconciled`;
    while (!(await redis.exists(marker))) await sleep(100);
    for (const id of Object.values(ids)) await container.schedules.remove(id);
    const idleRss = (await rssOf(worker.pid)) ?? 0;

    const reset = async () => {
      await bench.query('TRUNCATE raw_records, quarantined_records');
      await bench.query('DELETE FROM source_sync_state');
      await bench.query('CHECKPOINT');
    };
    const landed = async () => Number((await bench.query('SELECT count(*) AS n FROM raw_records')).rows[0].n);

    const sluiceRound = async (kind: Kind) => {
      await reset();
      rss!.mark();
      const cpuBefore = await worker!.cpuMicros();
      const requested = await container.sync.requestSync(ids[kind]);
      const deadline = Date.now() + RUN_TIMEOUT_MS;
      let run: { status: string; records: string; invalid: string; seconds: number; error: string | null };
      for (;;) {
        await sleep(100);
        run = (
          await bench.query(
            `SELECT status, records, invalid, error,
               extract(epoch FROM finished_at - started_at)::float8 AS seconds
             FROM sync_runs WHERE id = $1`,
            [requested.run_id],
          )
        ).rows[0];
        if (run.status !== 'queued' && run.status !== 'running') break;
        if (Date.now() > deadline) throw new Error(`${kind} sync did not finish in time`);
      }
      const cpuSeconds = ((await worker!.cpuMicros()) - cpuBefore) / 1e6;
      await rss!.sample();
      const peak = rss!.mark();
      if (run.status !== 'success' || Number(run.records) !== ROWS || Number(run.invalid) !== 0)
        throw new Error(
          `${kind} sync ended ${run.status} with ${run.records} records, ${run.invalid} invalid (${run.error ?? ''})`,
        );
      const rows = await landed();
      if (rows !== ROWS) throw new Error(`${kind} sync landed ${rows} rows, expected ${ROWS}`);
      return { rate: ROWS / run.seconds, seconds: run.seconds, cpuSeconds, peak };
    };

    const copyRound = async (kind: Kind) => {
      await reset();
      const [runRow] = await db
        .knex('sync_runs')
        .insert({ id: crypto.randomUUID(), source_id: ids[kind], trigger: 'manual', status: 'success' })
        .returning('id');
      const runId = String((runRow as { id: string }).id);
      const started = performance.now();
      const copied =
        kind === 'file'
          ? await copyFileIn(bench, data.file, ids[kind], runId)
          : await copyTableIn(source!, bench, ids[kind], runId);
      const seconds = (performance.now() - started) / 1000;
      if (copied !== ROWS) throw new Error(`COPY of the ${kind} rows copied ${copied}, expected ${ROWS}`);
      return { rate: ROWS / seconds, seconds };
    };

    const kinds = (process.env.BENCH_LANDING_KINDS?.split(',') ?? ['database', 'file']) as Kind[];
    const rates = Object.fromEntries(
      kinds.map((k) => [k, { sluice: [] as number[], baseline: [] as number[] }]),
    );
    const cpu = Object.fromEntries(kinds.map((k) => [k, [] as number[]]));
    const peaks = Object.fromEntries(kinds.map((k) => [k, [] as number[]]));
    for (let i = 0; i < ROUNDS; i++) {
      for (const kind of kinds) {
        const order = i % 2 ? (['baseline', 'sluice'] as const) : (['sluice', 'baseline'] as const);
        for (const side of order) {
          if (side === 'sluice') {
            const r = await sluiceRound(kind);
            rates[kind]!.sluice.push(r.rate);
            cpu[kind]!.push(r.cpuSeconds);
            peaks[kind]!.push(r.peak);
          } else rates[kind]!.baseline.push((await copyRound(kind)).rate);
        }
        process.stderr.write(
          `  round ${i + 1}/${ROUNDS} ${kind}: sluice ${rates[kind]!.sluice[i]!.toFixed(0)} rows/s ` +
            `(peak RSS ${(peaks[kind]![i]! / MB).toFixed(0)} MB), COPY ${rates[kind]!.baseline[i]!.toFixed(0)} rows/s, ` +
            `load ${load()}\n`,
        );
      }
    }
    await rss.sample();
    const rows = `${ROWS.toLocaleString('en')} rows`;
    const results: BenchResult[] = kinds.map((kind) => ({
      name: `landing from a ${LABEL[kind]} (${rows})`,
      unit: 'rows/s',
      sluice: median(rates[kind]!.sluice),
      baseline: median(rates[kind]!.baseline),
      higherIsBetter: true,
      targets: [{ on: 'ratio', op: '≥', value: RATIO_TARGET }],
      rounds: rates[kind]!,
      note:
        `Sluice: a real sync, records ÷ (finished_at − started_at); worker CPU ${median(cpu[kind]!).toFixed(1)} s ` +
        `a run (median). Baseline: ${kind === 'file' ? 'the file streamed' : 'COPY (SELECT ids, row_to_json(t) ... ORDER BY id) TO STDOUT piped'} ` +
        `into COPY raw_records (source_id, run_id, payload) FROM STDIN, wall time`,
    }));
    results.push({
      name: `landing worker peak RSS (${rows}, both sources)`,
      unit: 'MB',
      sluice: rss.peak / MB,
      higherIsBetter: false,
      targets: [{ on: 'value', op: '≤', value: RSS_TARGET_MB }],
      note:
        `VmRSS every 100 ms (${rss.samples} samples) over the worker's life: idle ${(idleRss / MB).toFixed(0)} MB, ` +
        `peak per sync ${kinds.map((k) => `${k} ${(Math.max(...peaks[k]!) / MB).toFixed(0)} MB`).join(', ')}; ` +
        `${data.rowBytes.toFixed(0)} B a row as JSON, file ${(data.fileBytes / MB).toFixed(0)} MB; ` +
        `load before ${loadBefore}, after ${load()}`,
    });
    return results;
  } finally {
    rss?.stop();
    await worker?.stop();
    await deleteKeys(redis, `${PREFIX}:*`).catch(() => 0);
    redis.disconnect();
    await Promise.all([bench.end(), source?.end()]).catch(() => undefined);
    await forward.close();
    await container.close();
  }
}
