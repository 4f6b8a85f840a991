import type { EventBus } from '../events/event-bus';
import type { SyncTrigger } from '../queue/queue-names';
import type { RunCounts, SyncRun, SyncRunRepository } from './sync-run.repository';

/** A run just opened, as the event of its queueing describes it. */
export interface QueuedRun {
  runId: string;
  sourceId: string;
  trigger: SyncTrigger;
  batchId?: string;
}

/** What a schema drift reports (runs/schema-drift.ts). */
export type Drift = Record<string, unknown>;

/**
 * The run state machine's transitions, each in one place: the statement that moves the run (and
 * its source) and the event that tells about it. Every caller — the API's sync service, the
 * processors, the worker's failure hook, the reconciler — goes through here, so an event type is
 * published from exactly one method and never without its row having changed.
 *
 *   queued ──start──▶ running ──succeed──▶ success    (sync.partial too when records were quarantined)
 *     │                 │  └──fail──────▶ failed     (also: lost job, repaired by the reconciler)
 *     │                 └──retrying──▶ running       (error noted, the job retries)
 *     ├──cancelUnqueued──▶ cancelled                 (never reached a worker)
 *     └──cancel (from queued or running) ──▶ cancelled (asked for: runs/run-cancel.ts)
 *
 * docs/ARCHITECTURE.md draws the same machine with the events of each arrow.
 */
export class RunLifecycle {
  constructor(
    readonly runs: SyncRunRepository,
    private readonly events: EventBus,
    /** After `sync.failed`: the source's failure policy (runs/auto-deactivation). */
    private readonly afterFailure?: (sourceId: string, runId: string, error: string) => Promise<unknown>,
  ) {}

  /** `sync.queued` for runs whose jobs now exist: one event, or one round trip for a sync-all page. */
  async queued(opened: QueuedRun[]): Promise<void> {
    const input = (r: QueuedRun) => ({
      source_id: r.sourceId,
      run_id: r.runId,
      data: { trigger: r.trigger, ...(r.batchId ? { batch_id: r.batchId } : {}) },
    });
    await this.events.publishMany(opened.map((r) => ['sync.queued', input(r)]));
  }

  /** queued|running → running (the source → syncing) and `sync.started`; undefined when the run is no longer this attempt's to run. */
  async start(runId: string, attempt: number): Promise<SyncRun | undefined> {
    const run = await this.runs.start(runId, attempt);
    if (run)
      await this.events.publish('sync.started', {
        source_id: run.source_id,
        run_id: runId,
        data: { attempt, trigger: run.trigger },
      });
    return run;
  }

  /**
   * running → success with `schema.drift_detected` (when the shape moved), `sync.partial` (when
   * some records were quarantined: `warning` says which, and is kept as the source's
   * last_warning) and `sync.succeeded`.
   */
  async succeed(
    runId: string,
    attempt: number,
    drift?: Drift,
    warning?: string,
  ): Promise<SyncRun | undefined> {
    const done = await this.runs.succeed(runId, undefined, attempt, warning);
    if (!done) return undefined;
    if (drift)
      await this.events.publish('schema.drift_detected', {
        source_id: done.source_id,
        run_id: runId,
        data: { ...drift },
      });
    if (done.invalid > 0)
      await this.events.publish('sync.partial', {
        source_id: done.source_id,
        run_id: runId,
        data: { records: done.records, invalid: done.invalid, ...(warning ? { warning } : {}), attempt },
      });
    await this.events.publish('sync.succeeded', {
      source_id: done.source_id,
      run_id: runId,
      data: { records: done.records, bytes: done.bytes, invalid: done.invalid, attempt },
    });
    return done;
  }

  /**
   * Active → failed (the source → failed) and `sync.failed`. With `attempt`, only while that
   * attempt holds the run; `repaired` (the reconciler's reason and the job's state) also publishes
   * `sync.repaired` first. Undefined when the run was already closed or taken over.
   */
  async fail(
    runId: string,
    error: string,
    options: { attempt?: number; counts?: RunCounts; repaired?: Record<string, unknown> } = {},
  ): Promise<SyncRun | undefined> {
    const closed = await this.runs.fail(runId, error, options.counts, options.attempt);
    if (!closed) return undefined;
    if (options.repaired) await this.repaired(closed.source_id, runId, options.repaired);
    await this.events.publish('sync.failed', {
      source_id: closed.source_id,
      run_id: runId,
      data: { error, ...(options.attempt !== undefined ? { attempt: options.attempt } : {}) },
    });
    await this.afterFailure?.(closed.source_id, runId, error);
    return closed;
  }

  /** A failed attempt BullMQ will retry: the run stays running with the error noted; `sync.retrying`. */
  async retrying(run: { runId: string; sourceId: string }, error: string, attempt: number): Promise<void> {
    await this.runs.noteRetry(run.runId, error, attempt);
    await this.events.publish('sync.retrying', {
      source_id: run.sourceId,
      run_id: run.runId,
      data: { error, attempt },
    });
  }

  /** A run that never reached a worker (its enqueue failed or was deduplicated): closed quietly, the source untouched. */
  async cancelUnqueued(runId: string, reason: string): Promise<void> {
    await this.runs.cancel(runId, reason);
  }

  /**
   * queued|running → cancelled, the source back to its status before the run, and
   * `sync.cancelled` (reason, the source's status now). Undefined when the run was no longer
   * active, so a second cancel publishes nothing. Stopping the job is runs/run-cancel.ts's part.
   */
  async cancel(runId: string, reason: string): Promise<SyncRun | undefined> {
    const done = await this.runs.cancelActive(runId, reason);
    if (!done) return undefined;
    await this.events.publish('sync.cancelled', {
      source_id: done.run.source_id,
      run_id: runId,
      data: { reason, source_status: done.sourceStatus },
    });
    return done.run;
  }

  /** Sources left `syncing` with no active run go to failed, each with `sync.repaired`; returns their ids. */
  async repairOrphanedSources(): Promise<string[]> {
    const ids = await this.runs.repairOrphanedSyncing();
    for (const id of ids) await this.repaired(id, null, { reason: 'source was syncing with no active run' });
    return ids;
  }

  /** `sync.repaired`: the reconciler closed a lost run or freed a source stuck `syncing`. */
  private async repaired(
    sourceId: string,
    runId: string | null,
    data: Record<string, unknown>,
  ): Promise<void> {
    await this.events.publish('sync.repaired', { source_id: sourceId, run_id: runId, data });
  }
}
