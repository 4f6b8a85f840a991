import type { EventBus } from '../events/event-bus';
import type { Logger } from '../logger';
import type { Queues } from '../queue/queue-factory';
import type { SyncRunRepository } from './sync-run.repository';

const BATCH = 500;

/**
 * Repairs what a lost job leaves behind: runs still queued or running whose job is gone from
 * Redis (data wiped, never enqueued) or already finished, and sources left `syncing` with no
 * active run. Only runs older than `graceMs` are judged, so an enqueue in flight is not a loss.
 */
export class RunReconciler {
  constructor(
    private readonly deps: {
      runs: SyncRunRepository;
      queues: Queues;
      events: EventBus;
      logger: Logger;
      graceMs: number;
    },
  ) {}

  async repair(): Promise<{ runs: number; sources: number }> {
    const { runs, queues, events, logger } = this.deps;
    const candidates = await runs.activeBefore(new Date(Date.now() - this.deps.graceMs), BATCH);
    let repaired = 0;
    for (const run of candidates) {
      const job = run.job_id ? await queues.sync.getJob(run.job_id) : undefined;
      const state = job ? await job.getState() : 'missing';
      if (!['missing', 'unknown', 'completed', 'failed'].includes(state)) continue;
      const reason =
        state === 'failed' && job?.failedReason
          ? job.failedReason
          : state === 'completed'
            ? 'the job finished without closing its run'
            : 'the sync job was lost (queue data missing); it will run again at its next schedule';
      const closed = await runs.fail(run.id, reason);
      if (!closed) continue;
      repaired += 1;
      await events.publish('sync.repaired', {
        source_id: run.source_id,
        run_id: run.id,
        data: { reason, job_state: state },
      });
      await events.publish('sync.failed', {
        source_id: run.source_id,
        run_id: run.id,
        data: { error: reason },
      });
    }
    const sources = await runs.repairOrphanedSyncing();
    for (const id of sources)
      await events.publish('sync.repaired', {
        source_id: id,
        data: { reason: 'source was syncing with no active run' },
      });
    if (repaired || sources.length)
      logger.warn({ runs: repaired, sources: sources.length }, 'reconciler repaired syncs');
    return { runs: repaired, sources: sources.length };
  }
}
