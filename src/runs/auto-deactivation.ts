import type { EventBus } from '../events/event-bus';
import type { Logger } from '../logger';
import type { SourceSchedule } from '../sources/source-lifecycle';
import type { SourceStore } from '../sources/source-store';

/**
 * Deactivates a source whose last N finished runs all failed (N: its deactivate_after_failures,
 * else SYNC_DEACTIVATE_AFTER_FAILURES; 0 never): is_active=false in one statement that only an
 * active source passes, so `source.deactivated` is published once however the failures arrive,
 * then its schedule is removed (best-effort: the worker's schedule reconcile removes it otherwise).
 * Runs that were cancelled count neither way.
 */
export class AutoDeactivation {
  constructor(
    private readonly deps: {
      sources: Pick<SourceStore, 'deactivateAfterFailures'>;
      events: EventBus;
      schedules: Pick<SourceSchedule, 'remove'>;
      logger: Logger;
      /** The global default N (SYNC_DEACTIVATE_AFTER_FAILURES). */
      defaultFailures: number;
    },
  ) {}

  /** After a run of `sourceId` failed (runs/run-lifecycle): deactivates it when the streak is long enough. */
  async afterFailure(sourceId: string, runId: string, error: string): Promise<boolean> {
    const { deps } = this;
    // The failure itself is recorded already: a problem here must not undo its caller's work.
    const done = await deps.sources
      .deactivateAfterFailures(sourceId, deps.defaultFailures)
      .catch((err: Error) => deps.logger.warn({ sourceId, err: err.message }, 'failure policy not applied'));
    if (!done) return false;
    const reason = `${done.failures} consecutive runs failed (deactivate_after_failures)`;
    await deps.schedules
      .remove(sourceId)
      .catch((err: Error) =>
        deps.logger.warn({ sourceId, err: err.message }, 'schedule removal deferred to the next reconcile'),
      );
    await deps.events.publish('source.deactivated', {
      source_id: sourceId,
      run_id: runId,
      data: { reason, failures: done.failures, last_error: error },
    });
    deps.logger.warn({ sourceId, failures: done.failures }, 'source deactivated after consecutive failures');
    return true;
  }
}
