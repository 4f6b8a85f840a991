/** A read that got no answer in time; classified as `timeout` (code ETIMEDOUT). */
export class ReadTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(what: string, ms: number) {
    super(`${what}: no answer from the database within ${ms} ms`);
    this.name = 'ReadTimeoutError';
  }
}

/**
 * Bounds waiting on a database that may stop answering (or a cancelled job): when the time runs out
 * or `signal` aborts, `onExpire` cuts the connection and every pending race() rejects, so a caller
 * stops at once even if the driver never settles the read.
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
    private readonly signal?: AbortSignal,
  ) {
    this.onAbort = () => this.fire(abortError(signal));
    if (signal?.aborted) this.onAbort();
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Starts (or restarts) the clock. */
  arm(): void {
    if (this.error) return;
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(() => this.fire(new ReadTimeoutError(this.what, this.ms)), this.ms);
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
    this.signal?.removeEventListener('abort', this.onAbort);
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

function abortError(signal?: AbortSignal): Error {
  const reason = signal?.reason;
  return reason instanceof Error
    ? reason
    : Object.assign(new Error('the sync was cancelled'), { name: 'AbortError' });
}
