import type { ConnectorContext, StepStatus, TestStep } from '../connector';
import { classifyError, failureMessage, isOwnError, unreachableMessage } from './classify-error';
import { withDeadline } from './deadline';
import type { StepCode } from './step-codes';
import { hideSecrets } from './secret-scrubber';

/** What a step found: the value later steps use, and the message shown to the user. */
export interface StepOutcome<T> {
  value: T;
  message: string;
  /**
   * warning: it worked, but something deserves a look; skipped: nothing to check yet (say why);
   * failed: the step judged the failure itself (say why, with a code), instead of throwing.
   */
  status?: StepStatus;
  /** A code for a warning or a failure the step judged (thrown errors get theirs from classifyError). */
  code?: StepCode;
  /** The step's duration when it timed itself (one handshake that answers two steps). */
  durationMs?: number;
}

export interface StepOptions {
  /**
   * The step's bound (default ctx.timeoutMs). A step whose work bounds itself with a message that
   * says more (which phase of a handshake hung) passes a later backstop.
   */
  timeoutMs?: number;
}

/** The message of every step not run because an earlier one failed, for every source type. */
export const SKIPPED_MESSAGE = 'not run: an earlier step failed';

/**
 * Runs test-connection steps in order, each bounded in time. A failure becomes a failed step with
 * a stable code (never an exception) and every later step is reported as skipped, so an answer
 * always lists the same steps and shows where it stopped. Known secrets are masked in every
 * message, since drivers sometimes echo what they were given.
 */
export class StepRunner {
  private readonly done: TestStep[] = [];
  private stopped = false;
  private readonly secrets: string[] = [];
  private peer?: string;

  /** `plan`: every step name, in the order they run; those never reached are listed as skipped. */
  constructor(
    private readonly ctx: Pick<ConnectorContext, 'signal' | 'timeoutMs'>,
    private plan: readonly string[] = [],
  ) {}

  get failed(): boolean {
    return this.stopped;
  }

  /** Secrets to mask in every later message (known once the settings are parsed). */
  hide(secrets: readonly string[]): void {
    this.secrets.push(...secrets);
  }

  /**
   * The host:port the connector dials, once known: a step that fails refused or unanswered names
   * it and says what to check, even when the driver's error does not carry the address.
   */
  target(peer: string): void {
    this.peer = peer;
  }

  /** Replaces the plan once the settings tell which steps apply (a local file, or one by URL). */
  replan(plan: readonly string[]): void {
    this.plan = plan;
  }

  /**
   * Runs step `name`: its value, or undefined when it failed or an earlier step did. `work` gets
   * a signal that aborts when the step's time is up or the run is cancelled.
   */
  async run<T>(
    name: string,
    work: (signal: AbortSignal) => Promise<StepOutcome<T>>,
    options: StepOptions = {},
  ): Promise<T | undefined> {
    if (this.stopped) {
      this.skip(name);
      return undefined;
    }
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const stepEnded = new AbortController();
    const signal = AbortSignal.any([this.ctx.signal, stepEnded.signal]);
    try {
      const outcome = await withDeadline(work(signal), options.timeoutMs ?? this.ctx.timeoutMs, name, {
        signal: this.ctx.signal,
      });
      if (outcome.status === 'failed') this.stopped = true;
      this.done.push({
        name,
        status: outcome.status ?? 'passed',
        message: this.mask(outcome.message),
        duration_ms: Math.max(0, Math.round(outcome.durationMs ?? elapsed())),
        ...(outcome.code || outcome.status === 'failed' ? { code: outcome.code ?? 'unknown' } : {}),
      });
      return outcome.status === 'failed' ? undefined : outcome.value;
    } catch (err) {
      stepEnded.abort(err);
      this.stopped = true;
      this.done.push({
        name,
        status: 'failed',
        message: this.mask(unreachableMessage(err, this.peer) ?? messageOf(err)),
        code: classifyError(err),
        duration_ms: elapsed(),
      });
      return undefined;
    } finally {
      stepEnded.abort();
    }
  }

  /** Every planned step, in order; those never reached are skipped. */
  finish(): TestStep[] {
    for (const name of this.plan) if (!this.done.some((s) => s.name === name)) this.skip(name);
    return [...this.done];
  }

  private skip(name: string): void {
    this.done.push({ name, status: 'skipped', message: SKIPPED_MESSAGE, duration_ms: 0 });
  }

  private mask(message: string): string {
    return this.secrets.length ? hideSecrets(message, this.secrets) : message;
  }
}

// Node network errors say little without their errno ("connect ECONNREFUSED" is clear, "fetch
// failed" is not); our own errors' codes are the step's code already.
const ERRNO = /^(E[A-Z0-9_]+|UND_ERR_[A-Z_]+)$/;

function messageOf(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown };
  const message = typeof e?.message === 'string' && e.message ? failureMessage(err) : String(err);
  return !isOwnError(err) && typeof e?.code === 'string' && ERRNO.test(e.code) && !message.includes(e.code)
    ? `${message} (${e.code})`
    : message;
}
