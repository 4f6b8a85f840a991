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
import { GroupFullError, type ConcurrencyGate, type GateLease } from '../src/runs/concurrency-gate';
import { runDeadline, type RunPolicies, type RunPolicy } from '../src/runs/run-policy';
import type { RunLog, RunLogs } from '../src/runs/run-log';
import { afterRefusedStart } from '../src/runs/run-retry';

/** The job's result, as GET /jobs/{id} publishes it (runs/sync.contracts.ts). */
export type SyncResult = SyncJobResult;

export interface SyncProcessorDeps {
  lifecycle: RunLifecycle;
  /** Each run's own log lines (runs/run-log.ts). */
  runLogs: RunLogs;
  landing: Landing;
  sources: SourceStore;
  connectors: ConnectorRegistry;
  logger: Logger;
  outbound: Outbound;
  timeoutMs: number;
  /** Per-source policy (maximum run time, concurrency group); absent, runs have neither. */
  policies?: RunPolicies;
  /** The concurrency gate a run of a limited group passes first. */
  gate?: ConcurrencyGate;
  /** Base wait of a job that found its group full (jittered; a release wakes it sooner). */
  gateWaitMs?: number;
}

/**
 * A tick that opened no run. Overlap policy: skip while running. A source holds one active run at
 * most (the busy rule in sync-run.repository), so a tick that fires during a run is dropped, not
 * queued behind it; the result says so and names the run.
 */
function skippedTick(active: { id: string } | undefined): SyncResult {
  if (!active)
    return { status: 'skipped', reason: 'source is inactive or deleted, or its active run just ended' };
  return {
    status: 'skipped',
    reason: `overlap: the source is still syncing (run ${active.id}); schedule overlap policy is skip while running`,
    overlap: { policy: 'skip', activeRunId: active.id },
  };
}

/** The worker side of a sync: open or resume the run, stream batches into landing, record the outcome. */
export class SyncProcessor {
  constructor(private readonly deps: SyncProcessorDeps) {}

  /**
   * `scope` (from SyncWorker) gives the job's logger and takes the source type and landed counts.
   * The source's policy first: a slot of its concurrency group (or GroupFullError, and the worker
   * delays the job), then the run under its maximum run time.
   */
  async process(job: Job<SyncJobData>, signal?: AbortSignal, scope?: JobScope): Promise<SyncResult> {
    const policy = await this.deps.policies?.forSource(job.data.sourceId);
    if (!policy) return this.run(job, signal, scope);
    const lease = await this.enterGate(job, policy);
    const deadline = runDeadline(policy.maxRunSeconds, signal);
    try {
      return await this.run(job, signal, scope, deadline);
    } finally {
      deadline.dispose();
      await lease?.release();
    }
  }

  private async enterGate(job: Job<SyncJobData>, policy: RunPolicy): Promise<GateLease | undefined> {
    const { gate } = this.deps;
    if (!gate || !policy.group || !policy.limit) return undefined;
    const answer = await gate.acquire(policy.group, policy.limit, job.id ?? job.data.sourceId);
    if (answer.lease) return answer.lease;
    // Jittered, so waiters of one group do not all ask again at the same moment.
    const base = this.deps.gateWaitMs ?? 1000;
    throw new GroupFullError(policy.group, Math.round(base * (0.5 + Math.random())));
  }

