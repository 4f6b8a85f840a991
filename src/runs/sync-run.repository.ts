import type { Knex } from 'knex';
import type { SyncTrigger } from '../queue/queue-names';

import { syncRunSchema, type RunStatus, type SyncRun } from './sync.contracts';

export type { RunStatus, SyncRun };

/** One sync-all page as openSyncAllPage returns it. */
export interface OpenedPage {
  last_id: string | null;
  scanned: number;
  /** [run id, source id, source name] of each run opened. */
  runs: [string, string, string][];
}

export interface RunCounts {
  records: number;
  bytes: number;
  invalid: number;
}

const RUNS = 'sync_runs';
const SOURCES = 'raw_data_sources';

/**
 * The busy rule, defined once: a run in one of these statuses holds its source, and no second run
 * of that source may start. The partial unique index `sync_runs_one_active_per_source` (a
 * migration) is declared over the same predicate, and every ON CONFLICT below names it as written
 * here so Postgres infers that index.
 */
export const ACTIVE_STATUSES: readonly RunStatus[] = ['queued', 'running'];
const ACTIVE = [...ACTIVE_STATUSES];
/** The busy rule as SQL, for a table alias (`r.status IN (…)`) or none. */
const isActive = (alias?: string) =>
  `${alias ? `${alias}.` : ''}status IN (${ACTIVE_STATUSES.map((s) => `'${s}'`).join(', ')})`;
/** The stored columns of a run: its contract's fields less duration_ms, computed from the times. */
const COLUMNS = syncRunSchema.required.filter((c) => c !== 'duration_ms');

const RETURNED = COLUMNS.map((c) => `r.${c}`).join(', ');

/**
 * start() in one statement. The run row is locked by its UPDATE; the source's is_active is read
 * with it: an inactive source cancels the run instead (attempt and started_at recorded as before).
 * A deactivation that commits after this statement lets the run go on, as it would have a moment
 * later anyway.
 */
const START_SQL = `
  WITH run AS (
    UPDATE ${RUNS} r
       SET attempt = ?,
           started_at = coalesce(r.started_at, now()),
           status = CASE WHEN s.is_active THEN 'running' ELSE 'cancelled' END,
           finished_at = CASE WHEN s.is_active THEN r.finished_at ELSE now() END,
           error = CASE WHEN s.is_active THEN r.error ELSE 'source was deactivated' END
      FROM ${SOURCES} s
     WHERE r.id = ? AND s.id = r.source_id
       -- A running run is taken over only by a later attempt (a stall retry, a hand-back): a second
       -- delivery of the same job (a duplicated copy) carries the same attempt and must not run it again.
       AND (r.status = 'queued' OR (r.status = 'running' AND r.attempt < ?))
    RETURNING ${RETURNED}, s.is_active AS source_active
  ), source AS (
    UPDATE ${SOURCES} s SET sync_status = 'syncing'
      FROM run WHERE s.id = run.source_id AND run.source_active
  )
  SELECT * FROM run`;

/**
 * finish() in one statement: the run closes only while active (and, with an attempt, only if
 * that attempt still holds it); the source follows only when the run did. A successful run of a
 * snapshot source becomes its current snapshot in the same statement: readers following
 * source_snapshots see the previous complete run until this one is complete, never a part of one.
 */
const FINISH_SQL = `
  WITH run AS (
    UPDATE ${RUNS} r
       SET status = ?, error = ?, finished_at = now(),
           records = coalesce(?, r.records), bytes = coalesce(?, r.bytes), invalid = coalesce(?, r.invalid)
     WHERE r.id = ? AND r.attempt = coalesce(?, r.attempt) AND ${isActive('r')}
    RETURNING ${RETURNED}
  ), source AS (
    UPDATE ${SOURCES} s SET sync_status = ?, error_message = ?, last_warning = ?, last_sync_at = now()
      FROM run WHERE s.id = run.source_id
  ), snapshot AS (
    INSERT INTO source_snapshots (source_id, run_id, records, swapped_at)
    SELECT run.source_id, run.id, run.records, now() FROM run JOIN ${SOURCES} s ON s.id = run.source_id
     WHERE run.status = 'success' AND s.sync_mode = 'snapshot'
    ON CONFLICT (source_id) DO UPDATE
      SET run_id = excluded.run_id, records = excluded.records, swapped_at = excluded.swapped_at
  )
  SELECT * FROM run`;

