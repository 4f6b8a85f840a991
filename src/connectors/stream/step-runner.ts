import type { ConnectorContext, TestStep } from '../connector';
import { bounded } from './bounded';
import { classifyStreamError, hideSecrets } from './stream-errors';

/** What a step found: the value later steps use, and the message shown to the user. */
export interface StepOutcome<T> {
  value: T;
  message: string;
  /** Worked, but something deserves a look (an empty stream): a warning, not a failure. */
  warning?: boolean;
}

/**
 * Runs test-connection steps in order, each bounded by ctx.timeoutMs. A failure becomes a failed
 * step with a stable code (never an exception); the steps after it are reported as skipped.
 */
export class StepRunner {
  private readonly done: TestStep[] = [];
  private failed = false;
  private readonly secrets: string[] = [];

  constructor(
    private readonly names: readonly string[],
    private readonly ctx: ConnectorContext,
  ) {}

  /** Secrets to mask in every later message (known once the settings are parsed). */
  hide(secrets: readonly string[]): void {
    this.secrets.push(...secrets);
  }

  /** The step's value, or undefined when it (or an earlier one) failed. */
  async run<T>(name: string, work: () => Promise<StepOutcome<T>>): Promise<T | undefined> {
    if (this.failed) {
      this.skip(name);
      return undefined;
    }
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    try {
      const outcome = await bounded(work(), this.ctx.timeoutMs, name, this.ctx.signal);
      this.done.push({
        name,
        status: outcome.warning ? 'warning' : 'passed',
        message: hideSecrets(outcome.message, this.secrets),
        duration_ms: elapsed(),
      });
      return outcome.value;
    } catch (err) {
      this.failed = true;
      this.done.push({
        name,
        status: 'failed',
        code: classifyStreamError(err),
        message: hideSecrets((err as Error)?.message || String(err), this.secrets),
        duration_ms: elapsed(),
      });
      return undefined;
    }
  }

  /** Every declared step, in order; those never reached are skipped. */
  finish(): TestStep[] {
    for (const name of this.names) if (!this.done.some((s) => s.name === name)) this.skip(name);
    const order = (s: TestStep) => this.names.indexOf(s.name);
    return [...this.done].sort((a, b) => order(a) - order(b));
  }

  private skip(name: string): void {
    this.done.push({ name, status: 'skipped', message: 'not run: an earlier step failed', duration_ms: 0 });
  }
}