  private async run(
    job: Job<SyncJobData>,
    signal?: AbortSignal,
    scope?: JobScope,
    deadline?: ReturnType<typeof runDeadline>,
  ): Promise<SyncResult> {
    const { lifecycle } = this.deps;
    const { sourceId } = job.data;
    let runId = job.data.runId;
    if (!runId) {
      // A scheduler tick: open its run now, unless the source is busy or gone (overlapping ticks).
      const run = await lifecycle.runs.createForTick(randomUUID(), sourceId, job.id ?? '');
      if (!run) return skippedTick(await lifecycle.runs.activeRun(sourceId));
      runId = run.id;
      if (scope) scope.logger = scope.logger.child({ runId });
      // A tick's template carries the source id only; the job, once running, says what it is.
      await job.updateData({ ...job.data, runId, trigger: 'schedule' });
      await lifecycle.queued([{ runId, sourceId, trigger: 'schedule' }]);
    }
    // Starts, not failures: a worker killed mid-sync (stalled) or a shutdown hand-back does not count
    // as a failed attempt in BullMQ, but the run history should still show that the job ran again.
    // Waits for a concurrency slot started the job too, but were no attempt of the run.
    const attempt = Math.max(job.attemptsStarted - (job.data.gateWaits ?? 0), job.attemptsMade + 1);
    let run = await lifecycle.start(runId, attempt);
    if (!run) {
      // A retried job (dashboard Retry) gets a new run or fails saying why; anything else skips.
      const next = await afterRefusedStart(lifecycle, job, runId);
      if (next.kind === 'skip') return { runId, status: 'skipped', reason: next.reason };
      if (next.kind === 'refused') throw new UnrecoverableError(next.reason);
      runId = next.runId;
      await job.updateData({ ...job.data, runId, trigger: 'manual' });
      if (scope) scope.logger = scope.logger.child({ runId });
      run = await lifecycle.start(runId, attempt);
      if (!run) return { runId, status: 'skipped', reason: 'source was deactivated' };
    }
    // With a scope, its logger already carries the job's ids.
    const logger = scope?.logger ?? this.deps.logger.child({ jobId: job.id, runId, sourceId });
    logger.info({ attempt }, 'sync started');
    const log = await this.deps.runLogs.open({ runId, sourceId, attempt }, logger);
    log.started(run.trigger);

    let secret: string | null = null;
    try {
      // Settings, secret and incremental state in one round trip: it is paid on every sync.
      const loaded = await this.deps.sources.loadWithState(sourceId);
      if (!loaded) throw new PermanentSyncError('source was deleted');
      const { source, state, landing: settings } = loaded;
      // A dedup source whose primary_key went missing (edited in the table by hand) cannot say what is current.
      if (settings.syncMode === 'dedup' && !settings.dedup)
        throw new PermanentSyncError('sync_mode dedup needs metadata.primary_key', 'invalid_config');
      secret = log.secret = source.connection_string;
      if (scope) scope.sourceType = source.source_type ?? undefined;
      const connector = this.deps.connectors.get(source.source_type);
      // Only a run that already landed something (an earlier attempt) has anything to clear; its
      // counters, committed with every batch, say so. A first attempt skips the transaction.
      // Counters of this run so far: an earlier attempt's batches count unless prepareAttempt removed them.
      const counts = { records: run.records, invalid: run.invalid };
      if (run.records || run.invalid)
        if (await this.deps.landing.prepareAttempt(sourceId, runId)) counts.records = counts.invalid = 0;
      const ctx = {
        signal: deadline?.signal ?? signal ?? new AbortController().signal,
        logger,
        outbound: this.deps.outbound,
        timeoutMs: this.deps.timeoutMs,
      };
      const check = recordCheck(source.schema_definition);
      const shape = new ShapeSampler();
      const { landing } = this.deps;
      // A snapshot is a whole read: never resumed from a state, and none kept (a retry starts over).
      const snapshot = settings.syncMode === 'snapshot';
      log.reading(source.source_type, settings.syncMode, !snapshot && state !== undefined && state !== null);
      const batches = readAhead(connector.sync(source, snapshot ? undefined : state, ctx), (batch) => {
        shape.add(batch.records);
        const landed = snapshot ? { ...batch, state: undefined } : batch;
        return landing.prepare(sourceId, runId, landed, check, settings.dedup);
      });
      for await (const batch of batches) {
        const landed = await landing.write(batch, attempt);
        counts.records += landed.records;
        counts.invalid += landed.invalid;
        log.batch(landed, counts);
        await log.flushIfDue();
      }
      const violations = counts.invalid ? await landing.firstViolations(runId) : [];
      if (counts.invalid) log.quarantine(counts, violations);
      const outcome = judgeRun(counts, settings.maxInvalidRatio, violations);
      if (outcome.failure) throw new PermanentSyncError(outcome.failure, 'invalid_records');
      const drift = diffSchema(source.schema_definition, shape);
      const done = await lifecycle.succeed(runId, attempt, drift ? { ...drift } : undefined, outcome.warning);
      if (!done) return this.takenOver(logger, runId, attempt, log);
      await log.finish('success', done);
      if (scope) scope.landed = done;
      return { runId, status: 'success', records: done?.records ?? 0, bytes: done?.bytes ?? 0 };
    } catch (caught) {
      // Aborted by a shutdown: not a failure of the source; the worker hands the job back.
      if (signal?.aborted) {
        await log.end('warn', 'stopped', `attempt ${attempt} stopped: ${String(signal.reason ?? 'aborted')}`);
        throw caught;
      }
      // Out of time: whatever the connector threw on the abort, the run failed for this reason.
      const err = deadline?.timedOut() ?? caught;
      // Another attempt owns the run now (this one froze past its lock): leave the run to it.
      if (err instanceof RunTakenOverError) return this.takenOver(logger, runId, attempt, log);
      const message = scrubSecret((err as Error)?.message ?? String(err), secret).slice(0, 1000);
      const permanent = err instanceof PermanentSyncError;
      // Whether BullMQ retries depends on failed attempts only (a stall or hand-back is not one).
      const lastTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (permanent || lastTry) {
        const closed = await lifecycle.fail(runId, message, { attempt });
        if (!closed) return this.takenOver(logger, runId, attempt, log);
        await log.finish('failed', closed, message);
        // Unrecoverable: BullMQ must not retry what cannot succeed.
        throw permanent ? new UnrecoverableError(message) : new Error(message);
      }
      await lifecycle.retrying({ runId, sourceId }, message, attempt);
      const code = (err as { code?: unknown })?.code;
      await log.retrying(message, typeof code === 'string' ? code : undefined);
      throw new Error(message);
    }
  }

  private async takenOver(logger: Logger, runId: string, attempt: number, log: RunLog): Promise<SyncResult> {
    logger.warn({ attempt }, 'sync attempt lost its run to a later attempt; stopped');
    await log.end('warn', 'stopped', `attempt ${attempt} lost its run to a later attempt; stopped`);
    return { runId, status: 'skipped', reason: 'the run was taken over by a later attempt or closed' };
  }
}
