import { describe, expect, it } from 'vitest';
import { destinationOf, resolvePolicy, runDeadline, RunTimeoutError, syncJobRetry } from './run-policy';

const defaults = {
  syncAttempts: 6,
  syncBackoffMs: 2000,
  syncMaxRunSeconds: 86400,
  deactivateAfterFailures: 0,
  concurrency: { defaultLimit: 0, groupLimits: { 'db.internal:5432': 3 } },
};

describe('run policy', () => {
  it('names a destination by host and port, never by user info', () => {
    expect(destinationOf('postgres://user:****@DB.internal/app')).toBe('db.internal:5432');
    expect(destinationOf('https://api.example.com/v1/items?token=****')).toBe('api.example.com:443');
    expect(destinationOf('mysql://u@[::1]:3307/x')).toBe('[::1]:3307');
    expect(destinationOf('file:///data/x.csv')).toBeNull();
    expect(destinationOf('****')).toBeNull();
    expect(destinationOf(null)).toBeNull();
  });

  it('takes a source setting over the global default, field by field', () => {
    expect(resolvePolicy({}, 'db.internal:5432', defaults)).toEqual({
      maxRunSeconds: 86400,
      attempts: 6,
      backoffMs: 2000,
      deactivateAfterFailures: 0,
      group: 'db.internal:5432',
      limit: 3,
    });
    const own = resolvePolicy(
      {
        max_run_seconds: 60,
        retry_attempts: 2,
        retry_backoff_seconds: 5,
        deactivate_after_failures: 4,
        concurrency_group: 'warehouse',
        concurrency_limit: 1,
      },
      'db.internal:5432',
      defaults,
    );
    expect(own).toEqual({
      maxRunSeconds: 60,
      attempts: 2,
      backoffMs: 5000,
      deactivateAfterFailures: 4,
      group: 'warehouse',
      limit: 1,
    });
    // No destination and no group: nothing to limit.
    expect(resolvePolicy({ concurrency_limit: 2 }, null, defaults).limit).toBe(0);
    expect(syncJobRetry({ retry_attempts: 3 }, defaults)).toEqual({
      attempts: 3,
      backoff: { type: 'exponential', delay: 2000 },
    });
  });

  it('aborts a run with RunTimeoutError when its time is up, and passes a shutdown through as is', async () => {
    const timed = runDeadline(0.05);
    await new Promise((resolve) => timed.signal.addEventListener('abort', resolve));
    expect(timed.timedOut()).toBeInstanceOf(RunTimeoutError);
    expect(timed.timedOut()!.message).toMatch(/^timed out after 0.05 s/);
    const outer = new AbortController();
    const shut = runDeadline(60, outer.signal);
    outer.abort(new Error('worker shutting down'));
    expect(shut.signal.aborted).toBe(true);
    expect(shut.timedOut()).toBeUndefined();
    shut.dispose();
  });
});
