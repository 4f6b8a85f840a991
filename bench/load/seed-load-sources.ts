import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { maskSecret } from '../../src/crypto/mask-secret';
import type { SecretBox } from '../../src/crypto/secret-box';
import { seedSources } from '../lib/seed-sources';

/** NDJSON files the `file` sources read, and records in each. */
export const DATA_FILES = 100;
const RECORDS_PER_FILE = 20;
/**
 * Refresh intervals of the seeded sources, in seconds. Hourly and daily dominate in practice; with
 * ~8.5k active sources these give about 8 scheduled syncs a second, background work the workers do
 * throughout the run on top of the syncs the load asks for.
 */
const INTERVALS = [300, 900, 3600, 21600, 86400];

export interface LoadSources {
  /** Every seeded id, in a stable shuffled order. */
  ids: string[];
  /** Active `file` sources: a sync of one really reads a file and lands records. */
  activeFileIds: string[];
}

/** Small NDJSON files under `dir` (the run's FILE_ROOTS). */
export async function writeDataFiles(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let f = 0; f < DATA_FILES; f++) {
    const lines = Array.from({ length: RECORDS_PER_FILE }, (_, i) =>
      JSON.stringify({
        id: f * RECORDS_PER_FILE + i,
        sku: `sku-${f}-${i}`,
        qty: i % 7,
        at: '2026-11-26T00:00:00Z',
      }),
    );
    await writeFile(join(dir, `batch-${f}.ndjson`), `${lines.join('\n')}\n`);
  }
}

/**
 * The connection string a seeded source of `type` gets. Only `file` sources reach anything (a file
 * below FILE_ROOTS). The others name 127.0.0.1:9 (discard) by IP literal: no name to resolve, and
 * in production the outbound policy refuses loopback, so their scheduled syncs fail at once
 * without opening a socket: the "failed" sources every real install has.
 */
function connectionString(type: string, i: number, dataDir: string): string {
  switch (type) {
    case 'file':
      return `file://${dataDir}/batch-${i % DATA_FILES}.ndjson`;
    case 'database':
      return `postgres://loader:pw-${i}@127.0.0.1:9/warehouse`;
    case 'api':
      return `http://127.0.0.1:9/v2/items?token=tok-${i}`;
    case 'stream':
      return `redis://:pw-${i}@127.0.0.1:9/0`;
    default:
      return `hmac-secret-${i}`;
  }
}

/**
 * `count` sources with bench/lib/seed-sources.ts's realistic spread (types, statuses, 85 % active,
 * a year of creation times), then each given a real encrypted connection string (sealed with
 * `secrets`, bound to its row) and its mask, realistic refresh intervals, and NDJSON settings
 * for the `file` ones: a worker can sync any of them.
 */
export async function seedLoadSources(
  knex: Knex,
  secrets: SecretBox,
  count: number,
  dataDir: string,
): Promise<LoadSources> {
  await seedSources(knex, count);
  const rows = (await knex('raw_data_sources')
    .select('id', 'name', 'source_type', 'is_active')
    .orderByRaw('md5(id::text)')) as Array<{
    id: string;
    name: string;
    source_type: string | null;
    is_active: boolean;
  }>;
  for (let start = 0; start < rows.length; start += 1000) {
    const values = rows.slice(start, start + 1000).map((row) => {
      const i = Number(row.name.replace(/\D/g, ''));
      const type = row.source_type ?? 'webhook';
      const secret = connectionString(type, i, dataDir);
      return [
        row.id,
        secrets.encrypt(secret, `raw_data_sources.connection_string:${row.id}`),
        maskSecret(secret),
        INTERVALS[i % INTERVALS.length]!,
        type === 'file' ? JSON.stringify({ format: 'ndjson', owner: `team-${i % 12}` }) : null,
      ];
    });
    await knex.raw(
      `UPDATE raw_data_sources AS s SET
         connection_string_ciphertext = v.ciphertext,
         connection_string_masked = v.masked,
         refresh_interval = v.refresh_interval,
         metadata = coalesce(v.metadata, s.metadata)
       FROM (VALUES ${values.map(() => '(?::uuid, ?, ?, ?::int, ?::jsonb)').join(', ')})
         AS v(id, ciphertext, masked, refresh_interval, metadata)
       WHERE s.id = v.id`,
      values.flat(),
    );
  }
  await knex.raw('VACUUM ANALYZE raw_data_sources');
  return {
    ids: rows.map((r) => r.id),
    activeFileIds: rows.filter((r) => r.source_type === 'file' && r.is_active).map((r) => r.id),
  };
}
