import type { ConnectorContext, StepStatus, TestStep } from '../connector';
import { classifyError } from '../connector-errors';

export interface StepOutcome<T> {
  value: T;
  message: string;
  status?: Extract<StepStatus, 'passed' | 'warning'>;
  code?: string;
}

/**
 * Runs test steps in order, each bounded by ctx.timeoutMs: a failure (or timeout) becomes a failed
 * step with a stable code and every later step is skipped. Never throws for an unreachable source.
 */
export class StepRunner {
  readonly steps: TestStep[] = [];
  private stopped = false;

  constructor(private readonly ctx: ConnectorContext) {}

  get failed(): boolean {
    return this.stopped;
  }

  /** Runs `name`; resolves with its value, or undefined when it failed or an earlier step did. */
  async run<T>(name: string, fn: (signal: AbortSignal) => Promise<StepOutcome<T>>): Promise<T | undefined> {
    if (this.stopped) {
      this.steps.push({
        name,
        status: 'skipped',
        message: 'skipped after an earlier step failed',
        duration_ms: 0,
      });
      return undefined;
    }
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    const deadline = new AbortController();
    const signal = AbortSignal.any([this.ctx.signal, deadline.signal]);
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const err = Object.assign(new Error(`${name} timed out after ${this.ctx.timeoutMs} ms`), {
            code: 'ETIMEDOUT',
          });
          deadline.abort(err);
          reject(err);
        }, this.ctx.timeoutMs);
      });
      const outcome = await Promise.race([fn(signal), timeout]);
      this.steps.push({
        name,
        status: outcome.status ?? 'passed',
        message: outcome.message,
        duration_ms: ms(),
        ...(outcome.code ? { code: outcome.code } : {}),
      });
      return outcome.value;
    } catch (err) {
      this.stopped = true;
      this.steps.push({
        name,
        status: 'failed',
        message: messageOf(err),
        code: failureCode(err),
        duration_ms: ms(),
      });
      return undefined;
    } finally {
      clearTimeout(timer);
      deadline.abort();
    }
  }

  /** Adds a step decided without running anything (e.g. a configuration problem). */
  fail(name: string, message: string, code: string): void {
    this.stopped = true;
    this.steps.push({ name, status: 'failed', message, code, duration_ms: 0 });
  }
}

/** Codes carried by our own errors (HTTP status, connector and sync errors) win over the driver's. */
function failureCode(err: unknown): string {
  const own = (err as { code?: unknown })?.code;
  const name = (err as { name?: unknown })?.name;
  if (
    typeof own === 'string' &&
    (name === 'HttpStatusError' ||
      name === 'ConnectorError' ||
      name === 'PermanentSyncError' ||
      name === 'OutboundRefusedError')
  )
    return own;
  return classifyError(err);
}

function messageOf(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown };
  const message = typeof e?.message === 'string' && e.message ? e.message : String(err);
  // Node network errors say little without their errno ("connect ECONNREFUSED" is clear, "fetch failed" is not).
  return typeof e?.code === 'string' && !message.includes(e.code) ? `${message} (${e.code})` : message;
}