/**
 * cancelActive() in one statement: an active run → cancelled, and its source back to what it was
 * before the run. "Before" is the outcome of the source's latest finished run (success or failed,
 * with that run's error), or `pending` when it has none: a cancelled run says nothing about the
 * source, so the source keeps saying what its last real outcome said. Only a source the run made
 * `syncing` is touched (a queued run never did). No snapshot swap: a cancelled run never becomes
 * a snapshot source's current one. The source's status before the update is returned too.
 */
const CANCEL_SQL = `
  WITH run AS (
    UPDATE ${RUNS} r SET status = 'cancelled', error = ?, finished_at = now()
     WHERE r.id = ? AND ${isActive('r')}
    RETURNING ${RETURNED}
  ), prior AS (
    SELECT p.status, p.error FROM ${RUNS} p JOIN run ON p.source_id = run.source_id
     WHERE p.id <> run.id AND p.status IN ('success', 'failed')
     ORDER BY p.queued_at DESC LIMIT 1
  ), source AS (
    UPDATE ${SOURCES} s
       SET sync_status = coalesce((SELECT status FROM prior), 'pending'),
           error_message = (SELECT error FROM prior)
      FROM run WHERE s.id = run.source_id AND s.sync_status = 'syncing'
    RETURNING s.sync_status
  )
  SELECT run.*, coalesce((SELECT sync_status FROM source), src.sync_status) AS source_status
    FROM run JOIN ${SOURCES} src ON src.id = run.source_id`;

const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : ((v as string | null) ?? null));

function toRun(row: Record<string, unknown>): SyncRun {
  const started = row.started_at as Date | null;
  const finished = row.finished_at as Date | null;
  return {
    ...(row as unknown as SyncRun),
    queued_at: iso(row.queued_at)!,
    started_at: iso(started),
    finished_at: iso(finished),
    duration_ms: started && finished ? finished.getTime() - started.getTime() : null,
    records: Number(row.records),
    bytes: Number(row.bytes),
    invalid: Number(row.invalid),
  };
}

const isUniqueViolation = (err: unknown) => (err as { code?: string })?.code === '23505';

/**
 * Run history and the source status moves that go with it. Each transition is one conditional
 * statement (or one transaction), so concurrent workers and retries cannot interleave badly; the
 * partial unique index `sync_runs_one_active_per_source` makes a second active run impossible.
 */
export class SyncRunRepository {
  constructor(private readonly knex: Knex) {}

  /** Opens a queued run; undefined when the source already has an active one. */
  async createQueued(run: {
    id: string;
    sourceId: string;
    trigger: SyncTrigger;
    batchId?: string;
  }): Promise<SyncRun | undefined> {
    try {
      // Raw SQL: this runs on every sync request, and the query builder was a visible part of its CPU.
      const result = await this.knex.raw(
        `INSERT INTO ${RUNS} (id, source_id, trigger, job_id, batch_id) VALUES (?, ?, ?, ?, ?)
         RETURNING ${COLUMNS.join(', ')}`,
        [run.id, run.sourceId, run.trigger, run.id, run.batchId ?? null],
      );
      return toRun((result.rows as Record<string, unknown>[])[0]!);
    } catch (err) {
      if (isUniqueViolation(err)) return undefined;
      throw err;
    }
  }

  /** A scheduler tick opens its run when it fires, if the source is still active and idle. */
  async createForTick(id: string, sourceId: string, jobId: string): Promise<SyncRun | undefined> {
    const result = await this.knex.raw(
      `INSERT INTO ${RUNS} (id, source_id, trigger, job_id)
       SELECT ?, s.id, 'schedule', ? FROM ${SOURCES} s WHERE s.id = ? AND s.is_active
       ON CONFLICT (source_id) WHERE ${isActive()} DO NOTHING
       RETURNING ${COLUMNS.join(', ')}`,
      [id, jobId, sourceId],
    );
    const row = (result.rows as Record<string, unknown>[])[0];
    return row ? toRun(row) : undefined;
  }

