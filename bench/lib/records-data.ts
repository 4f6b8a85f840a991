import type { Knex } from 'knex';

/**
 * `rows` records of one source and run landed straight into raw_records by INSERT … SELECT: the
 * same ~245-byte order rows as bench/lib/landing-data.ts, built in SQL (no connector involved).
 * `days` spreads them over that many past days (partitions made first); 0 lands them all now.
 */
export async function seedRecords(
  knex: Knex,
  rows: number,
  options: { sourceId?: string; days?: number; chunk?: number } = {},
): Promise<{ sourceId: string; runId: string }> {
  const sourceId =
    options.sourceId ??
    ((
      await knex('raw_data_sources').insert(
        { name: `bench-records-${rows}`, source_type: 'webhook', metadata: {} },
        ['id'],
      )
    )[0]!.id as string);
  const runId = (
    await knex('sync_runs').insert(
      { id: knex.raw('gen_random_uuid()'), source_id: sourceId, trigger: 'manual', status: 'success' },
      ['id'],
    )
  )[0]!.id as string;
  const days = options.days ?? 0;
  const chunk = options.chunk ?? 500_000;
  for (let from = 1; from <= rows; from += chunk) {
    const to = Math.min(rows, from + chunk - 1);
    await knex.raw(
      `INSERT INTO raw_records (source_id, run_id, payload, ingested_at)
       SELECT ?, ?, jsonb_build_object(
           'id', i,
           'account', 'acct-' || lpad((abs(hashint4(i)) % 50000)::text, 5, '0'),
           'email', 'cust' || (abs(hashint4(i + 1)) % 200000) || '@example.com',
           'country', (ARRAY['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'JP', 'BR'])[1 + abs(hashint4(i + 2)) % 8],
           'status', (ARRAY['pending', 'paid', 'shipped', 'refunded'])[1 + abs(hashint4(i + 3)) % 4],
           'amount', (abs(hashint4(i + 4)) % 1000000) / 100.0,
           'quantity', 1 + abs(hashint4(i + 5)) % 20,
           'created_at', timestamptz '2025-01-01 00:00:00+00' + i * interval '7 seconds',
           'note', md5(i::text)),
         now() - (? * (? - i)::float8 / ?) * interval '1 day'
       FROM generate_series(?::int, ?::int) AS i`,
      [sourceId, runId, days, rows, rows, from, to],
    );
  }
  await knex.raw('VACUUM ANALYZE raw_records');
  return { sourceId, runId };
}
