import { randomUUID } from 'node:crypto';
import { UnrecoverableError, type Job } from 'bullmq';
import type { ConnectorRegistry } from '../src/connectors/connector-registry';
import { PermanentSyncError } from '../src/connectors/connector';
import type { Logger } from '../src/logger';
import type { SyncJobResult } from '../src/runs/sync.contracts';
import type { Outbound } from '../src/connectors/outbound';
import type { SyncJobData } from '../src/queue/queue-names';
import type { JobScope } from './job-scope';
import { RunTakenOverError, type Landing } from '../src/runs/landing';
import { recordCheck } from '../src/runs/record-check';
import { judgeRun } from '../src/runs/run-outcome';
import { diffSchema, ShapeSampler } from '../src/runs/schema-drift';
import { scrubSecret } from '../src/connectors/kit/secret-scrubber';
import { readAhead } from '../src/runs/read-ahead';
import type { SourceStore } from '../src/sources/source-store';
import type { RunLifecycle } from '../src/runs/run-lifecycle';

/** The job's result, as GET /jobs/{id} publishes it (runs/sync.contracts.ts). */
export type SyncResult = SyncJobResult;

export interface SyncProcessorDeps {
  lifecycle: RunLifecycle;
  landing: Landing;
  sources: SourceStore;
  connectors: ConnectorRegistry;
  logger: Logger;
  outbound: Outbound;
  timeoutMs: number;
}

/** The worker side of a sync: open or resume the run, stream batches into landing, record the outcome. */
export class SyncProcessor {
  constructor(private readonly deps: SyncProcessorDeps) {}

  /** `scope` (from SyncWorker) gives the job's logger and takes the source type and landed counts. */
  async process(job: Job<SyncJobData>, signal?: AbortSignal, scope?: JobScope): Promise<SyncResult> {
    const { lifecycle } = this.deps;
    const { sourceId } = job.data;
    let runId = job.data.runId;
    if (!runId) {
      // A scheduler tick: open its run now, unless the source is busy or gone (overlapping ticks).
      const run = await lifecycle.runs.createForTick(randomUUID(), sourceId, job.id ?? '');
      if (!run) return { status: 'skipped', reason: 'source is inactive, deleted or already syncing' };
      runId = run.id;
      if (scope) scope.logger = scope.logger.child({ runId });
      // A tick's template carries the source id only; the job, once running, says what it is.
      await job.updateData({ ...job.data, runId, trigger: 'schedule' });
      await lifecycle.queued([{ runId, sourceId, trigger: 'schedule' }]);
    }
    // Starts, not failures: a worker killed mid-sync (stalled) or a shutdown hand-back does not count
    // as a failed attempt in BullMQ, but the run history should still show that the job ran again.
    const attempt = Math.max(job.attemptsStarted, job.attemptsMade + 1);
    const run = await lifecycle.start(runId, attempt);
    if (!run) return { runId, status: 'skipped', reason: 'run is no longer active' };
    // With a scope, its logger already carries the job's ids.
    const logger = scope?.logger ?? this.deps.logger.child({ jobId: job.id, runId, sourceId });
    logger.info({ attempt }, 'sync started');

    let secret: string | null = null;
    try {
      // Settings, secret and incremental state in one round trip: it is paid on every sync.
      const loaded = await this.deps.sources.loadWithState(sourceId);
      if (!loaded) throw new PermanentSyncError('source was deleted');
      const { source, state, landing: settings } = loaded;
      // A dedup source whose primary_key went missing (edited in the table by hand) cannot say what is current.
      if (settings.syncMode === 'dedup' && !settings.dedup)
        throw new PermanentSyncError('sync_mode dedup needs metadata.primary_key', 'invalid_config');
      secret = source.connection_string;
      if (scope) scope.sourceType = source.source_type ?? undefined;
      const connector = this.deps.connectors.get(source.source_type);
      // Only a run that already landed something (an earlier attempt) has anything to clear; its
      // counters, committed with every batch, say so. A first attempt skips the transaction.
      // Counters of this run so far: an earlier attempt's batches count unless prepareAttempt removed them.
      const counts = { records: run.records, invalid: run.invalid };
      if (run.records || run.invalid)
        if (await this.deps.landing.prepareAttempt(sourceId, runId)) counts.records = counts.invalid = 0;
      const ctx = {
        signal: signal ?? new AbortController().signal,
        logger,
        outbound: this.deps.outbound,
        timeoutMs: this.deps.timeoutMs,
      };
      const check = recordCheck(source.schema_definition);
      const shape = new ShapeSampler();
      const { landing } = this.deps;
      // A snapshot is a whole read: never resumed from a state, and none kept (a retry starts over).
      const snapshot = settings.syncMode === 'snapshot';
      const batches = readAhead(connector.sync(source, snapshot ? undefined : state, ctx), (batch) => {
        shape.add(batch.records);
        const landed = snapshot ? { ...batch, state: undefined } : batch;
        return landing.prepare(sourceId, runId, landed, check, settings.dedup);
      });
      for await (const batch of batches) {
        const landed = await landing.write(batch, attempt);
        counts.records += landed.records;
        counts.invalid += landed.invalid;
      }
      const violations = counts.invalid ? await landing.firstViolations(runId) : [];
      const outcome = judgeRun(counts, settings.maxInvalidRatio, violations);
      if (outcome.failure) throw new PermanentSyncError(outcome.failure, 'invalid_records');
      const drift = diffSchema(source.schema_definition, shape);
      const done = await lifecycle.succeed(runId, attempt, drift ? { ...drift } : undefined, outcome.warning);
      if (!done) return this.takenOver(logger, runId, attempt);
      if (scope) scope.landed = done;
      return { runId, status: 'success', records: done?.records ?? 0, bytes: done?.bytes ?? 0 };
    } catch (err) {
      // Aborted by a shutdown: not a failure of the source; the worker hands the job back.
      if (signal?.aborted) throw err;
      // Another attempt owns the run now (this one froze past its lock): leave the run to it.
      if (err instanceof RunTakenOverError) return this.takenOver(logger, runId, attempt);
      const message = scrubSecret((err as Error)?.message ?? String(err), secret).slice(0, 1000);
      const permanent = err instanceof PermanentSyncError;
      // Whether BullMQ retries depends on failed attempts only (a stall or hand-back is not one).
      const lastTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (permanent || lastTry) {
        const closed = await lifecycle.fail(runId, message, { attempt });
        if (!closed) return this.takenOver(logger, runId, attempt);
        // Unrecoverable: BullMQ must not retry what cannot succeed.
        throw permanent ? new UnrecoverableError(message) : new Error(message);
      }
      await lifecycle.retrying({ runId, sourceId }, message, attempt);
      throw new Error(message);
    }
  }

  private takenOver(logger: Logger, runId: string, attempt: number): SyncResult {
    logger.warn({ attempt }, 'sync attempt lost its run to a later attempt; stopped');
    return { runId, status: 'skipped', reason: 'the run was taken over by a later attempt or closed' };
  }
}
