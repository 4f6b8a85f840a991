/**
 * Issue 12 item 6: what the landing table's own shape costs. The same BENCH_SHAPE_ROWS (1,000,000)
 * NDJSON lines (~245 B, bench/lib/landing-data.ts) are COPYed (source_id, run_id, payload) into
 * tables that add one thing at a time, from a bare table (text payload, no index, no key) to
 * raw_records as main had it and raw_records as it is now (partitioned by day); and, aside, the
 * bare table with a json payload (syntax-checked text) instead of jsonb. Each COPY starts
 * after a CHECKPOINT into a fresh table; BENCH_SHAPE_ROUNDS (1) rounds, medians. Each row's
 * ratio is the shape's rows/s over the bare table's: what is left of COPY's speed with it.
 */
import pg from 'pg';
import { median, type BenchResult, type BenchSettings } from './lib/bench-result';
import { createBenchDatabase } from './lib/bench-database';
import { copyFileIn } from './lib/landing-copy';
import { createLandingData } from './lib/landing-data';

const ROWS = Number(process.env.BENCH_SHAPE_ROWS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_SHAPE_ROUNDS ?? 1);
const RUN = `sluice_bench_shape_${process.pid}`;

const BASE = `id bigserial, source_id uuid NOT NULL, run_id uuid NOT NULL`;
const TIME = `ingested_at timestamptz NOT NULL DEFAULT now()`;
/** Each shape: a name and the DDL making table `t`; `raw_records` is the migrated table itself. */
const SHAPES: { name: string; ddl: string[] }[] = [
  {
    name: 'bare: text payload, no key, no index',
    ddl: [`CREATE TABLE t (source_id uuid NOT NULL, run_id uuid NOT NULL, payload text NOT NULL)`],
  },
  {
    name: '+ id bigserial, ingested_at default now()',
    ddl: [`CREATE TABLE t (${BASE}, payload text NOT NULL, ${TIME})`],
  },
  { name: '+ payload parsed as jsonb', ddl: [`CREATE TABLE t (${BASE}, payload jsonb NOT NULL, ${TIME})`] },
  {
    name: '+ primary key (id)',
    ddl: [`CREATE TABLE t (${BASE}, payload jsonb NOT NULL, ${TIME}, PRIMARY KEY (id))`],
  },
  {
    name: '+ index (source_id, id)',
    ddl: [
      `CREATE TABLE t (${BASE}, payload jsonb NOT NULL, ${TIME}, PRIMARY KEY (id))`,
      `CREATE INDEX ON t (source_id, id)`,
    ],
  },
  {
    name: '+ index (run_id)',
    ddl: [
      `CREATE TABLE t (${BASE}, payload jsonb NOT NULL, ${TIME}, PRIMARY KEY (id))`,
      `CREATE INDEX ON t (source_id, id)`,
      `CREATE INDEX ON t (run_id)`,
    ],
  },
  {
    name: '+ foreign keys: raw_records as on main',
    ddl: [
      `CREATE TABLE t (id bigserial PRIMARY KEY,
        source_id uuid NOT NULL REFERENCES raw_data_sources (id) ON DELETE CASCADE,
        run_id uuid NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
        payload jsonb NOT NULL, ${TIME})`,
      `CREATE INDEX ON t (source_id, id)`,
      `CREATE INDEX ON t (run_id)`,
    ],
  },
  { name: 'raw_records now: the same, partitioned by day', ddl: [] },
  {
    name: 'aside: the bare table with payload json (checked, stored as text)',
    ddl: [`CREATE TABLE t (source_id uuid NOT NULL, run_id uuid NOT NULL, payload json NOT NULL)`],
  },
];

export default async function landingShape(_settings: BenchSettings): Promise<BenchResult[]> {
  process.stderr.write(`  creating ${ROWS} rows as NDJSON\n`);
  const data = await createLandingData(`${RUN}_src`, ROWS);
  const db = await createBenchDatabase(RUN);
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const sourceId = (
      await db.knex('raw_data_sources').insert({ name: 'shape', source_type: 'file', metadata: {} }, ['id'])
    )[0]!.id as string;
    const runId = (
      await db
        .knex('sync_runs')
        .insert({ id: db.knex.raw('gen_random_uuid()'), source_id: sourceId, trigger: 'manual' }, ['id'])
    )[0]!.id as string;
    const rates = new Map<string, number[]>(SHAPES.map((s) => [s.name, []]));
    for (let round = 0; round < ROUNDS; round++)
      for (const shape of SHAPES) {
        const table = shape.ddl.length ? 't' : 'raw_records';
        if (shape.ddl.length) {
          await client.query('DROP TABLE IF EXISTS t');
          for (const ddl of shape.ddl) await client.query(ddl);
        } else await client.query('TRUNCATE raw_records');
        await client.query('CHECKPOINT');
        const started = performance.now();
        const rows = await copyFileIn(client, data.file, sourceId, runId, table);
        const rate = ROWS / ((performance.now() - started) / 1000);
        if (rows !== ROWS) throw new Error(`${shape.name}: COPY landed ${rows} rows`);
        rates.get(shape.name)!.push(rate);
        process.stderr.write(`  ${shape.name}: ${rate.toFixed(0)} rows/s\n`);
      }
    await client.query('DROP TABLE IF EXISTS t');
    const bare = median(rates.get(SHAPES[0]!.name)!);
    return SHAPES.slice(1).map((shape, i) => ({
      name: `COPY ${ROWS} rows into ${shape.name}, vs bare`,
      unit: 'rows/s',
      sluice: median(rates.get(shape.name)!),
      baseline: bare,
      higherIsBetter: true,
      targets: [],
      rounds: { sluice: rates.get(shape.name)!, baseline: rates.get(SHAPES[0]!.name)! },
      ...(i === 0
        ? { note: `~${data.rowBytes.toFixed(0)} B a row; each shape adds one thing to the one above` }
        : {}),
    }));
  } finally {
    await client.end();
    await db.drop();
    await data.drop();
  }
}
