import { randomUUID } from 'node:crypto';
import type { RunLifecycle } from './run-lifecycle';

/** What to do with a sync job whose run would not start. */
export type NotStarted =
  /** The job ran its run before and was run again (a dashboard Retry): this new run is queued. */
  | { kind: 'reopened'; runId: string }
  /** Nothing to do, said in the job's result (a duplicate copy, a run taken over or cancelled). */
  | { kind: 'skip'; reason: string }
  /** A retry that cannot run now: the job fails with this message, visible on the dashboard. */
  | { kind: 'refused'; reason: string };

/**
 * Decides about a sync job whose run `start` refused. A job that already closed its own run
 * (failed or succeeded; `job_id` is this job) and is processed again was retried by hand:
 * bull-board's Retry calls job.retry(), which re-queues the same job with the same data. It gets a
 * new manual run (the old one keeps its history), or fails saying why it cannot: never a silent
 * skip that leaves the source failed. Anything else keeps the quiet skip with its reason.
 */
export async function afterRefusedStart(
  lifecycle: RunLifecycle,
  job: { id?: string; data: { sourceId: string } },
  runId: string,
): Promise<NotStarted> {
  const prior = await lifecycle.runs.get(runId);
  if (!prior) return { kind: 'skip', reason: 'run is no longer active (its source was deleted)' };
  const ownRun = prior.job_id === (job.id ?? '');
  if (!ownRun || (prior.status !== 'failed' && prior.status !== 'success')) {
    const why =
      prior.status === 'cancelled'
        ? `it was cancelled${prior.error ? `: ${prior.error}` : ''}`
        : prior.status === 'running'
          ? 'another attempt is running it'
          : `it is ${prior.status}`;
    return { kind: 'skip', reason: `run is no longer active (${why})` };
  }
  const sourceId = job.data.sourceId;
  const opened = await lifecycle.runs.openRetry(randomUUID(), sourceId, job.id ?? runId);
  if (opened.run) {
    await lifecycle.queued([{ runId: opened.run.id, sourceId, trigger: 'manual' }]);
    return { kind: 'reopened', runId: opened.run.id };
  }
  const reason =
    opened.source === 'deleted'
      ? 'the source was deleted'
      : opened.source === 'inactive'
        ? 'the source is inactive; activate it, then retry or sync again'
        : `the source already has run ${opened.busy?.id ?? '?'} ${opened.busy?.status ?? 'active'}; wait for it to finish`;
  return { kind: 'refused', reason: `retry refused: ${reason} (run ${runId} stays ${prior.status})` };
}
