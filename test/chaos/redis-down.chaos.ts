import { sleep } from '../process/process-kit';
import { check, checkLanded, median, openRuns, Stack, untilSettled, type ChaosCase } from './chaos-kit';
import { PrivateRedis } from './private-services';

/**
 * A private redis-server (AOF on, fsync always) under an API process and two workers is stopped
 * with SIGTERM for 30 s while syncs run and more wait in the queue, then restarted on the same port
 * from the same dir. During the outage the API keeps answering: producers (sync, jobs) 503
 * problem+json within 2 s, CRUD 2xx; no process exits. Afterwards the queued jobs (kept by the AOF)
 * run, the interrupted ones finish, syncs refused during the outage are accepted again, and every
 * source ends success with every record exactly once.
 */
const OUTAGE_MS = 30_000;
const PRODUCER_BOUND_MS = 2000;
const SCRIPT = { records: 40, batch: 2, delay_ms: 150 };

export const chaosCase: ChaosCase = {
  id: '3-redis-down',
  title: 'Redis down 30 s during syncs and enqueues (private redis, AOF, SIGTERM + restart)',
  criterion: `sync/jobs 503 within ${PRODUCER_BOUND_MS / 1000} s and CRUD 2xx during the outage; no process exits; afterwards every source success, nothing lost or duplicated`,
  timeoutMs: 200_000,
  async run(figures) {
    const redis = new PrivateRedis(true);
    await redis.start();
    const stack = new Stack({
      redisUrl: redis.url,
      env: {
        WORKER_CONCURRENCY: '2',
        WORKER_LOCK_DURATION_MS: '5000',
        WORKER_STALLED_INTERVAL_MS: '3000',
        SYNC_ATTEMPTS: '5',
      },
    });
    await stack.prepare();
    await Promise.all([stack.startApi(), stack.startWorker('w1'), stack.startWorker('w2')]);
    // 4 run at once (2 workers × 2); the other 6 wait in Redis when it goes down.
    const before: string[] = [];
    for (let i = 0; i < 10; i += 1) before.push(await stack.createSource(SCRIPT, 'before'));
    const during: string[] = [];
    for (let i = 0; i < 4; i += 1) during.push(await stack.createSource(SCRIPT, 'during'));
    for (const id of before) await stack.sync(id);
    const deadline = Date.now() + 30_000;
    while (Number((await stack.knex('raw_records').count({ n: '*' }).first())?.n ?? 0) < 8) {
      check(Date.now() < deadline, 'no records landed within 30 s');
      await sleep(100);
    }
    const waiting = Number(
      (await stack.knex('sync_runs').where({ status: 'queued' }).count({ n: '*' }).first())?.n,
    );
    const procs = [stack.api!, ...stack.workers];

    await redis.stop();
    const downAt = Date.now();
    const producer: number[] = [];
    const crud: number[] = [];
    let crudCreated = 0;
    while (Date.now() - downAt < OUTAGE_MS) {
      for (const id of during) {
        const res = await stack.call('POST', `/raw-data-sources/${id}/sync`, undefined, 10_000);
        producer.push(res.ms);
        check(
          res.status === 503 && res.body?.status === 503,
          `sync during outage: ${res.status} ${res.text.slice(0, 200)}`,
        );
      }
      const job = await stack.call('GET', `/jobs/${before[0]}`, undefined, 10_000);
      producer.push(job.ms);
      check(job.status === 503, `GET /jobs during outage: ${job.status}`);
      const created = await stack.call('POST', '/raw-data-sources', {
        name: `crud-${stack.prefix}-${crudCreated}`,
        source_type: 'database',
        connection_string: 'postgres://u:p@127.0.0.1:5432/w',
        is_active: false,
      });
      crud.push(created.ms);
      check(created.status === 201, `create during outage: ${created.status} ${created.text.slice(0, 200)}`);
      crudCreated += 1;
      const listed = await stack.call('GET', '/raw-data-sources?limit=5');
      crud.push(listed.ms);
      check(listed.status === 200, `list during outage: ${listed.status}`);
      const dead = procs.filter((p) => !p.running());
      check(!dead.length, `processes exited while Redis was down: ${dead.map((p) => p.name).join(', ')}`);
      await sleep(1000);
    }
    await redis.start();
    const upAt = Date.now();
    // Accepted again once the API sees Redis (ready within a few seconds of the restart).
    let acceptedAfterMs = -1;
    for (const id of during) {
      const bound = Date.now() + 20_000;
      for (;;) {
        const res = await stack.call('POST', `/raw-data-sources/${id}/sync`);
        if (res.status === 202) break;
        check(Date.now() < bound, `sync after restart: ${res.status} ${res.text.slice(0, 200)}`);
        await sleep(250);
      }
      if (acceptedAfterMs < 0) acceptedAfterMs = Date.now() - upAt;
    }
    const all = [...before, ...during];
    await untilSettled(stack.knex, all, 120_000);
    const openDeadline = Date.now() + 60_000;
    while ((await openRuns(stack.knex, all)) > 0) {
      check(Date.now() < openDeadline, 'runs still open 60 s after Redis returned');
      await sleep(500);
    }
    const doneMs = Date.now() - upAt;
    const states = await stack
      .knex('raw_data_sources')
      .select('id', 'sync_status', 'error_message')
      .whereIn('id', all);
    const landed = await checkLanded(stack.knex, new Map(all.map((id) => [id, SCRIPT.records])));
    const dead = procs.filter((p) => !p.running());
    Object.assign(figures, {
      outage_ms: upAt - downAt,
      queued_at_outage: waiting,
      producer_503_median_ms: median(producer),
      producer_503_max_ms: Math.max(...producer),
      crud_median_ms: median(crud),
      crud_max_ms: Math.max(...crud),
      process_exits: dead.length,
      accepted_after_restart_ms: acceptedAfterMs,
      all_done_after_restart_ms: doneMs,
      success: states.filter((s) => s.sync_status === 'success').length,
      failed: states.filter((s) => s.sync_status === 'failed').length,
      records_landed: landed.records,
    });
    check(Math.max(...producer) < PRODUCER_BOUND_MS, `a producer 503 took ${Math.max(...producer)} ms`);
    check(!dead.length, `processes exited: ${dead.map((p) => p.name).join(', ')}`);
    check(
      states.every((s) => s.sync_status === 'success'),
      `not all success: ${JSON.stringify(states.filter((s) => s.sync_status !== 'success').slice(0, 3))}`,
    );
    check(
      landed.records === all.length * SCRIPT.records,
      `landed ${landed.records} of ${all.length * SCRIPT.records}`,
    );
  },
};
