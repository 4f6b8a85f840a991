/** How a request retries answers that may pass (429, 5xx): bounded in count and in total waiting. */
export interface RetryPolicy {
  /** Retries after the first try. */
  retries: number;
  /** First backoff when the answer has no Retry-After; doubles per retry (with jitter). */
  baseDelayMs: number;
  /** A single wait longer than this (Retry-After included) is not worth it: give up instead. */
  maxDelayMs: number;
  /** Total waiting across retries of one request. */
  maxWaitMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  retries: 3,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxWaitMs: 60_000,
};

/** Statuses worth another try: rate limits and server-side trouble (501/505 will not change). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!raw) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The wait before retry number `retry` (0-based), or undefined when the policy says stop: out of
 * retries, or the server asks for longer than a single wait or the remaining budget allows.
 */
export function retryDelay(
  retry: number,
  retryAfter: string | string[] | undefined,
  waitedMs: number,
  policy: RetryPolicy,
): number | undefined {
  if (retry >= policy.retries) return undefined;
  const asked = parseRetryAfter(retryAfter);
  const backoff = policy.baseDelayMs * 2 ** retry;
  const delay = asked ?? Math.round(backoff / 2 + (Math.random() * backoff) / 2);
  if (delay > policy.maxDelayMs || waitedMs + delay > policy.maxWaitMs) return undefined;
  return delay;
}

/** Waits `ms`, or rejects at once when `signal` aborts (a shutdown must not sit out a backoff). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
