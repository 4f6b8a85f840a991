import { kill, sleep, type Child } from '../process/process-kit';
import { check, checkLanded, median, openRuns, Stack, untilSettled, type ChaosCase } from './chaos-kit';

/**
 * Two scripted workers (lock 3 s, stall check every 2 s), 20 slow syncs; five times a worker that
 * holds running syncs is SIGKILLed and a replacement started. Every run a dead worker held must be
 * picked up again (or closed) within BOUND_MS (below); every
 * source ends success|failed; no run lands a record twice and every successful run holds exactly
 * its 60 records.
 */
const LOCK_MS = 3000;
const STALLED_MS = 2000;
/**
 * BullMQ's stall check is two-phase (one pass marks active jobs, the next moves those whose lock is
 * gone), so a dead worker's job waits up to lock + 2 × stalled interval before it is back in the
 * queue; then a worker takes it and writes its start. Slack: a loaded 2-core machine.
 */
const SLACK_MS = 3000;
const BOUND_MS = LOCK_MS + 2 * STALLED_MS + SLACK_MS;
const SOURCES = 20;
const KILLS = 5;
const SCRIPT = { records: 60, batch: 2, delay_ms: 150 };

const started = (w: Child, runId: string) =>
  w.logs.some((l) => l.msg === 'sync started' && l.runId === runId);

export const chaosCase: ChaosCase = {
  id: '1-worker-sigkill',
  title: `SIGKILL a worker mid-sync, ${KILLS} times, ${SOURCES} sources, 2 workers`,
  criterion: `every source success|failed; each orphaned run restarted or closed ≤ lock ${LOCK_MS / 1000} s + 2 × stalled ${STALLED_MS / 1000} s + ${SLACK_MS / 1000} s slack; no record lost or duplicated`,
  timeoutMs: 180_000,
  async run(figures) {
    const stack = new Stack({
      env: {
        WORKER_LOCK_DURATION_MS: String(LOCK_MS),
        WORKER_STALLED_INTERVAL_MS: String(STALLED_MS),
        WORKER_CONCURRENCY: '4',
      },
    });
    await stack.prepare();
    await Promise.all([stack.startApi(), stack.startWorker('w1'), stack.startWorker('w2')]);
    const ids: string[] = [];
    for (let i = 0; i < SOURCES; i += 1) ids.push(await stack.createSource(SCRIPT, 'kill'));
    const runOf = new Map<string, string>();
    for (const id of ids) runOf.set(id, await stack.sync(id));
    const runIds = [...runOf.values()];

    const pickups: number[] = [];
    let spawned = 2;
    const replacements: Promise<Child>[] = [];
    for (let k = 0; k < KILLS; k += 1) {
      // A victim holding at least one unfinished run; wait until there is one (bounded).
      let victim: Child | undefined;
      let held: string[] = [];
      const deadline = Date.now() + 30_000;
      while (!victim && Date.now() < deadline) {
        const states = new Map(
          (await stack.knex('sync_runs').select('id', 'status').whereIn('id', runIds)).map((r) => [
            r.id as string,
            r.status as string,
          ]),
        );
        const live = stack.liveWorkers();
        if (live.length >= 2)
          for (const w of live) {
            const mine = runIds.filter((r) => states.get(r) === 'running' && started(w, r));
            if (mine.length) {
              victim = w;
              held = mine;
              break;
            }
          }
        if (!victim) {
          // Nothing running any more: new sources to kill into (a re-sync would land nothing new).
          if ([...states.values()].every((s) => s !== 'running' && s !== 'queued'))
            for (let i = 0; i < 4; i += 1) {
              const id = await stack.createSource(SCRIPT, 'kill');
              ids.push(id);
              runIds.push(await stack.sync(id));
            }
          await sleep(200);
        }
      }
      check(victim, `kill ${k + 1}: no worker held a running sync within 30 s`);
      const killedAt = Date.now();
      await kill(victim);
      const survivor = stack.liveWorkers();
      // Keep two workers: a replacement starts (it takes seconds); the survivor must recover alone.
      replacements.push(stack.startWorker(`w${++spawned}`));
      for (const runId of held) {
        const t = await recovered(stack, survivor, runId, killedAt, BOUND_MS + 15_000);
        if (t >= 0) pickups.push(t); // < 0: it finished just before the kill, nothing was orphaned
      }
      await Promise.all(replacements.splice(0));
    }

    const { ms } = await untilSettled(stack.knex, ids, 90_000);
    const states = await stack.knex('raw_data_sources').select('sync_status').whereIn('id', ids);
    const landed = await checkLanded(stack.knex, new Map(ids.map((id) => [id, SCRIPT.records])));
    const open = await openRuns(stack.knex, ids);
    Object.assign(figures, {
      kills: KILLS,
      orphaned_runs: pickups.length,
      pickup_median_ms: median(pickups),
      pickup_max_ms: Math.max(...pickups),
      settled_after_last_kill_ms: ms,
      success: states.filter((s) => s.sync_status === 'success').length,
      failed: states.filter((s) => s.sync_status === 'failed').length,
      runs: landed.runs,
      records_landed: landed.records,
      open_runs: open,
    });
    check(pickups.length >= KILLS, `only ${pickups.length} orphaned runs observed`);
    check(
      Math.max(...pickups) <= BOUND_MS,
      `an orphaned run waited ${Math.max(...pickups)} ms (> ${BOUND_MS} ms)`,
    );
    check(open === 0, `${open} runs still queued/running`);
  },
};

/** When `runId` started again on another worker, or its run was closed, relative to the kill. */
async function recovered(
  stack: Stack,
  others: Child[],
  runId: string,
  killedAt: number,
  boundMs: number,
): Promise<number> {
  const deadline = killedAt + boundMs;
  for (;;) {
    for (const w of [...others, ...stack.workers]) {
      const line = w.logs.find(
        (l) => l.msg === 'sync started' && l.runId === runId && Date.parse(String(l.time)) > killedAt,
      );
      if (line) return Date.parse(String(line.time)) - killedAt;
    }
    const run = await stack.knex('sync_runs').select('status', 'finished_at').where({ id: runId }).first();
    if (run && !['queued', 'running'].includes(run.status))
      return new Date(run.finished_at).getTime() - killedAt;
    check(
      Date.now() < deadline,
      `run ${runId} held by a killed worker neither restarted nor closed within ${boundMs} ms`,
    );
    await sleep(100);
  }
}
