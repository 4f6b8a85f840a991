import { QueueEvents } from 'bullmq';
import { QUEUES } from '../../src/queue/queue-names';
import { exitWithin, sleep, type Child } from '../process/process-kit';
import { atCleanup, check, checkLanded, openRuns, Stack, untilSettled, type ChaosCase } from './chaos-kit';

/**
 * A rolling deploy while syncs run: two workers (shutdown grace 2 s) are replaced one by one: a new
 * worker starts, then the old one gets SIGTERM. Syncs last ~6 s, so some finish within the grace
 * and some are handed back to the queue. Every old worker must exit 0 within grace + hand-back
 * time; BullMQ must report zero stalled jobs (QueueEvents 'stalled', watched throughout); every
 * source ends success with every record exactly once.
 */
const GRACE_MS = 2000;
const HAND_BACK_MS = 5000; // src/main.ts
const SCRIPT = { records: 60, batch: 2, delay_ms: 200 };
const SOURCES = 24;
const MAX_SOURCES = 80;

export const chaosCase: ChaosCase = {
  id: '7-rolling-deploy',
  title: `SIGTERM during a deploy: 2 workers replaced one by one while syncs run and more are queued`,
  criterion: `each old worker exits 0 within grace ${GRACE_MS / 1000} s + hand-back ${HAND_BACK_MS / 1000} s; active jobs finish or are handed back; 0 stalled; every source success, nothing lost or duplicated`,
  timeoutMs: 200_000,
  async run(figures) {
    const stack = new Stack({
      env: {
        WORKER_CONCURRENCY: '4',
        SHUTDOWN_GRACE_MS: String(GRACE_MS),
        WORKER_LOCK_DURATION_MS: '3000',
        WORKER_STALLED_INTERVAL_MS: '2000',
      },
    });
    await stack.prepare();
    const events = new QueueEvents(QUEUES.sync, {
      connection: { url: stack.redisUrl },
      prefix: stack.prefix,
    });
    atCleanup(() => events.close());
    const stalled: string[] = [];
    events.on('stalled', ({ jobId }) => stalled.push(jobId));
    await events.waitUntilReady();
    await Promise.all([stack.startApi(), stack.startWorker('old-1'), stack.startWorker('old-2')]);
    const ids: string[] = [];
    for (let i = 0; i < SOURCES; i += 1) ids.push(await stack.createSource(SCRIPT, 'deploy'));
    for (const id of ids) await stack.sync(id);
    // Traffic goes on during the deploy: while fewer than 6 syncs wait, one more source is synced.
    let feeding = true;
    const feeder = (async () => {
      while (feeding && ids.length < MAX_SOURCES) {
        const waiting = await stack.knex('sync_runs').where({ status: 'queued' }).count({ n: '*' }).first();
        if (Number(waiting?.n) < 6) {
          const id = await stack.createSource(SCRIPT, 'deploy');
          ids.push(id);
          await stack.sync(id);
        }
        await sleep(300);
      }
    })();

    const exits: { name: string; code: number | null; ms: number; handedBack: number }[] = [];
    let gen = 0;
    const heldAtSigterm: number[] = [];
    for (const old of [...stack.workers]) {
      // The new generation first, then the old one goes, while it holds work (bounded wait).
      await stack.startWorker(`new-${++gen}`);
      const deadline = Date.now() + 30_000;
      let held = 0;
      while (!(held = await holdsRunning(stack, old))) {
        check(Date.now() < deadline, `${old.name} held no running sync within 30 s`);
        await sleep(100);
      }
      heldAtSigterm.push(held);
      const startedAt = Date.now();
      const before = old.logs.length;
      old.proc.kill('SIGTERM');
      const exit = await exitWithin(old, GRACE_MS + HAND_BACK_MS + 5000);
      check(exit, `${old.name} still running ${GRACE_MS + HAND_BACK_MS + 5000} ms after SIGTERM`);
      const after = old.logs.slice(before);
      if (process.env.CHAOS_DEBUG)
        console.log(
          old.name,
          JSON.stringify(after.map((l) => [l.time, l.msg, l.runId])),
          old.stderr().slice(-500),
        );
      exits.push({
        name: old.name,
        code: exit.code,
        ms: Date.now() - startedAt,
        handedBack: after.filter((l) => l.msg === 'job handed back at shutdown').length,
      });
    }
    feeding = false;
    await feeder;
    const { ms } = await untilSettled(stack.knex, ids, 120_000);
    const openDeadline = Date.now() + 60_000;
    while ((await openRuns(stack.knex, ids)) > 0) {
      check(Date.now() < openDeadline, 'runs still open 60 s after the deploy');
      await sleep(250);
    }
    await sleep(STALL_WATCH_MS); // one more stall check cycle after the last job: late stalls show up
    const states = await stack.knex('raw_data_sources').select('sync_status').whereIn('id', ids);
    const landed = await checkLanded(stack.knex, new Map(ids.map((id) => [id, SCRIPT.records])));
    Object.assign(figures, {
      held_at_sigterm: heldAtSigterm.join('/'),
      exit_codes: exits.map((e) => e.code).join('/'),
      exit_ms: exits.map((e) => e.ms).join('/'),
      handed_back: exits.map((e) => e.handedBack).join('/'),
      finished_in_grace: exits.map((e, i) => heldAtSigterm[i]! - e.handedBack).join('/'),
      stalled: stalled.length,
      settled_after_deploy_ms: ms,
      sources: ids.length,
      success: states.filter((s) => s.sync_status === 'success').length,
      records_landed: landed.records,
    });
    check(
      exits.every((e) => e.code === 0),
      `exit codes ${figures.exit_codes}`,
    );
    check(
      exits.every((e) => e.ms <= GRACE_MS + HAND_BACK_MS),
      `exit times ${figures.exit_ms} ms (bound ${GRACE_MS + HAND_BACK_MS})`,
    );
    check(stalled.length === 0, `stalled jobs: ${stalled.join(', ')}`);
    check(
      states.every((s) => s.sync_status === 'success'),
      `not all success`,
    );
    check(
      landed.records === ids.length * SCRIPT.records,
      `landed ${landed.records} of ${ids.length * SCRIPT.records}`,
    );
  },
};

const STALL_WATCH_MS = 4000;

/** How many runs still running in Postgres this worker started (their current attempt). */
async function holdsRunning(stack: Stack, w: Child): Promise<number> {
  const running: { id: string; attempt: number }[] = await stack
    .knex('sync_runs')
    .select('id', 'attempt')
    .where({ status: 'running' });
  return running.filter((r) =>
    w.logs.some(
      (l) => l.msg === 'sync started' && l.runId === r.id && Number(l.attempt) === Number(r.attempt),
    ),
  ).length;
}
