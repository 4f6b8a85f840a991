import type { Knex } from 'knex';

/** What a source has landed: the numbers a refused delete answers with. */
export interface SourceData {
  landed_records: number;
  quarantined_records: number;
  runs: number;
}

export interface PurgeProgress {
  records: number;
  quarantined: number;
}

/** Tables a purge empties of one source, each with the counter of `source_purges` it moves. */
const PURGED = [
  { table: 'raw_records', counter: 'records_removed', key: 'records' },
  { table: 'quarantined_records', counter: 'quarantined_removed', key: 'quarantined' },
] as const;

/**
 * The data of deleted sources, removed after the source row in small batches (records no longer
 * cascade with the source: one DELETE of millions of rows would hold its locks for minutes). A
 * purge is recorded in `source_purges` before the source row goes, so a crash or a lost job
 * leaves a row that the worker's repair finds and finishes.
 */
export class SourcePurges {
  constructor(private readonly knex: Knex) {}

  /** Exact counts of what the source has landed (index scans on (source_id, id)). */
  async data(sourceId: string): Promise<SourceData> {
    const result = await this.knex.raw(
      `SELECT (SELECT count(*) FROM raw_records WHERE source_id = :id)::bigint AS landed_records,
              (SELECT count(*) FROM quarantined_records WHERE source_id = :id)::bigint AS quarantined_records,
              (SELECT count(*) FROM sync_runs WHERE source_id = :id)::bigint AS runs`,
      { id: sourceId },
    );
    const row = result.rows[0] as Record<keyof SourceData, string>;
    return {
      landed_records: Number(row.landed_records),
      quarantined_records: Number(row.quarantined_records),
      runs: Number(row.runs),
    };
  }

  /** Records that the source's data is to be purged; idempotent (a repeated delete restarts nothing). */
  async request(sourceId: string, sourceName: string): Promise<void> {
    await this.knex('source_purges')
      .insert({ source_id: sourceId, source_name: sourceName })
      .onConflict('source_id')
      .merge({ finished_at: null });
  }

  /** Purges not finished yet, oldest first (the repair re-queues them). */
  async pending(limit = 100): Promise<string[]> {
    return this.knex('source_purges')
      .whereNull('finished_at')
      .orderBy('requested_at')
      .limit(limit)
      .pluck('source_id');
  }

  /** A purge whose source still exists (its delete failed after the purge was recorded) is dropped. */
  async cancel(sourceId: string): Promise<void> {
    await this.knex('source_purges').where({ source_id: sourceId }).delete();
  }

  /**
   * Deletes at most `batchSize` rows of the source from each table, lowest ids first: each statement
   * touches one small key range of the (source_id, id) index and locks only rows of a deleted
   * source, so other sources land meanwhile. Answers how many rows went.
   */
  async deleteBatch(sourceId: string, batchSize: number): Promise<PurgeProgress> {
    const out: PurgeProgress = { records: 0, quarantined: 0 };
    for (const { table, counter, key } of PURGED) {
      const result = await this.knex.raw(
        `WITH doomed AS (
           SELECT id FROM ?? WHERE source_id = ? ORDER BY id LIMIT ?
         ), gone AS (
           DELETE FROM ?? t USING doomed WHERE t.id = doomed.id RETURNING 1
         ), counted AS (
           UPDATE source_purges SET ?? = ?? + (SELECT count(*) FROM gone) WHERE source_id = ?
         )
         SELECT count(*)::int AS removed FROM gone`,
        [table, sourceId, batchSize, table, counter, counter, sourceId],
      );
      out[key] = (result.rows[0] as { removed: number } | undefined)?.removed ?? 0;
    }
    return out;
  }

  async finish(sourceId: string): Promise<void> {
    await this.knex('source_purges')
      .where({ source_id: sourceId })
      .update({ finished_at: this.knex.fn.now() });
  }
}
