import type { EventBus } from '../events/event-bus';
import type { ResourceHooks } from '../http/crud/resource';
import type { RawDataSource } from '../generated';
import type { Logger } from '../logger';
import type { Queues } from '../queue/queue-factory';
import { purgeDedupId, syncDedupId, type PurgeJobData } from '../queue/queue-names';
import { SCHEDULE_FIELDS } from './source-schedule';
import type { SchedulableSource } from './source-store';

const SCHEDULE_TIMEOUT_MS = 2000;

/**
 * What keeps a source's schedule in step with it. The run side implements it
 * (runs/schedule.service); the composition root hands it in, so sources/ never imports runs/.
 */
export interface SourceSchedule {
  apply(source: SchedulableSource): Promise<void>;
  remove(sourceId: string): Promise<void>;
}

/**
 * What stops a source's queued or running sync when the source is deactivated or deleted
 * (runs/run-cancel.ts implements it; handed in by the composition root like SourceSchedule).
 */
export interface SourceRuns {
  cancelActive(sourceId: string, reason: string): Promise<unknown>;
}

/**
 * Follows source changes with their side effects: an event for each, and the source's schedule
 * kept in step. Redis trouble must not fail the write that already committed, so these are
 * best-effort with a bound; the worker's reconcile repairs any schedule they could not set.
 */
export function sourceLifecycle(deps: {
  events: EventBus;
  schedules: SourceSchedule;
  queues: Queues;
  logger: Logger;
  redisReady(): boolean;
  /** Deactivation cancels the source's active run (absent: the run goes on, as before). */
  runs?: SourceRuns;
}): Pick<ResourceHooks<RawDataSource>, 'afterCreate' | 'afterUpdate' | 'afterDelete'> {
  const bounded = async (what: string, sourceId: string, work: () => Promise<unknown>) => {
    let timer: NodeJS.Timeout | undefined;
    if (!deps.redisReady()) {
      // Known down: do not make the write wait for a timeout; the next reconcile repairs it.
      deps.logger.warn({ sourceId }, `${what} deferred to the next reconcile (Redis unavailable)`);
      return;
    }
    try {
      await Promise.race([
        work(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out')), SCHEDULE_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      deps.logger.warn({ sourceId, err: (err as Error).message }, `${what} deferred to the next reconcile`);
    } finally {
      clearTimeout(timer);
    }
  };
  const summary = (s: RawDataSource) => ({
    name: s.name,
    source_type: s.source_type,
    is_active: s.is_active,
  });

  return {
    async afterCreate(source) {
      // Event and schedule side by side under one bound: a frozen Redis (connected but silent) would
      // otherwise hold the response of a write that already committed for as long as it stays frozen.
      await bounded('source.created event / schedule create', source.id, () =>
        Promise.all([
          deps.events.publish('source.created', { source_id: source.id, data: summary(source) }),
          deps.schedules.apply(source),
        ]),
      );
    },
    async afterUpdate(source, before) {
      // Names of changed fields only: a changed connection string is reported, never shown.
      const changed = (Object.keys(source) as (keyof RawDataSource)[]).filter(
        (k) => k !== 'updated_at' && JSON.stringify(source[k]) !== JSON.stringify(before[k]),
      );
      // The retry policy and the name are part of the scheduler's job template (a rename re-applies;
      // an upsert that keeps the timing keeps the pending tick where it was).
      const retimed = (
        ['is_active', ...SCHEDULE_FIELDS, 'retry_attempts', 'retry_backoff_seconds', 'name'] as const
      ).some((f) => source[f] !== before[f]);
      // Deactivated: its queued or running sync ends now (cancelled), not at its next retry.
      if (before.is_active && !source.is_active)
        await deps.runs
          ?.cancelActive(source.id, 'source was deactivated')
          .catch((err) =>
            deps.logger.warn(
              { sourceId: source.id, err: (err as Error).message },
              'cancelling the run failed',
            ),
          );
      await bounded('source.updated event / schedule update', source.id, () =>
        Promise.all([
          deps.events.publish('source.updated', {
            source_id: source.id,
            data: { ...summary(source), changed },
          }),
          retimed ? deps.schedules.apply(source) : undefined,
        ]),
      );
    },
    async afterDelete(source) {
      await bounded('source.deleted event / schedule removal / purge job', source.id, () =>
        Promise.all([
          deps.events.publish('source.deleted', { source_id: source.id, data: { name: source.name } }),
          (async () => {
            await deps.schedules.remove(source.id);
            // A queued job of the deleted source goes too; an active one finds its run gone and stops.
            const queue = deps.queues.syncFor(source.id);
            const jobId = await queue.getDeduplicationJobId(syncDedupId(source.id));
            if (jobId) await queue.remove(jobId).catch(() => 0);
          })(),
          // Its records no longer cascade: the worker removes them in batches (source_purges holds the
          // request, so the repair re-queues this job if it is lost here).
          deps.queues.purge.add('purge', { sourceId: source.id } satisfies PurgeJobData, {
            deduplication: { id: purgeDedupId(source.id) },
          }),
        ]),
      );
    },
  };
}
