import { createKnex } from '../../src/db/create-knex';
import { sleep } from '../process/process-kit';
import {
  atCleanup,
  check,
  checkLanded,
  median,
  openRuns,
  Stack,
  untilSettled,
  type ChaosCase,
} from './chaos-kit';
import { PrivatePostgres } from './private-services';

/**
 * A Postgres cluster of our own goes down for 30 s (pg_ctl stop -m fast: every connection cut)
 * under an API process and two workers with syncs running. Meanwhile the API must answer 503
 * problem+json within the pool's acquire timeout (5 s) on database-backed routes, never hang or
 * 500, and no process may die. Once Postgres is back, the interrupted syncs retry with backoff
 * (the default SYNC_ATTEMPTS 6, exponential from 2 s: ~62 s of retries cover the outage) and finish, every
 * record exactly once.
 */
const OUTAGE_MS = 30_000;
const ACQUIRE_TIMEOUT_MS = 5000;
const SCRIPT = { records: 40, batch: 2, delay_ms: 150 };

export const chaosCase: ChaosCase = {
  id: '5-postgres-down',
  title: 'Postgres down 30 s during syncs (private cluster, fast shutdown)',
  criterion: `API 503 problem+json within the acquire timeout (${ACQUIRE_TIMEOUT_MS / 1000} s) on every call; no process exits; every interrupted sync retried with backoff and finished success; nothing lost or duplicated`,
  timeoutMs: 200_000,
  async run(figures) {
    const pg = new PrivatePostgres();
    await pg.init();
    const knex = createKnex({ url: pg.url(), poolMax: 2 });
    atCleanup(() => knex.destroy());
    const stack = new Stack({
      databaseUrl: pg.url(),
      env: {
        SYNC_ATTEMPTS: '6',
        WORKER_CONCURRENCY: '4',
        WORKER_LOCK_DURATION_MS: '5000',
        WORKER_STALLED_INTERVAL_MS: '3000',
      },
    });
    await stack.prepare(knex);
    await Promise.all([stack.startApi(), stack.startWorker('w1'), stack.startWorker('w2')]);
    const ids: string[] = [];
    for (let i = 0; i < 8; i += 1) ids.push(await stack.createSource(SCRIPT, 'pg'));
    const later = await stack.createSource(SCRIPT, 'pg-later');
    for (const id of ids) await stack.sync(id);
    // Some records in: syncs are mid-flight when Postgres goes.
    const deadline = Date.now() + 30_000;
    while (Number((await knex('raw_records').count({ n: '*' }).first())?.n ?? 0) < 8) {
      check(Date.now() < deadline, 'no records landed within 30 s');
      await sleep(100);
    }
    const procs = [stack.api!, ...stack.workers];

    await knex.destroy(); // our own pool would only hold dead connections
    await pg.stop();
    const downAt = Date.now();
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    const calls: [string, string][] = [
      ['GET', '/raw-data-sources'],
      ['GET', `/raw-data-sources/${ids[0]}`],
      ['POST', `/raw-data-sources/${later}/sync`],
      ['GET', '/readyz'],
    ];
    while (Date.now() - downAt < OUTAGE_MS) {
      for (const [method, path] of calls) {
        const res = await stack.call(method, path, undefined, ACQUIRE_TIMEOUT_MS + 5000);
        latencies.push(res.ms);
        const key = `${method} ${path.replace(/[0-9a-f-]{36}/, '{id}')} ${res.status}`;
        statuses[key] = (statuses[key] ?? 0) + 1;
        check(
          res.status === 503,
          `${method} ${path} answered ${res.status} with Postgres down: ${res.text.slice(0, 200)}`,
        );
        check(res.ms <= ACQUIRE_TIMEOUT_MS + 500, `${method} ${path} took ${res.ms} ms`);
      }
      const dead = procs.filter((p) => !p.running());
      check(!dead.length, `processes exited while Postgres was down: ${dead.map((p) => p.name).join(', ')}`);
      await sleep(1000);
    }
    await pg.start();
    const upAt = Date.now();
    const knex2 = createKnex({ url: pg.url(), poolMax: 2 });
    atCleanup(() => knex2.destroy());
    const { ms } = await untilSettled(knex2, ids, 120_000);
    // A run whose retry is still waiting on its backoff keeps the source syncing: wait for none open.
    const openDeadline = Date.now() + 90_000;
    while ((await openRuns(knex2, ids)) > 0) {
      check(Date.now() < openDeadline, 'runs still open 90 s after Postgres returned');
      await sleep(500);
    }
    const recoveredMs = Date.now() - upAt;
    const laterRun = await stack.sync(later);
    await untilSettled(knex2, [later], 30_000);
    const states = await knex2('raw_data_sources')
      .select('id', 'sync_status', 'error_message')
      .whereIn('id', [...ids, later]);
    const runs = await knex2('sync_runs').select('attempt', 'status').whereIn('source_id', ids);
    const landed = await checkLanded(knex2, new Map([...ids, later].map((id) => [id, SCRIPT.records])));
    const dead = procs.filter((p) => !p.running());
    Object.assign(figures, {
      outage_ms: upAt - downAt,
      calls_503: latencies.length,
      latency_503_median_ms: median(latencies),
      latency_503_max_ms: Math.max(...latencies),
      process_exits: dead.length,
      max_attempt: Math.max(...runs.map((r) => Number(r.attempt))),
      settled_after_up_ms: ms,
      all_closed_after_up_ms: recoveredMs,
      success: states.filter((s) => s.sync_status === 'success').length,
      records_landed: landed.records,
    });
    check(!dead.length, `processes exited: ${dead.map((p) => p.name).join(', ')}`);
    check(
      states.every((s) => s.sync_status === 'success'),
      `not all success: ${JSON.stringify(states.filter((s) => s.sync_status !== 'success').slice(0, 3))}`,
    );
    check(Boolean(laterRun), 'no sync after recovery');
  },
};
