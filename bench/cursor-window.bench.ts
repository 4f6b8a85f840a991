/**
 * Issue item 12 (1): what the lookback window costs an incremental database read. A first sync of
 * BENCH_CURSOR_ROWS (100k) rows by an `updated_at` cursor, through the real connector on the local
 * PostgreSQL: every row is fingerprinted and the window kept (10 ms between rows, so 30k rows fall
 * inside the default 300 s lookback and the 10,000-fingerprint bound is exercised), its state built
 * with each batch. Baseline: the same connector reading the same rows in the same order without a
 * cursor (no window, no fingerprints, no state). Alternating rounds, medians. No target: the row
 * shows what the guarantee costs the read side (landing the rows costs more than reading them).
 */
import { DatabaseConnector } from '../src/connectors/database/database.connector';
import type { ConnectorContext, ConnectorSource } from '../src/connectors/connector';
import { Outbound } from '../src/connectors/outbound';
import { createLogger } from '../src/logger';
import { median, type BenchResult, type BenchSettings } from './lib/bench-result';
import { createBenchDatabase } from './lib/bench-database';

const ROWS = Number(process.env.BENCH_CURSOR_ROWS ?? 100_000);

const source = (url: string, metadata: Record<string, unknown>): ConnectorSource => ({
  id: '00000000-0000-4000-8000-0000000000be',
  name: 'bench-cursor',
  source_type: 'database',
  connection_string: url,
  metadata,
  schema_definition: null,
});

const context = (): ConnectorContext => ({
  signal: new AbortController().signal,
  logger: createLogger('silent'),
  outbound: new Outbound(),
  timeoutMs: 30_000,
});

export default async function cursorWindow(settings: BenchSettings): Promise<BenchResult[]> {
  const db = await createBenchDatabase('sluice_bench_cursor');
  try {
    await db.knex.raw(`CREATE TABLE feed (id bigint PRIMARY KEY, note text, amount numeric(12,2),
      updated_at timestamptz NOT NULL)`);
    await db.knex.raw(
      `INSERT INTO feed SELECT g, 'note ' || g, g * 1.25,
         timestamptz '2026-01-01 00:00:00+00' + g * interval '10 milliseconds'
       FROM generate_series(1, ?::int) g`,
      [ROWS],
    );
    await db.knex.raw('ANALYZE feed');
    const connector = new DatabaseConnector();
    const windowed = source(db.url, { table: 'feed', cursor_column: 'updated_at' });
    const plain = source(db.url, { query: 'SELECT * FROM feed ORDER BY updated_at' });
    const read = async (s: ConnectorSource): Promise<number> => {
      const started = performance.now();
      let rows = 0;
      for await (const batch of connector.sync(s, undefined, context())) rows += batch.records.length;
      if (rows !== ROWS) throw new Error(`read ${rows} rows, expected ${ROWS}`);
      return (performance.now() - started) / 1000;
    };
    await read(windowed);
    await read(plain);
    const sluice: number[] = [];
    const baseline: number[] = [];
    for (let i = 0; i < settings.rounds; i++) {
      if (i % 2) {
        baseline.push(await read(plain));
        sluice.push(await read(windowed));
      } else {
        sluice.push(await read(windowed));
        baseline.push(await read(plain));
      }
    }
    return [
      {
        name: `incremental read of ${ROWS / 1000}k rows with the lookback window`,
        unit: 's',
        sluice: median(sluice),
        baseline: median(baseline),
        higherIsBetter: false,
        targets: [],
        rounds: { sluice, baseline },
        note: 'baseline: the same rows read by the same connector without cursor_column (no fingerprints, no state)',
      },
    ];
  } finally {
    await db.drop();
  }
}
