import type { Job } from 'bullmq';
import type { Connector, ConnectorContext, ConnectorSource, TestStep } from '../src/connectors/connector';
import type { ConnectorRegistry } from '../src/connectors/connector-registry';
import { PermanentSyncError } from '../src/connectors/connector';
import type { Outbound } from '../src/connectors/outbound';
import type { EventBus } from '../src/events/event-bus';
import type { Logger } from '../src/logger';
import type { TestJobData } from '../src/queue/queue-names';
import type { JobScope } from './job-scope';
import { recordCheck } from '../src/runs/record-check';
import { scrubSecret } from '../src/connectors/kit/secret-scrubber';
import { toStepCode } from '../src/connectors/kit/step-codes';
import { testBudgetExceeded } from '../src/runs/test-budget';
import type { SourceDrafts } from '../src/sources/source-drafts';
import type { SourceStore } from '../src/sources/source-store';

import type { TestResult } from '../src/runs/sync.contracts';

export type { TestResult };

export interface TestProcessorDeps {
  sources: SourceStore;
  drafts: SourceDrafts;
  connectors: ConnectorRegistry;
  events: EventBus;
  logger: Logger;
  outbound: Outbound;
  timeoutMs: number;
}

const SAMPLE_SIZE = 20;

/**
 * Runs a connector's test steps for a saved source or an unsaved draft. When every step passed
 * and the source has a schema_definition, a final step reads a small sample and validates it. A
 * type without a connector answers with one failed step saying so; nothing here throws for a
 * source that cannot be reached.
 */
export class TestProcessor {
  constructor(private readonly deps: TestProcessorDeps) {}

  /** `scope` (from SyncWorker) gives the job's logger and takes the source type. */
  async process(job: Job<TestJobData>, signal?: AbortSignal, scope?: JobScope): Promise<TestResult> {
    // The whole test ends within the budget the API gave it (runs/test-budget.ts), so its result
    // is there before the API stops waiting.
    const budgetMs = job.data.budgetMs;
    const budget = new AbortController();
    const timer = budgetMs
      ? setTimeout(() => budget.abort(testBudgetExceeded(budgetMs)), budgetMs)
      : undefined;
    try {
      return await this.bounded(
        job,
        signal ? AbortSignal.any([signal, budget.signal]) : budget.signal,
        scope,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  private async bounded(job: Job<TestJobData>, signal: AbortSignal, scope?: JobScope): Promise<TestResult> {
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    let source: ConnectorSource | undefined;
    let steps: TestStep[];
    try {
      const { draftId, sourceId } = job.data;
      source = draftId ? await this.deps.drafts.take(draftId) : await this.deps.sources.load(sourceId ?? '');
      if (!source)
        steps = [failed('load source', 'the source (or unsaved draft) no longer exists', 'not_found', ms())];
      else {
        if (scope) scope.sourceType = source.source_type ?? undefined;
        steps = await this.run(source, scope?.logger ?? this.deps.logger, signal);
      }
    } catch (err) {
      const code = err instanceof PermanentSyncError ? err.code : 'internal';
      steps = [failed('load source', (err as Error).message ?? String(err), code, ms())];
    }
    const secret = source?.connection_string ?? null;
    steps = steps.map((s) => ({ ...s, message: scrubSecret(s.message, secret) }));
    const result = { ok: steps.every((s) => s.status !== 'failed'), steps, duration_ms: ms() };
    if (job.data.sourceId)
      await this.deps.events.publish('connection.tested', {
        source_id: job.data.sourceId,
        data: { ok: result.ok, steps: steps.map(({ name, status, code }) => ({ name, status, code })) },
      });
    return result;
  }

  private async run(source: ConnectorSource, logger: Logger, signal?: AbortSignal): Promise<TestStep[]> {
    const started = performance.now();
    let connector: Connector;
    try {
      connector = this.deps.connectors.get(source.source_type);
    } catch (err) {
      const code = err instanceof PermanentSyncError ? err.code : 'internal';
      return [failed('connector', (err as Error).message, code, 0)];
    }
    const ctx: ConnectorContext = {
      signal: signal ?? new AbortController().signal,
      logger,
      outbound: this.deps.outbound,
      timeoutMs: this.deps.timeoutMs,
    };
    let steps: TestStep[];
    try {
      steps = await connector.test(source, ctx);
    } catch (err) {
      return [
        failed(
          'connector',
          (err as Error).message ?? String(err),
          'unknown',
          Math.round(performance.now() - started),
        ),
      ];
    }
    if (source.schema_definition && steps.every((s) => s.status !== 'failed'))
      steps.push(await this.validateSample(connector, source, ctx));
    return steps;
  }

  /** Reads the first batch a sync would read (nothing is landed or committed) and validates it. */
  private async validateSample(
    connector: Connector,
    source: ConnectorSource,
    ctx: ConnectorContext,
  ): Promise<TestStep> {
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ctx.timeoutMs);
    try {
      const check = recordCheck(source.schema_definition);
      const signal = AbortSignal.any([ctx.signal, abort.signal]);
      const batches = connector.sync(source, undefined, { ...ctx, signal });
      const iterator = batches[Symbol.asyncIterator]();
      const first = await iterator.next();
      await iterator.return?.();
      const sample = first.done ? [] : first.value.records.slice(0, SAMPLE_SIZE);
      if (!sample.length)
        return {
          name: 'validate sample',
          status: 'skipped',
          message: 'the source has no records to check yet',
          duration_ms: ms(),
        };
      const invalid = sample.map((r) => check?.(r)).filter(Boolean) as {
        pointer: string;
        message: string;
      }[][];
      if (!invalid.length)
        return {
          name: 'validate sample',
          status: 'passed',
          message: `${sample.length} sample records match schema_definition`,
          duration_ms: ms(),
        };
      const first_error = invalid[0]![0];
      return {
        name: 'validate sample',
        status: 'warning',
        code: 'schema_mismatch',
        message: `${invalid.length} of ${sample.length} sample records do not match schema_definition (first: ${first_error?.pointer} ${first_error?.message}); they would be quarantined`,
        duration_ms: ms(),
      };
    } catch (err) {
      return {
        name: 'validate sample',
        status: 'failed',
        code: 'unknown',
        message: `could not read a sample: ${(err as Error).message}`,
        duration_ms: ms(),
      };
    } finally {
      clearTimeout(timer);
    }
  }
}

function failed(name: string, message: string, code: string, duration_ms: number): TestStep {
  return { name, status: 'failed', message, code: toStepCode(code), duration_ms };
}