  /**
   * A finished job run again (bull-board's Retry, job.retry()) opens a new manual run for its
   * source, as createForTick does, in one statement that also says why it could not: the source
   * is gone or inactive, or another run holds it (that run's id and status).
   */
  async openRetry(
    id: string,
    sourceId: string,
    jobId: string,
  ): Promise<
    | { run: SyncRun }
    | { run?: undefined; source: 'deleted' | 'inactive' | 'busy'; busy?: { id: string; status: string } }
  > {
    const result = await this.knex.raw(
      `WITH src AS (SELECT id, is_active FROM ${SOURCES} WHERE id = ?),
       busy AS (SELECT id, status FROM ${RUNS} WHERE source_id = ? AND ${isActive()}),
       opened AS (
         INSERT INTO ${RUNS} (id, source_id, trigger, job_id)
         SELECT ?, src.id, 'manual', ? FROM src WHERE src.is_active
         ON CONFLICT (source_id) WHERE ${isActive()} DO NOTHING
         RETURNING ${COLUMNS.join(', ')}
       )
       SELECT (SELECT row_to_json(opened) FROM opened) AS run, (SELECT is_active FROM src) AS active,
              (SELECT row_to_json(busy) FROM busy) AS busy`,
      [sourceId, sourceId, id, jobId],
    );
    const row = result.rows[0] as {
      run: Record<string, unknown> | null;
      active: boolean | null;
      busy: { id: string; status: string } | null;
    };
    if (row.run) {
      // row_to_json gives timestamps as text: back to Dates, as toRun expects from the driver.
      for (const k of ['queued_at', 'started_at', 'finished_at'])
        if (typeof row.run[k] === 'string') row.run[k] = new Date(row.run[k] as string);
      return { run: toRun(row.run) };
    }
    if (row.active === null) return { source: 'deleted' };
    if (!row.active) return { source: 'inactive' };
    return { source: 'busy', ...(row.busy ? { busy: row.busy } : {}) };
  }

  /**
   * Opens one sync-all page: queued runs for the active sources after `afterId` (keyset by id) that
   * have none, in one INSERT … SELECT (the partial unique index skips busy ones). Returns the
   * page's last id and size (to go on) and the runs it opened as [run id, source id, name].
   */
  async openSyncAllPage(batchId: string, afterId: string, pageSize: number): Promise<OpenedPage> {
    const result = await this.knex.raw(
      `WITH page AS (
         SELECT id, name FROM ${SOURCES} WHERE is_active AND id > ? ORDER BY id LIMIT ?
       ), opened AS (
         INSERT INTO ${RUNS} (id, source_id, trigger, job_id, batch_id)
         SELECT n.run_id, n.id, 'sync_all', n.run_id::text, ? FROM (SELECT gen_random_uuid() AS run_id, id FROM page) n
         ON CONFLICT (source_id) WHERE ${isActive()} DO NOTHING
         RETURNING id, source_id
       )
       SELECT (SELECT max(id::text) FROM page) AS last_id, (SELECT count(*) FROM page)::int AS scanned,
              coalesce((SELECT json_agg(json_build_array(o.id, o.source_id, p.name))
                          FROM opened o JOIN page p ON p.id = o.source_id), '[]') AS runs`,
      [afterId, pageSize, batchId],
    );
    return result.rows[0] as OpenedPage;
  }

  /** Records a sync-all request before its job is enqueued (see claimBatch). */
  async openBatch(batchId: string): Promise<void> {
    await this.knex('sync_batches').insert({ id: batchId });
  }

  /** The API answered 503 for this batch: its job, should Redis still run it later, must do nothing. */
  async cancelBatch(batchId: string): Promise<void> {
    await this.knex('sync_batches').update({ status: 'cancelled' }).where({ id: batchId, status: 'queued' });
  }

