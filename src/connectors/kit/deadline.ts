/**
 * A wait that ran out of time; code ETIMEDOUT, so classifyError calls it `timeout`. The message
 * names what waited and, when known, on whom: "read: no answer from the database within 10000 ms".
 */
export class DeadlineError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(what: string, ms: number, peer?: string) {
    super(`${what}: no answer${peer ? ` from ${peer}` : ''} within ${ms} ms`);
    this.name = 'DeadlineError';
  }
}

/**
 * The error work stops with when `signal` aborts: the abort's own reason when it is an error (a
 * shutdown says "worker shutting down"), else an AbortError, which classifies as a timeout and so
 * is never mistaken for a permanent failure.
 */
export function abortError(signal?: AbortSignal): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error('the sync was cancelled'), { name: 'AbortError' });
}

export interface DeadlineOptions {
  /** Rejects at once with abortError(signal) when it aborts. */
  signal?: AbortSignal;
  /** Who is waited on, for the timeout's message ("the database"). */
  peer?: string;
  /** The error to reject with when time runs out (default: DeadlineError). */
  timeoutError?: () => Error;
}

/**
 * Settles with `work`, or rejects after `ms` or when the signal aborts: a peer that accepts the
 * connection and never answers must not hold a step or a sync forever. The caller closes the
 * underlying connection, which is what actually stops the work.
 */
export function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  what: string,
  options: DeadlineOptions = {},
): Promise<T> {
  const { signal } = options;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (settle: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = () => finish(() => reject(abortError(signal)));
    const timer = setTimeout(
      () => finish(() => reject(options.timeoutError?.() ?? new DeadlineError(what, ms, options.peer))),
      ms,
    );
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => finish(() => resolve(value)),
      (err: unknown) => finish(() => reject(err)),
    );
  });
}

/**
 * A clock for a conversation with a peer that may stop answering (or a cancelled job), restarted
 * as the conversation makes progress: when the time runs out or `signal` aborts, `onExpire` cuts
 * the connection and every pending race() rejects, so a caller stops at once even if the driver
 * never settles the read.
 */
export class Deadline {
  private timer: NodeJS.Timeout | undefined;
  private error: Error | undefined;
  // Pending races only. (Racing against one long-lived promise would pin every settled read's
  // value to it: a leak of all rows read.)
  private readonly waiters = new Set<(err: Error) => void>();
  private readonly onAbort: () => void;

  constructor(
    private readonly ms: number,
    private readonly what: string,
    private readonly onExpire: () => void,
    private readonly options: DeadlineOptions = {},
  ) {
    const { signal } = options;
    this.onAbort = () => this.fire(abortError(signal));
    if (signal?.aborted) this.onAbort();
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Starts (or restarts) the clock. */
  arm(): void {
    if (this.error) return;
    if (this.timer) this.timer.refresh();
    else
      this.timer = setTimeout(
        () =>
          this.fire(
            this.options.timeoutError?.() ?? new DeadlineError(this.what, this.ms, this.options.peer),
          ),
        this.ms,
      );
  }

  /** Stops the clock until the next arm(). */
  pause(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** `promise`, unless the clock runs out (or the signal aborts) first. */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.error) {
      promise.catch(() => undefined);
      return Promise.reject(this.error);
    }
    return new Promise<T>((resolve, reject) => {
      this.waiters.add(reject);
      promise.then(
        (value) => {
          this.waiters.delete(reject);
          resolve(value);
        },
        (err: unknown) => {
          this.waiters.delete(reject);
          reject(err);
        },
      );
    });
  }

  dispose(): void {
    this.pause();
    this.options.signal?.removeEventListener('abort', this.onAbort);
  }

  private fire(err: Error): void {
    if (this.error) return;
    this.error = err;
    this.dispose();
    try {
      this.onExpire();
    } finally {
      for (const reject of this.waiters) reject(err);
      this.waiters.clear();
    }
  }
}
