import type { Logger } from '../logger';
import type { Queues } from '../queue/queue-factory';
import type { RunLifecycle } from './run-lifecycle';
import type { SyncRun } from './sync-run.repository';
import { TaskWindow } from './task-window';

const BATCH = 500;
/** Job lookups in flight at once: a page is judged in a few dozen round trips, not a thousand. */
const LOOKUPS_IN_FLIGHT = 32;
/** One repair pass stops paging after this long; the next pass (the next interval) goes on. */
const PASS_BUDGET_MS = 20_000;

/**
 * Repairs what a lost job leaves behind: runs still queued or running whose job is gone from
 * Redis (data wiped, never enqueued) or already finished, and sources left `syncing` with no
 * active run. Only runs older than `graceMs` are judged, so an enqueue in flight is not a loss.
 * A pass pages through the candidates (for up to PASS_BUDGET_MS), judging a few dozen at once:
 * lost runs are not stuck behind a page of runs legitimately waiting in a long queue, and after a
 * Redis wipe under a large sync-all, thousands close per pass instead of 500 a minute.
 */
export class RunReconciler {
  constructor(
    private readonly deps: {
      lifecycle: RunLifecycle;
      queues: Queues;
      logger: Logger;
      graceMs: number;
    },
  ) {}

  async repair(): Promise<{ runs: number; sources: number }> {
    const { logger } = this.deps;
    const { runs } = this.deps.lifecycle;
    const before = new Date(Date.now() - this.deps.graceMs);
    const deadline = Date.now() + PASS_BUDGET_MS;
    let repaired = 0;
    let afterId: string | undefined;
    for (;;) {
      const candidates = await runs.activeBefore(before, BATCH, afterId);
      const window = new TaskWindow(LOOKUPS_IN_FLIGHT);
      for (const run of candidates)
        await window.run(async () => {
          if (await this.repairRun(run)) repaired += 1;
        });
      await window.drain();
      if (candidates.length < BATCH || Date.now() > deadline) break;
      afterId = candidates[candidates.length - 1]!.id;
    }
    const sources = await this.deps.lifecycle.repairOrphanedSources();
    if (repaired || sources.length)
      logger.warn({ runs: repaired, sources: sources.length }, 'reconciler repaired syncs');
    return { runs: repaired, sources: sources.length };
  }

  /** Closes `run` if its job is gone or finished without closing it; true when it did. */
  private async repairRun(run: SyncRun): Promise<boolean> {
    const { queues } = this.deps;
    const job = run.job_id ? (await queues.findSyncJob(run.job_id, run.source_id))?.job : undefined;
    const state = job ? await job.getState() : 'missing';
    if (!['missing', 'unknown', 'completed', 'failed'].includes(state)) return false;
    const reason =
      state === 'failed' && job?.failedReason
        ? job.failedReason
        : state === 'completed'
          ? 'the job finished without closing its run'
          : 'the sync job was lost (queue data missing); it will run again at its next schedule';
    const closed = await this.deps.lifecycle.fail(run.id, reason, { repaired: { reason, job_state: state } });
    return closed !== undefined;
  }
}
