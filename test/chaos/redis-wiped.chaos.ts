import { Queue } from 'bullmq';
import { QUEUES, schedulerId } from '../../src/queue/queue-names';
import { kill, sleep } from '../process/process-kit';
import { atCleanup, check, Stack, type ChaosCase } from './chaos-kit';
import { PrivateRedis } from './private-services';

/**
 * A private redis-server (no persistence) is killed and restarted empty on the same port while
 * syncs run and wait: every job, lock and scheduler is gone. The running workers' reconciler
 * (RECONCILE_INTERVAL_MS 1 s, grace = lock duration 3 s) must close the lost runs, repair the
 * sources left queued or syncing, and put every active source's scheduler back, within the bound;
 * restored schedulers must not all fire at once; a repaired source syncs again.
 */
const LOCK_MS = 3000;
const RECONCILE_MS = 1000;
/** grace (lock 3 s) + two reconcile intervals + the worker's reconnect (≤ 2 s) + slack on a loaded machine. */
const BOUND_MS = 15_000;

export const chaosCase: ChaosCase = {
  id: '4-redis-wiped',
  title: 'Redis restarted with its data wiped (schedules, queued and running jobs lost)',
  criterion: `within ${BOUND_MS / 1000} s of the restart: every lost run closed, every source left queued/syncing repaired, every active schedule restored; no burst of schedule runs; a repaired source syncs again`,
  timeoutMs: 150_000,
  async run(figures) {
    const redis = new PrivateRedis(false);
    await redis.start();
    const stack = new Stack({
      redisUrl: redis.url,
      env: {
        WORKER_CONCURRENCY: '2',
        WORKER_LOCK_DURATION_MS: String(LOCK_MS),
        WORKER_STALLED_INTERVAL_MS: '2000',
        RECONCILE_INTERVAL_MS: String(RECONCILE_MS),
      },
    });
    await stack.prepare();
    await Promise.all([stack.startApi(), stack.startWorker('w1'), stack.startWorker('w2')]);
    // 4 run (2 workers × 2), 3 wait; 5 idle; 1 inactive (no schedule).
    const busy: string[] = [];
    for (let i = 0; i < 7; i += 1)
      busy.push(await stack.createSource({ records: 400, batch: 2, delay_ms: 150 }, 'busy'));
    const idle: string[] = [];
    for (let i = 0; i < 5; i += 1) idle.push(await stack.createSource({ records: 4 }, 'idle'));
    const inactive = await stack.createSource({ records: 4 }, 'inactive');
    check(
      (await stack.call('PUT', `/raw-data-sources/${inactive}`, { is_active: false })).status === 200,
      'deactivate',
    );
    const runs = new Map<string, string>();
    for (const id of busy) runs.set(id, await stack.sync(id));
    const deadline = Date.now() + 30_000;
    while (
      (
        await stack
          .knex('sync_runs')
          .whereIn('source_id', busy)
          .where({ status: 'running' })
          .count({ n: '*' })
          .first()
      )?.n !== 4
    ) {
      check(Date.now() < deadline, 'four syncs did not start within 30 s');
      await sleep(100);
    }

    await kill(redis.child!); // SIGKILL, our pid: no chance to save anything
    redis.wipe();
    await redis.start();
    const wipedAt = Date.now();
    const queue = new Queue(QUEUES.sync, {
      connection: { url: redis.url, maxRetriesPerRequest: 1 },
      prefix: stack.prefix,
    });
    atCleanup(() => queue.close());
    const active = [...busy, ...idle];
    let schedulesMs = -1;
    let repairMs = -1;
    for (;;) {
      const elapsed = Date.now() - wipedAt;
      if (schedulesMs < 0) {
        const found = await Promise.all(
          active.map((id) => queue.getJobScheduler(schedulerId(id)).catch(() => undefined)),
        );
        if (found.every(Boolean)) schedulesMs = elapsed;
      }
      if (repairMs < 0) {
        const open = await stack
          .knex('sync_runs')
          .whereIn('id', [...runs.values()])
          .whereIn('status', ['queued', 'running'])
          .count({ n: '*' })
          .first();
        const syncing = await stack
          .knex('raw_data_sources')
          .whereIn('id', busy)
          .where({ sync_status: 'syncing' })
          .count({ n: '*' })
          .first();
        if (Number(open?.n) === 0 && Number(syncing?.n) === 0) repairMs = elapsed;
      }
      if (schedulesMs >= 0 && repairMs >= 0) break;
      check(
        elapsed < BOUND_MS + 30_000,
        `not repaired 45 s after the wipe (schedules ${schedulesMs}, runs ${repairMs})`,
      );
      await sleep(200);
    }
    const closed = await stack
      .knex('sync_runs')
      .whereIn('id', [...runs.values()])
      .select('status', 'error');
    const inactiveScheduled = await queue.getJobScheduler(schedulerId(inactive));
    // Restored schedulers must not all run now (BullMQ runs a new scheduler at once unless told not to).
    await sleep(3000);
    const burst = Number(
      (
        await stack
          .knex('sync_runs')
          .whereIn('source_id', active)
          .where({ trigger: 'schedule' })
          .count({ n: '*' })
          .first()
      )?.n,
    );
    // Faster script for the re-sync (it resumes from the committed offset of 400 records).
    const edited = await stack.call('PUT', `/raw-data-sources/${busy[4]}`, {
      metadata: { records: 400, batch: 50 },
    });
    check(edited.status === 200, `edit: ${edited.status}`);
    const again = await stack.sync(busy[4]!);
    const againDeadline = Date.now() + 60_000;
    let againStatus = '';
    while (!['success', 'failed'].includes(againStatus)) {
      check(Date.now() < againDeadline, 'a repaired source did not sync again within 60 s');
      await sleep(250);
      againStatus = (await stack.knex('sync_runs').where({ id: again }).first())?.status ?? '';
    }
    Object.assign(figures, {
      lost_runs: runs.size,
      runs_closed_failed: closed.filter((r) => r.status === 'failed').length,
      repaired_ms: repairMs,
      schedules_restored_ms: schedulesMs,
      schedules: active.length,
      schedule_runs_in_3s: burst,
      resync: againStatus,
    });
    figures.reason = String(closed[0]?.error ?? '').slice(0, 50);
    check(repairMs <= BOUND_MS, `runs/sources repaired after ${repairMs} ms (> ${BOUND_MS})`);
    check(schedulesMs <= BOUND_MS, `schedules restored after ${schedulesMs} ms (> ${BOUND_MS})`);
    check(
      closed.every((r) => r.status === 'failed' && /lost/.test(String(r.error))),
      `runs: ${JSON.stringify(closed.slice(0, 2))}`,
    );
    check(!inactiveScheduled, 'the inactive source got a schedule');
    check(burst === 0, `${burst} schedule runs fired right after the restore`);
    check(againStatus === 'success', `re-sync ended ${againStatus}`);
  },
};
