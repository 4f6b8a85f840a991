import type { Config } from '../config';
import type { SourcePolicyRow, SourceStore } from '../sources/source-store';
import { PermanentSyncError } from '../connectors/connector';

/** A source's own policy settings (the nullable columns of raw_data_sources); null = the global default. */
export interface PolicyFields {
  max_run_seconds?: number | null;
  retry_attempts?: number | null;
  retry_backoff_seconds?: number | null;
  deactivate_after_failures?: number | null;
  concurrency_group?: string | null;
  concurrency_limit?: number | null;
}

/** The global defaults a source's policy falls back to (src/config.ts). */
export type PolicyDefaults = Pick<
  Config,
  'syncAttempts' | 'syncBackoffMs' | 'syncMaxRunSeconds' | 'deactivateAfterFailures'
> & { concurrency: Pick<Config['concurrency'], 'defaultLimit' | 'groupLimits'> };

/** What one run of a source is allowed: every value resolved, source setting over global default. */
export interface RunPolicy {
  maxRunSeconds: number;
  attempts: number;
  backoffMs: number;
  /** 0: never deactivated. */
  deactivateAfterFailures: number;
  /** The concurrency group; null when the source has none (no destination, no concurrency_group). */
  group: string | null;
  /** Runs of the group at once over all workers; 0: no limit (the gate is not asked). */
  limit: number;
}

/** Default ports by scheme, so `postgres://db` and `postgres://db:5432` are one destination. */
const DEFAULT_PORTS: Record<string, string> = {
  'http:': '80',
  'https:': '443',
  'postgres:': '5432',
  'postgresql:': '5432',
  'mysql:': '3306',
  'redis:': '6379',
  'rediss:': '6379',
  'nats:': '4222',
};

/**
 * The host:port a connection string points at (lower-cased, user info dropped), or null when it
 * names no network destination (a file:// path, a webhook, an unparsable string). Only the
 * address leaves this function, never the user info.
 */
export function destinationOf(connectionString: string | null | undefined): string | null {
  if (!connectionString) return null;
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return null;
  }
  if (!url.hostname) return null;
  const port = url.port || DEFAULT_PORTS[url.protocol];
  if (!port) return null;
  return `${url.hostname.toLowerCase()}:${port}`;
}

/** Resolves a source's policy: its own setting where it has one, else the global default. */
export function resolvePolicy(
  fields: PolicyFields,
  destination: string | null,
  defaults: PolicyDefaults,
): RunPolicy {
  const group = fields.concurrency_group ?? destination;
  const limit =
    fields.concurrency_limit ??
    (group !== null ? defaults.concurrency.groupLimits[group] : undefined) ??
    defaults.concurrency.defaultLimit;
  return {
    maxRunSeconds: fields.max_run_seconds ?? defaults.syncMaxRunSeconds,
    ...retryOptionsOf(fields, defaults),
    deactivateAfterFailures: fields.deactivate_after_failures ?? defaults.deactivateAfterFailures,
    group,
    limit: group === null ? 0 : limit,
  };
}

export type RetryDefaults = Pick<PolicyDefaults, 'syncAttempts' | 'syncBackoffMs'>;

function retryOptionsOf(fields: PolicyFields, defaults: RetryDefaults) {
  return {
    attempts: fields.retry_attempts ?? defaults.syncAttempts,
    backoffMs:
      fields.retry_backoff_seconds != null ? fields.retry_backoff_seconds * 1000 : defaults.syncBackoffMs,
  };
}

/**
 * BullMQ options of a sync job of this source: its attempts and exponential backoff. Set on every
 * sync job when it is enqueued (manual, sync-all, scheduler template), so a job carries the policy
 * it was queued under.
 */
export function syncJobRetry(
  fields: PolicyFields,
  defaults: RetryDefaults,
): { attempts: number; backoff: { type: 'exponential'; delay: number } } {
  const { attempts, backoffMs } = retryOptionsOf(fields, defaults);
  return { attempts, backoff: { type: 'exponential', delay: backoffMs } };
}

/** Resolves sources' policies from their rows (sources/source-store) and the global defaults. */
export class RunPolicies {
  constructor(
    private readonly store: { policyRow(id: string): Promise<SourcePolicyRow | undefined> },
    private readonly defaults: PolicyDefaults,
  ) {}

  /** Undefined when the source does not exist (any more). */
  async forSource(id: string): Promise<RunPolicy | undefined> {
    const row = await this.store.policyRow(id);
    // The masked form is enough: masking keeps scheme, host and port, so no secret is decrypted here.
    return row ? resolvePolicy(row, destinationOf(row.connection_string_masked), this.defaults) : undefined;
  }
}

/** BullMQ options per source for a page of sync jobs: only sources with their own retry settings are in it. */
export async function retryOverrides(
  store: Pick<SourceStore, 'retryOverrides'>,
  defaults: RetryDefaults,
  sourceIds: string[],
): Promise<Map<string, ReturnType<typeof syncJobRetry>>> {
  const rows = await store.retryOverrides(sourceIds);
  return new Map(rows.map((row) => [row.id, syncJobRetry(row, defaults)]));
}

/** Why a run ended when its policy's maximum run time ran out: a permanent failure, not retried. */
export class RunTimeoutError extends PermanentSyncError {
  constructor(readonly seconds: number) {
    super(`timed out after ${seconds} s (max_run_seconds; SYNC_MAX_RUN_SECONDS by default)`, 'timeout');
    this.name = 'RunTimeoutError';
  }
}

/**
 * The signal a run works under: aborted by the worker's own signal (shutdown, with its reason) or,
 * after `seconds`, with a RunTimeoutError. dispose() stops the clock.
 */
export function runDeadline(
  seconds: number,
  outer?: AbortSignal,
): { signal: AbortSignal; timedOut(): RunTimeoutError | undefined; dispose(): void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(outer?.reason);
  if (outer?.aborted) onAbort();
  else outer?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new RunTimeoutError(seconds)), seconds * 1000);
  return {
    signal: controller.signal,
    timedOut: () =>
      controller.signal.reason instanceof RunTimeoutError ? controller.signal.reason : undefined,
    dispose: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onAbort);
    },
  };
}