  /**
   * The fan-out job takes its batch: false when the API cancelled it. A batch with no row (a job
   * queued before batches were recorded) runs, as it always did; a retry finds its batch running.
   */
  async claimBatch(batchId: string): Promise<boolean> {
    const result = await this.knex.raw(
      `WITH claimed AS (
         UPDATE sync_batches SET status = 'running', started_at = coalesce(started_at, now())
          WHERE id = ? AND status IN ('queued', 'running') RETURNING id
       )
       SELECT EXISTS (SELECT 1 FROM claimed) AS claimed,
              EXISTS (SELECT 1 FROM sync_batches WHERE id = ?) AS known`,
      [batchId, batchId],
    );
    const row = result.rows[0] as { claimed: boolean; known: boolean };
    return row.claimed || !row.known;
  }

  /** What a sync-all would do now: active sources that are idle (queued) and busy (skipped). */
  async syncAllCounts(): Promise<{ queued: number; skipped: number }> {
    const counts = await this.knex.raw(
      `SELECT count(*) FILTER (WHERE NOT busy)::int AS queued, count(*) FILTER (WHERE busy)::int AS skipped
       FROM (SELECT EXISTS (SELECT 1 FROM ${RUNS} r WHERE r.source_id = s.id AND ${isActive('r')}) AS busy
             FROM ${SOURCES} s WHERE s.is_active) t`,
    );
    return counts.rows[0] as { queued: number; skipped: number };
  }

  async get(id: string): Promise<SyncRun | undefined> {
    const row = await this.knex(RUNS).select(COLUMNS).where({ id }).first();
    return row ? toRun(row) : undefined;
  }

  async activeRun(sourceId: string): Promise<SyncRun | undefined> {
    const row = await this.knex(RUNS)
      .select(COLUMNS)
      .where({ source_id: sourceId })
      .whereIn('status', ACTIVE)
      .first();
    return row ? toRun(row) : undefined;
  }

  /**
   * queued|running → running, and the source → syncing, together. Undefined when the run is no
   * longer active (finished, cancelled, deleted) or its source was deactivated meanwhile (the run
   * is then cancelled). One statement, not a transaction: it runs on every sync, and a transaction
   * costs four round trips plus knex's per-transaction setup (with finish() also one statement, a
   * no-op sync went from ~1.7 to ~0.7 ms of worker CPU in bench/sync-e2e.bench.ts). A
   * data-modifying CTE always runs to completion and commits with its statement, so the two
   * updates stay atomic.
   */
  async start(id: string, attempt: number): Promise<SyncRun | undefined> {
    const result = await this.knex.raw(START_SQL, [attempt, id, attempt]);
    const row = (result.rows as (Record<string, unknown> & { source_active: boolean })[])[0];
    if (!row?.source_active) return undefined;
    delete (row as Record<string, unknown>).source_active;
    return toRun(row);
  }

  /**
   * `attempt`, when given, closes the run only if that attempt still holds it (see Landing.land).
   * `warning` (some records were quarantined) goes to the source's last_warning; none clears it.
   */
  async succeed(
    id: string,
    counts?: RunCounts,
    attempt?: number,
    warning?: string,
  ): Promise<SyncRun | undefined> {
    return this.finish(id, 'success', null, counts, attempt, warning);
  }

  async fail(id: string, error: string, counts?: RunCounts, attempt?: number): Promise<SyncRun | undefined> {
    return this.finish(id, 'failed', error, counts, attempt);
  }

  /**
   * Closes an active run and moves its source to the same outcome: one statement (see start), so
   * both rows change together or not at all, and both carry the same now().
   */
  private async finish(
    id: string,
    status: 'success' | 'failed',
    error: string | null,
    counts?: RunCounts,
    attempt?: number,
    warning?: string,
  ): Promise<SyncRun | undefined> {
    const result = await this.knex.raw(FINISH_SQL, [
      status,
      error,
      counts?.records ?? null,
      counts?.bytes ?? null,
      counts?.invalid ?? null,
      id,
      attempt ?? null,
      status,
      error,
      warning ?? null,
    ]);
    const row = (result.rows as Record<string, unknown>[])[0];
    return row ? toRun(row) : undefined;
  }

  /** A run that never reached a worker (enqueue failed): closed without touching the source. */
  async cancel(id: string, error: string): Promise<void> {
    await this.knex(RUNS)
      .update({ status: 'cancelled', error, finished_at: this.knex.fn.now() })
      .where({ id })
      .whereIn('status', ACTIVE);
  }

