import type { Knex } from 'knex';
import { PermanentSyncError, type ConnectorSource } from '../connectors/connector';
import { DecryptionError, type SecretBox } from '../crypto/secret-box';
import type { CrudRepository } from '../db/crud.repository';
import type { RawDataSource } from '../generated';
import { dedupSettings, type DedupSettings, type SyncMode } from './sync-mode';
import { parseCron } from './source-schedule';

const SECRET_FIELD = 'connection_string';

/** What a connector needs of a source row, with the secret still encrypted. */
const SELECT = `SELECT s.id, s.name, s.source_type, s.metadata, s.schema_definition,
  s.sync_mode, s.max_invalid_ratio, s.${SECRET_FIELD}_ciphertext AS ciphertext`;

interface SourceRow {
  id: string;
  name: string;
  source_type: string;
  metadata: RawDataSource['metadata'];
  schema_definition: RawDataSource['schema_definition'];
  ciphertext: string | null;
  sync_mode: SyncMode;
  max_invalid_ratio: number | null;
  state?: unknown;
}

/** How a source's records land (not the connector's business, so not in ConnectorSource). */
export interface LandingSettings {
  syncMode: SyncMode;
  maxInvalidRatio: number | null;
  /** Set in dedup mode. */
  dedup?: DedupSettings;
}

/** A source's own run policy settings (null: the global default; runs/run-policy resolves them). */
export interface SourcePolicyRow {
  connection_string_masked: string | null;
  max_run_seconds: number | null;
  retry_attempts: number | null;
  retry_backoff_seconds: number | null;
  deactivate_after_failures: number | null;
  concurrency_group: string | null;
  concurrency_limit: number | null;
}

/** What a schedule is made from: one row per active source. */
export interface SchedulableSource {
  id: string;
  /** Names the scheduler's jobs on the dashboard (`sync: <name>`). */
  name?: string;
  refresh_interval: number;
  /** When set, the source runs on this cron expression instead of refresh_interval (source-schedule.ts). */
  schedule_cron?: string | null;
  /** IANA zone of schedule_cron (UTC when absent). */
  schedule_timezone?: string;
  /** Seconds, [0, 60]: the source fires at a hashed offset within them (source-schedule.ts). */
  schedule_jitter?: number;
  is_active: boolean;
  /** The source's retry policy, which its scheduler's job template carries (null: the defaults). */
  retry_attempts?: number | null;
  retry_backoff_seconds?: number | null;
}

/**
 * Every statement on raw_data_sources outside the generated CRUD repository (and the run
 * transitions, which move sync_status in the same statement as the run: runs/sync-run.repository).
 *
 * Loads a source for a connector: the stored settings plus the decrypted secret, for this call
 * only. One query per load, the secret's ciphertext read with the settings: a sync loads its
 * source on every run, so each round trip counts (bench/sync-e2e.bench.ts).
 */
export class SourceStore {
  constructor(
    private readonly sources: CrudRepository<RawDataSource>,
    private readonly knex: Knex,
    private readonly secrets: SecretBox,
  ) {}

  async load(id: string): Promise<ConnectorSource | undefined> {
    const result = await this.knex.raw(`${SELECT} FROM raw_data_sources s WHERE s.id = ?`, [id]);
    const row = (result.rows as SourceRow[])[0];
    return row ? this.toSource(row) : undefined;
  }

  /** The source's name, or undefined when no such source exists (any more). */
  async nameOf(id: string): Promise<string | undefined> {
    const row = await this.knex('raw_data_sources').select('name').where({ id }).first();
    return row ? (row.name as string) : undefined;
  }

  /** The source, how it lands and its incremental state (Landing's source_sync_state), in the same query. */
  async loadWithState(
    id: string,
  ): Promise<{ source: ConnectorSource; landing: LandingSettings; state: unknown } | undefined> {
    const result = await this.knex.raw(
      `${SELECT}, st.state FROM raw_data_sources s
       LEFT JOIN source_sync_state st ON st.source_id = s.id WHERE s.id = ?`,
      [id],
    );
    const row = (result.rows as SourceRow[])[0];
    if (!row) return undefined;
    const dedup = row.sync_mode === 'dedup' ? dedupSettings(row.metadata) : undefined;
    const landing: LandingSettings = {
      syncMode: row.sync_mode ?? 'append',
      maxInvalidRatio: row.max_invalid_ratio ?? null,
      ...(dedup ? { dedup } : {}),
    };
    return { source: this.toSource(row), landing, state: row.state ?? undefined };
  }

  /** Retry settings of those of `ids` that set any (the rest use the defaults): one query per sync-all page. */
  async retryOverrides(
    ids: string[],
  ): Promise<Pick<SourcePolicyRow & { id: string }, 'id' | 'retry_attempts' | 'retry_backoff_seconds'>[]> {
    if (!ids.length) return [];
    return this.knex('raw_data_sources')
      .select('id', 'retry_attempts', 'retry_backoff_seconds')
      .whereIn('id', ids)
      .where((q) => q.whereNotNull('retry_attempts').orWhereNotNull('retry_backoff_seconds'));
  }

