import { sleep } from '../process/process-kit';
import { check, checkLanded, openRuns, Stack, untilSettled, type ChaosCase } from './chaos-kit';

/**
 * A poison source: its connector makes the worker process exit mid-sync, every time. A supervisor
 * (this case, as systemd or Kubernetes would) restarts dead workers. BullMQ fails the job once it
 * stalled more than maxStalledCount (1) times; the worker's failed handler closes the run, so the
 * source ends `failed` with the stall reason. Meanwhile healthy sources are synced again and again
 * and must keep succeeding.
 */
const LOCK_MS = 3000;
const STALLED_MS = 2000;
const HEALTHY = 6;
const HEALTHY_SCRIPT = { records: 6, batch: 2, delay_ms: 50 };
const POISON_SCRIPT = { records: 40, batch: 2, delay_ms: 100, crash: 'exit' };
const MAX_RESTARTS = 6;

export const chaosCase: ChaosCase = {
  id: '2-poison-source',
  title: 'poison source that makes its worker process exit on every attempt',
  criterion:
    'poison ends failed with the stall reason; ≥ 10 healthy runs succeed while it is unresolved; every healthy source ends success',
  timeoutMs: 150_000,
  async run(figures) {
    const stack = new Stack({
      env: {
        WORKER_LOCK_DURATION_MS: String(LOCK_MS),
        WORKER_STALLED_INTERVAL_MS: String(STALLED_MS),
        WORKER_CONCURRENCY: '4',
        // A worker the poison kills while it closes another job's run leaves that run for the
        // reconciler (grace = lock duration): a short interval keeps the case short.
        RECONCILE_INTERVAL_MS: '2000',
      },
    });
    await stack.prepare();
    await Promise.all([stack.startApi(), stack.startWorker('w1'), stack.startWorker('w2')]);
    const healthy: string[] = [];
    for (let i = 0; i < HEALTHY; i += 1) healthy.push(await stack.createSource(HEALTHY_SCRIPT, 'healthy'));
    const poison = await stack.createSource(POISON_SCRIPT, 'poison');
    const poisonQueuedAt = new Date();
    const poisonRun = await stack.sync(poison);

    let restarts = 0;
    let spawned = 2;
    let feeding = true;
    const starting: Promise<unknown>[] = [];
    // The supervisor: a worker that died is replaced (bounded), so two are (nearly) always there.
    const supervise = async () => {
      while (feeding) {
        const live = stack.liveWorkers().length + starting.length;
        if (live < 2 && restarts < MAX_RESTARTS) {
          restarts += 1;
          const p = stack.startWorker(`w${++spawned}`).finally(() => starting.splice(starting.indexOf(p), 1));
          starting.push(p);
        }
        await sleep(200);
      }
    };
    // Healthy traffic: every idle healthy source is synced again.
    const feed = async () => {
      while (feeding) {
        await Promise.all(healthy.map((id) => stack.call('POST', `/raw-data-sources/${id}/sync`)));
        await sleep(500);
      }
    };
    const loops = [supervise(), feed()];
    let poisonDone: { status: string; error: string | null; finished_at: Date } | undefined;
    try {
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline) {
        const run = await stack.knex('sync_runs').where({ id: poisonRun }).first();
        if (run && !['queued', 'running'].includes(run.status)) {
          poisonDone = run;
          break;
        }
        await sleep(250);
      }
    } finally {
      feeding = false;
      await Promise.all(loops);
      await Promise.allSettled(starting);
    }
    check(poisonDone, 'the poison run was not closed within 90 s');
    const crashes = stack.workers.filter((w) => !w.running() && w.proc.exitCode === 70).length;
    const poisonSource = await stack.knex('raw_data_sources').where({ id: poison }).first();
    const during = await stack
      .knex('sync_runs')
      .whereIn('source_id', healthy)
      .where('finished_at', '>', poisonQueuedAt)
      .where('finished_at', '<=', poisonDone.finished_at)
      .select('status');
    const okDuring = during.filter((r) => r.status === 'success').length;
    // Healthy runs that were on a worker the poison took down are retried elsewhere (or fail as stalled).
    await Promise.all(healthy.map((id) => stack.call('POST', `/raw-data-sources/${id}/sync`)));
    await untilNoOpenRuns(stack, healthy);
    const { states } = await untilSettled(stack.knex, healthy, 30_000);
    const landed = await checkLanded(stack.knex, new Map(healthy.map((id) => [id, HEALTHY_SCRIPT.records])));
    Object.assign(figures, {
      worker_crashes: crashes,
      restarts,
      poison_failed_after_ms: poisonDone.finished_at.getTime() - poisonQueuedAt.getTime(),
      poison_status: poisonSource.sync_status,
      healthy_ok_during: okDuring,
      healthy_failed_during: during.filter((r) => r.status === 'failed').length,
      healthy_final_success: states.filter((s) => s.sync_status === 'success').length,
      healthy_records: landed.records,
    });
    figures.poison_reason = String(poisonSource.error_message).slice(0, 60);
    check(crashes >= 2, `the poison crashed ${crashes} worker processes (expected ≥ 2: one per attempt)`);
    check(poisonSource.sync_status === 'failed', `poison source ended ${poisonSource.sync_status}`);
    check(/stall/i.test(String(poisonSource.error_message)), `poison error: ${poisonSource.error_message}`);
    check(okDuring >= 10, `only ${okDuring} healthy runs succeeded while the poison was unresolved`);
    check(
      states.every((s) => s.sync_status === 'success'),
      `healthy sources not all success: ${JSON.stringify(states.filter((s) => s.sync_status !== 'success'))}`,
    );
  },
};

async function untilNoOpenRuns(stack: Stack, ids: string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await openRuns(stack.knex, ids)) > 0) {
    if (Date.now() > deadline) {
      const open = await stack
        .knex('sync_runs')
        .whereIn('source_id', ids)
        .whereIn('status', ['queued', 'running'])
        .select('id', 'status', 'attempt', 'trigger', 'error', 'queued_at');
      const jobs = await Promise.all(open.map((r) => stack.call('GET', `/jobs/${r.id}`)));
      check(
        false,
        `healthy runs still open 30 s after the poison ended: ${JSON.stringify(open.map((r, i) => ({ ...r, job: jobs[i]?.body?.state ?? jobs[i]?.status })))}`,
      );
    }
    await sleep(250);
  }
}
