import type { Job } from 'bullmq';
import type { ConnectorRegistry } from '../connectors/connector-registry';
import { PermanentSyncError, type TestStep } from '../connectors/connector';
import type { EventBus } from '../events/event-bus';
import type { Logger } from '../logger';
import type { TestJobData } from '../queue/queue-names';
import { scrubSecret } from './scrub-secret';
import type { SourceReader } from './source-reader';

export interface TestResult {
  ok: boolean;
  steps: TestStep[];
  duration_ms: number;
}

/** Runs a connector's test steps; a type without a connector answers with one failed step saying so. */
export class TestProcessor {
  constructor(
    private readonly deps: {
      sources: SourceReader;
      connectors: ConnectorRegistry;
      events: EventBus;
      logger: Logger;
    },
  ) {}

  async process(job: Job<TestJobData>, signal?: AbortSignal): Promise<TestResult> {
    const started = performance.now();
    let steps: TestStep[];
    const source = await this.deps.sources.load(job.data.sourceId).catch((err: unknown) => {
      if (!(err instanceof PermanentSyncError)) throw err;
      steps = [failed('load source', err.message, err.code, started)];
      return null;
    });
    if (source === undefined) steps = [failed('load source', 'source was deleted', 'not_found', started)];
    else if (source) {
      try {
        const connector = this.deps.connectors.get(source.source_type);
        const ctx = { signal: signal ?? new AbortController().signal, logger: this.deps.logger };
        steps = await connector.test(source, ctx);
        steps = steps.map((s) => ({ ...s, message: scrubSecret(s.message, source.connection_string) }));
      } catch (err) {
        const code = err instanceof PermanentSyncError ? err.code : 'internal';
        const message = scrubSecret((err as Error).message ?? String(err), source.connection_string);
        steps = [failed('connector', message, code, started)];
      }
    }
    steps ??= [];
    const result = {
      ok: steps.every((s) => s.status !== 'failed'),
      steps,
      duration_ms: Math.round(performance.now() - started),
    };
    await this.deps.events.publish('connection.tested', {
      source_id: job.data.sourceId,
      data: { ok: result.ok, steps: steps.map(({ name, status, code }) => ({ name, status, code })) },
    });
    return result;
  }
}

function failed(name: string, message: string, code: string, started: number): TestStep {
  return { name, status: 'failed', message, code, duration_ms: Math.round(performance.now() - started) };
}