  /**
   * is_active=false when the source's last N finished (success or failed) runs all failed, N its
   * deactivate_after_failures or `defaultFailures` (0: never). One statement that an inactive source
   * never passes: returns N once, then undefined.
   */
  async deactivateAfterFailures(
    id: string,
    defaultFailures: number,
  ): Promise<{ failures: number } | undefined> {
    const result = await this.knex.raw<{ rows: { failures: number }[] }>(
      `WITH s AS (
         SELECT id, coalesce(deactivate_after_failures, ?::int) AS n FROM raw_data_sources WHERE id = ? AND is_active
       ), recent AS (
         SELECT r.status FROM sync_runs r JOIN s ON r.source_id = s.id
         WHERE r.status IN ('success', 'failed') ORDER BY r.queued_at DESC LIMIT (SELECT n FROM s)
       )
       UPDATE raw_data_sources t
       SET is_active = false, updated_at = now(),
           last_warning = 'deactivated: the last ' || s.n || ' runs failed (deactivate_after_failures)'
       FROM s
       WHERE t.id = s.id AND t.is_active AND s.n > 0
         AND (SELECT count(*) FROM recent WHERE status = 'failed') = s.n
       RETURNING s.n AS failures`,
      [defaultFailures, id],
    );
    return result.rows[0];
  }

  /** The run policy columns of a source and its masked connection string (host and port, no secret). */
  async policyRow(id: string): Promise<SourcePolicyRow | undefined> {
    return (await this.knex('raw_data_sources')
      .select(
        'connection_string_masked',
        'max_run_seconds',
        'retry_attempts',
        'retry_backoff_seconds',
        'deactivate_after_failures',
        'concurrency_group',
        'concurrency_limit',
      )
      .where({ id })
      .first()) as SourcePolicyRow | undefined;
  }

  /** A page of active sources in id order after `after` (keyset), for the schedule reconcile. */
  async activeSchedulable(after: string, limit: number): Promise<SchedulableSource[]> {
    return this.knex('raw_data_sources')
      .select(
        'id',
        'name',
        'refresh_interval',
        'schedule_cron',
        'schedule_timezone',
        'schedule_jitter',
        'is_active',
        'retry_attempts',
        'retry_backoff_seconds',
      )
      .where('is_active', true)
      .where('id', '>', after)
      .orderBy('id')
      .limit(limit);
  }

  /**
   * Whether a saved source is active, and since when a payload waiting for it has missed two of its
   * schedule's ticks (`stale_before`): two refresh_intervals ago, or a cron source's second-to-last
   * fire in its zone (a nightly source's payloads are not stale after two hours). Undefined when the
   * source is not saved.
   */
  async activity(
    id: string,
    timeoutMs: number,
    now: Date = new Date(),
  ): Promise<{ is_active: boolean; stale_before: Date } | undefined> {
    const row = (await this.knex('raw_data_sources')
      .select('is_active', 'refresh_interval', 'schedule_cron', 'schedule_timezone')
      .where({ id })
      .first()
      .timeout(timeoutMs, { cancel: true })) as
      (ScheduleSettingsRow & { is_active: boolean; refresh_interval: number }) | undefined;
    if (!row) return undefined;
    return { is_active: row.is_active, stale_before: twoTicksBefore(row, now) };
  }

  private toSource(row: SourceRow): ConnectorSource {
    let secret: string | null = null;
    try {
      if (row.ciphertext !== null)
        secret = this.secrets.decrypt(row.ciphertext, this.sources.associatedData(row.id, SECRET_FIELD));
    } catch (err) {
      // Fails closed, and says why without details an attacker could use.
      if (err instanceof DecryptionError)
        throw new PermanentSyncError(
          'the stored connection string cannot be decrypted (key missing from ENCRYPTION_KEYS, or data altered)',
          'decrypt',
        );
      throw err;
    }
    return {
      id: row.id,
      name: row.name,
      source_type: row.source_type,
      connection_string: secret,
      metadata: row.metadata,
      schema_definition: row.schema_definition,
    };
  }
}

type ScheduleSettingsRow = { schedule_cron: string | null; schedule_timezone: string | null };

/** The instant two schedule ticks before `now` (see SourceStore.activity). */
function twoTicksBefore(row: ScheduleSettingsRow & { refresh_interval: number }, now: Date): Date {
  if (row.schedule_cron) {
    const parsed = parseCron(row.schedule_cron, row.schedule_timezone ?? 'UTC', now);
    if ('expression' in parsed) {
      const { expression } = parsed;
      if (expression.hasPrev()) expression.prev();
      if (expression.hasPrev()) return expression.prev().toDate();
    }
  }
  return new Date(now.getTime() - 2 * row.refresh_interval * 1000);
}
