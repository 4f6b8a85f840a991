import type { Knex } from 'knex';
import type { EventBus, EventInput, EventType } from '../events/event-bus';
import type { ListFilter } from '../http/crud/resource';
import type { Logger } from '../logger';

const SOURCES = 'raw_data_sources';
const BREACHES = 'source_freshness_breaches';

/**
 * When `s` last synced successfully: the newest successful run's end (sync_runs_last_success_index
 * answers it from the index). last_sync_at is no use here: a failed run sets it too.
 */
const lastSuccess = (s: string) =>
  `(SELECT max(r.finished_at) FROM sync_runs r WHERE r.source_id = ${s}.id AND r.status = 'success')`;

/** Age of `s`'s data: since its last successful sync, or since it was created if it never had one. */
const age = (s: string) => `coalesce(${lastSuccess(s)}, ${s}.created_at)`;

/**
 * The one definition of "stale", shared by the check, the list filter and the metric: an active
 * source with a freshness_target_seconds whose last successful sync (or creation, before its first)
 * is older than that target. An inactive source is not synced, so it is not watched either.
 */
export const staleCondition = (s: string) =>
  // coalesce: a null is_active must not make the condition null (then NOT would not hold either).
  `coalesce(${s}.freshness_target_seconds IS NOT NULL AND ${s}.is_active AND ` +
  `${age(s)} < now() - ${s}.freshness_target_seconds * interval '1 second', false)`;

/** GET /raw-data-sources?stale=true|false (a source without a target is never stale). */
export const staleListFilter: ListFilter = {
  name: 'stale',
  schema: {
    type: 'boolean',
    description:
      'true: only active sources whose last successful sync is older than their freshness_target_seconds; false: every other source.',
  },
  apply(builder, value) {
    const condition = staleCondition(SOURCES);
    if (value === true) builder.whereRaw(condition);
    else builder.whereRaw(`NOT ${condition}`);
  },
};

/** Why a breach ended: usually a successful sync, else a change of settings. */
function recoveryReason(r: {
  breached_at: Date;
  last_success_at: Date | null;
  target: number | null;
  is_active: boolean;
}): 'synced' | 'deactivated' | 'target_removed' | 'target_raised' {
  if (r.last_success_at && r.last_success_at > r.breached_at) return 'synced';
  if (!r.is_active) return 'deactivated';
  return r.target === null ? 'target_removed' : 'target_raised';
}

/** What the check did: the ids of the sources it found newly stale, and of those fresh again. */
export interface FreshnessReport {
  breached: string[];
  recovered: string[];
}

/** At most this many sources get a staleness series: the stalest first (see the metric's doc). */
export const STALENESS_SERIES_MAX = 1000;

/**
 * Freshness of sources against their freshness_target_seconds. `check()` runs on the worker's
 * timer, one worker at a time: a source that became stale gets a source_freshness_breaches row
 * and `freshness.breached` (once: the row's key stops a second), and a breached source that is
 * fresh again loses its row and gets `freshness.recovered`.
 */
export class SourceFreshness {
  constructor(
    private readonly knex: Knex,
    private readonly events: Pick<EventBus, 'publishMany'>,
    private readonly logger?: Logger,
  ) {}

  async check(): Promise<FreshnessReport> {
    // One statement: only the rows it inserts are new breaches, so a breach fires exactly once.
    const breached = await this.knex.raw<{
      rows: { source_id: string; last_success_at: Date | null; target: number }[];
    }>(
      `WITH stale AS (
         SELECT s.id, ${lastSuccess('s')} AS last_success_at, s.freshness_target_seconds AS target
           FROM ${SOURCES} s WHERE ${staleCondition('s')}
       ), inserted AS (
         INSERT INTO ${BREACHES} (source_id, last_success_at)
         SELECT id, last_success_at FROM stale
         ON CONFLICT (source_id) DO NOTHING
         RETURNING source_id
       )
       SELECT stale.id AS source_id, stale.last_success_at, stale.target
         FROM stale JOIN inserted ON inserted.source_id = stale.id`,
    );
    const recovered = await this.knex.raw<{
      rows: {
        source_id: string;
        breached_at: Date;
        last_success_at: Date | null;
        target: number | null;
        is_active: boolean;
      }[];
    }>(
      `DELETE FROM ${BREACHES} b USING ${SOURCES} s
        WHERE s.id = b.source_id AND NOT ${staleCondition('s')}
       RETURNING b.source_id, b.breached_at, ${lastSuccess('s')} AS last_success_at,
                 s.freshness_target_seconds AS target, s.is_active`,
    );
    const iso = (d: Date | null) => d?.toISOString() ?? null;
    const events: [EventType, EventInput][] = [];
    for (const r of breached.rows)
      events.push([
        'freshness.breached',
        {
          source_id: r.source_id,
          data: { freshness_target_seconds: r.target, last_success_at: iso(r.last_success_at) },
        },
      ]);
    for (const r of recovered.rows)
      events.push([
        'freshness.recovered',
        {
          source_id: r.source_id,
          data: {
            reason: recoveryReason(r),
            freshness_target_seconds: r.target,
            last_success_at: iso(r.last_success_at),
            breached_at: r.breached_at.toISOString(),
          },
        },
      ]);
    await this.events.publishMany(events);
    const report = {
      breached: breached.rows.map((r) => r.source_id),
      recovered: recovered.rows.map((r) => r.source_id),
    };
    if (report.breached.length || report.recovered.length)
      this.logger?.info(
        { breached: report.breached.length, recovered: report.recovered.length },
        'source freshness checked',
      );
    return report;
  }

  /**
   * Seconds since each watched source (active, with a target) last synced successfully, stalest
   * first, at most STALENESS_SERIES_MAX of them: the staleness metric's series.
   */
  async staleness(): Promise<{ sourceId: string; seconds: number }[]> {
    const rows = await this.knex.raw<{ rows: { id: string; seconds: number }[] }>(
      `SELECT s.id, extract(epoch FROM now() - ${age('s')})::float8 AS seconds
         FROM ${SOURCES} s WHERE s.freshness_target_seconds IS NOT NULL AND s.is_active
        ORDER BY seconds DESC, s.id LIMIT ?`,
      [STALENESS_SERIES_MAX],
    );
    return rows.rows.map((r) => ({ sourceId: r.id, seconds: Math.max(0, r.seconds) }));
  }
}