  /**
   * A queued or running run → cancelled, its source back to its status before the run (see
   * CANCEL_SQL). Undefined when the run is no longer active: it finished, or was cancelled already.
   */
  async cancelActive(
    id: string,
    reason: string,
  ): Promise<{ run: SyncRun; sourceStatus: string } | undefined> {
    const result = await this.knex.raw(CANCEL_SQL, [reason, id]);
    const row = (result.rows as (Record<string, unknown> & { source_status: string })[])[0];
    if (!row) return undefined;
    const sourceStatus = row.source_status;
    delete (row as Record<string, unknown>).source_status;
    return { run: toRun(row), sourceStatus };
  }

  /** A failed attempt that will be retried: the run stays running, the error is kept. */
  async noteRetry(id: string, error: string, attempt: number): Promise<void> {
    await this.knex(RUNS).update({ error }).where({ id, attempt, status: 'running' });
  }

  async list(sourceId: string, limit: number, offset: number): Promise<{ data: SyncRun[]; total: number }> {
    const [rows, count] = await Promise.all([
      this.knex(RUNS)
        .select(COLUMNS)
        .where({ source_id: sourceId })
        .orderBy([
          { column: 'queued_at', order: 'desc' },
          { column: 'id', order: 'desc' },
        ])
        .limit(limit)
        .offset(offset),
      this.knex(RUNS).where({ source_id: sourceId }).count({ n: '*' }).first(),
    ]);
    return { data: rows.map(toRun), total: Number(count?.n ?? 0) };
  }

  /**
   * Active runs queued before `before`, candidates for the reconciler, a page at a time in id
   * order (`afterId` continues after the last page): a page full of runs legitimately waiting in a
   * long queue (a sync-all) must not hide the lost ones behind it.
   */
  async activeBefore(before: Date, limit: number, afterId?: string): Promise<SyncRun[]> {
    const query = this.knex(RUNS)
      .select(COLUMNS)
      .whereIn('status', ACTIVE)
      .where('queued_at', '<', before)
      .orderBy('id')
      .limit(limit);
    if (afterId) query.where('id', '>', afterId);
    return (await query).map(toRun);
  }

  /**
   * Sources marked syncing with no active run (a crash between two statements, a manual edit, or a
   * run that START_SQL cancelled because its source had just been deactivated). One whose latest
   * run was cancelled goes back to its status before that run, as a cancel leaves it (CANCEL_SQL);
   * any other is failed, promising a next schedule only when it has one (an active source).
   */
  async repairOrphanedSyncing(): Promise<string[]> {
    const result = await this.knex.raw(
      `WITH orphan AS (
         SELECT s.id FROM ${SOURCES} s
          WHERE s.sync_status = 'syncing'
            AND NOT EXISTS (SELECT 1 FROM ${RUNS} r WHERE r.source_id = s.id AND ${isActive('r')})
       ), latest AS (
         SELECT DISTINCT ON (r.source_id) r.source_id, r.status FROM ${RUNS} r JOIN orphan o ON o.id = r.source_id
          ORDER BY r.source_id, r.queued_at DESC
       ), prior AS (
         SELECT DISTINCT ON (r.source_id) r.source_id, r.status, r.error FROM ${RUNS} r JOIN orphan o ON o.id = r.source_id
          WHERE r.status IN ('success', 'failed') ORDER BY r.source_id, r.queued_at DESC
       )
       UPDATE ${SOURCES} s
          SET sync_status = CASE WHEN l.status = 'cancelled' THEN coalesce(p.status, 'pending') ELSE 'failed' END,
              error_message = CASE
                WHEN l.status = 'cancelled' THEN p.error
                WHEN s.is_active THEN 'sync was interrupted; it will run again at its next schedule'
                ELSE 'sync was interrupted; the source is inactive, so it will not run again until it is activated' END
         FROM orphan o LEFT JOIN latest l ON l.source_id = o.id LEFT JOIN prior p ON p.source_id = o.id
        WHERE s.id = o.id AND s.sync_status = 'syncing'
          AND NOT EXISTS (SELECT 1 FROM ${RUNS} r WHERE r.source_id = s.id AND ${isActive('r')})
       RETURNING s.id`,
    );
    return (result.rows as { id: string }[]).map((r) => r.id);
  }
}
