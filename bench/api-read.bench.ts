/**
 * Issue item 12: the two hot reads over 100k sources, each beside a minimal Koa + knex handler of
 * the same query (bench/servers/baseline-server.ts) against the same database in the same run.
 * - GET /raw-data-sources/{id}, with Sluice's validation and masked-secret presentation on: ≥ 0.8×.
 * - A filtered list with its total, over a realistic mix of filters and offsets: ≥ 1.5×.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ApiKeyRepository } from '../src/auth/api-key.repository';
import type { BenchResult, BenchSettings } from './lib/bench-result';
import { assertLoopback, createBenchDatabase } from './lib/bench-database';
import { startChildServer, type ChildServer } from './lib/child-server';
import { compare } from './lib/compare';
import { deleteKeys } from './lib/redis-keys';
import { seedSources } from './lib/seed-sources';

const SOURCES = Number(process.env.BENCH_SOURCES ?? 100_000);
/** Which comparisons to run: `get`, `list` or both (default). */
const ONLY = process.env.BENCH_ONLY ?? '';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const QUEUE_PREFIX = 'sluice_bench';

/** What list calls look like: mostly first pages, common filters, some paging, a few deep pages. */
export const LIST_QUERIES = [
  '',
  '?offset=20',
  '?type=database&active=true',
  '?type=database&active=true&offset=20',
  '?type=database&active=true&offset=100',
  '?status=failed',
  '?status=failed&offset=20',
  '?active=false',
  '?type=api',
  '?type=api&offset=40&limit=50',
  '?type=webhook',
  '?status=syncing',
  '?type=stream&status=failed',
  '?active=true&limit=100',
  '?offset=1000',
  '?status=failed&offset=500',
];

/** The bench's API key: a stored one, so the measured path includes the key lookup (and its cache). */
let authorization: Record<string, string> = {};

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, { headers: authorization });
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** Both servers must give the same answer, or the comparison means nothing. */
async function checkSameAnswers(sluice: ChildServer, baseline: ChildServer, ids: string[]): Promise<void> {
  for (const query of LIST_QUERIES) {
    const path = `/raw-data-sources${query}`;
    const [a, b] = await Promise.all([getJson(sluice.url + path), getJson(baseline.url + path)]);
    const idsOf = (page: Record<string, unknown>) => (page.data as Array<{ id: string }>).map((x) => x.id);
    const totalOf = (page: Record<string, unknown>) => (page.pagination as { total: number }).total;
    if (totalOf(a) !== totalOf(b) || idsOf(a).join() !== idsOf(b).join())
      throw new Error(`list ${query}: Sluice and baseline disagree (totals ${totalOf(a)} vs ${totalOf(b)})`);
  }
  for (const id of ids.slice(0, 20)) {
    const path = `/raw-data-sources/${id}`;
    const [a, b] = await Promise.all([getJson(sluice.url + path), getJson(baseline.url + path)]);
    if (a.id !== id || b.id !== id || a.connection_string !== b.connection_string_masked)
      throw new Error(`get ${id}: Sluice and baseline disagree`);
  }
}

export default async function apiRead(settings: BenchSettings): Promise<BenchResult[]> {
  assertLoopback(REDIS_URL);
  const started = performance.now();
  const db = await createBenchDatabase('sluice_bench');
  const servers: ChildServer[] = [];
  try {
    await seedSources(db.knex, SOURCES);
    const ids = (await db.knex('raw_data_sources').select('id').orderByRaw('md5(id::text)').limit(2000)).map(
      (r: { id: string }) => r.id,
    );
    const version = (await db.knex.raw<{ rows: Array<{ server_version: string }> }>('SHOW server_version'))
      .rows[0]?.server_version;
    console.log(
      `api-read: PostgreSQL ${version}, ${SOURCES} sources, Sluice and baseline share the database`,
    );
    process.stderr.write(
      `  seeded ${SOURCES} sources in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );

    const key = await new ApiKeyRepository(db.knex).create('bench', 'read');
    authorization = { authorization: `Bearer ${key.token}` };
    const env = {
      NODE_ENV: 'production',
      // Rate limits stay on (their Redis round trip is part of the cost) but above what 2 cores serve.
      RATE_LIMIT_ALL: '1000000',
      DATABASE_URL: db.url,
      REDIS_URL,
      ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
      // A prefix of its own: the API only registers its queues (a few meta keys), never enqueues here.
      QUEUE_PREFIX,
    };
    // BENCH_CPU_PROF=dir: each server writes a V8 CPU profile there when it stops.
    const profile = process.env.BENCH_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
      : [];
    const sluice = await startChildServer('bench/servers/sluice-server.ts', env, profile);
    servers.push(sluice);
    const baseline = await startChildServer('bench/servers/baseline-server.ts', env, profile);
    servers.push(baseline);
    await checkSameAnswers(sluice, baseline, ids);

    const results: BenchResult[] = [];
    if (ONLY !== 'list')
      results.push(
        await compare(
          {
            name: 'GET /raw-data-sources/{id}',
            target: 0.8,
            sluice,
            baseline,
            paths: ids.map((id) => `/raw-data-sources/${id}`),
            headers: authorization,
          },
          settings,
        ),
      );
    if (ONLY !== 'get')
      results.push(
        await compare(
          {
            name: 'GET /raw-data-sources?filters (page + total)',
            target: 1.5,
            sluice,
            baseline,
            paths: LIST_QUERIES.map((q) => `/raw-data-sources${q}`),
            headers: authorization,
          },
          settings,
        ),
      );
    return results;
  } finally {
    for (const server of servers.reverse()) await server.stop();
    // The API registered its queues under the bench prefix (a few meta keys): leave nothing behind.
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    await deleteKeys(redis, `${QUEUE_PREFIX}:*`).finally(() => redis.disconnect());
    if (process.env.BENCH_KEEP_DATABASE !== '1') await db.drop();
    else await db.knex.destroy();
  }
}
