/**
 * Settles with `work`, or rejects after `ms` (code ETIMEDOUT) or when `signal` aborts: a peer that
 * accepts the connection and never answers must not hold a step or a sync forever. The caller
 * closes the underlying connection, which is what actually stops the work.
 */
export function bounded<T>(work: Promise<T>, ms: number, what: string, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(Object.assign(new Error(`${what}: no answer within ${ms} ms`), { code: 'ETIMEDOUT' })),
        ),
      ms,
    );
    const onAbort = () => finish(() => reject(abortError(signal)));
    let done = false;
    function finish(settle: () => void): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settle();
    }
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => finish(() => resolve(value)),
      (err: unknown) => finish(() => reject(err)),
    );
  });
}

/** The error a cancelled sync stops with (its name classifies as a timeout, never as permanent). */
export function abortError(signal?: AbortSignal): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error('the sync was cancelled'), { name: 'AbortError' });
}
