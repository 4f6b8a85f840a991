/**
 * Issue 15 item 3: GET /raw-data-sources/{id} through PgBouncer in transaction mode (Debian's 1.18,
 * a private instance on loopback) beside the same Sluice server connected directly, in the same
 * run, over the same database. Two comparisons, each "through PgBouncer / direct":
 * - DATABASE_PREPARED_STATEMENTS=off through PgBouncer (what to set behind 1.18) vs auto direct;
 * - auto through PgBouncer (falls back to unnamed at the first lost name) vs auto direct.
 * The pooler is one more hop and one more process on the same two cores: the ratio prices it.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ApiKeyRepository } from '../src/auth/api-key.repository';
import { startPgBouncer, type PrivatePgBouncer } from '../test/support/private-pgbouncer';
import type { BenchResult, BenchSettings } from './lib/bench-result';
import { assertLoopback, createBenchDatabase } from './lib/bench-database';
import { startChildServer, type ChildServer } from './lib/child-server';
import { compare } from './lib/compare';
import { deleteKeys } from './lib/redis-keys';
import { seedSources } from './lib/seed-sources';

const SOURCES = Number(process.env.BENCH_SOURCES ?? 20_000);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const QUEUE_PREFIX = 'sluice_bench_pgb';
/** PgBouncer's server connections: DATABASE_POOL_MAX of the one server, so the pool never queues. */
const POOL = 10;

export default async function pgbouncerRead(settings: BenchSettings): Promise<BenchResult[]> {
  assertLoopback(REDIS_URL);
  const db = await createBenchDatabase('sluice_bench_pgb');
  const servers: ChildServer[] = [];
  let bouncer: PrivatePgBouncer | undefined;
  try {
    await seedSources(db.knex, SOURCES);
    const ids = (await db.knex('raw_data_sources').select('id').orderByRaw('md5(id::text)').limit(2000)).map(
      (r: { id: string }) => r.id,
    );
    bouncer = await startPgBouncer({ poolSize: POOL, upstream: db.url });
    console.log(
      `pgbouncer-read: PgBouncer ${bouncer.version} (transaction mode, default_pool_size ${POOL}), ${SOURCES} sources`,
    );
    const key = await new ApiKeyRepository(db.knex).create('bench', 'read');
    const headers = { authorization: `Bearer ${key.token}` };
    const env = {
      NODE_ENV: 'production',
      RATE_LIMIT_ALL: '1000000',
      DATABASE_URL: db.url,
      DATABASE_POOL_MAX: String(POOL),
      REDIS_URL,
      ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
      QUEUE_PREFIX,
    };
    const start = async (extra: Record<string, string>) => {
      const server = await startChildServer('bench/servers/sluice-server.ts', { ...env, ...extra }, []);
      servers.push(server);
      return server;
    };
    const direct = await start({});
    const off = await start({ DATABASE_URL: bouncer.url(db.url), DATABASE_PREPARED_STATEMENTS: 'off' });
    const auto = await start({ DATABASE_URL: bouncer.url(db.url) });
    const paths = ids.map((id) => `/raw-data-sources/${id}`);
    for (const server of [direct, off, auto]) {
      const res = await fetch(server.url + paths[0]!, { headers });
      if (res.status !== 200) throw new Error(`${server.url}: GET by id answered ${res.status}`);
    }
    return [
      await compare(
        {
          name: 'GET by id via PgBouncer 1.18, prepared off / direct',
          target: 0.5,
          sluice: off,
          baseline: direct,
          paths,
          headers,
        },
        settings,
      ),
      await compare(
        {
          name: 'GET by id via PgBouncer 1.18, auto (fell back) / direct',
          target: 0.5,
          sluice: auto,
          baseline: direct,
          paths,
          headers,
        },
        settings,
      ),
    ];
  } finally {
    for (const server of servers.reverse()) await server.stop();
    await bouncer?.close();
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    await deleteKeys(redis, `${QUEUE_PREFIX}:*`).finally(() => redis.disconnect());
    await db.drop();
  }
}
