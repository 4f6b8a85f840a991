import type { Knex } from 'knex';
import { dedupSettings } from './sync-mode';

type Settings = { sync_mode?: unknown; metadata?: unknown };

const metadataOf = (row: Settings) => row.metadata as Record<string, unknown> | null | undefined;

/** The dedup key of a source as stored, or undefined when it is not in dedup mode. */
function dedupKey(row: Settings): string | undefined {
  if (row.sync_mode !== 'dedup') return undefined;
  return JSON.stringify(dedupSettings(metadataOf(row))?.primaryKey ?? null);
}

/**
 * What a source's current view was built from and no longer holds once its sync_mode (or dedup
 * key) changes, removed in the transaction of the update itself (CrudRepository's inUpdate), so no
 * reader ever sees the new mode beside the old mode's rows:
 * - leaving dedup, or keeping it with another primary_key: the source's raw_current rows (keys of
 *   the old rule, or no rule at all). A dedup run still landing meanwhile adds none back: its batches
 *   check the mode and key under FOR SHARE of the source row (runs/landing.ts, dedup_still).
 * - leaving snapshot: its source_snapshots row. A snapshot run that succeeds later swaps only while
 *   the source is still in snapshot mode (SyncRunRepository's FINISH_SQL).
 * Landed history (raw_records, quarantined_records) is never touched: it stays, whatever the mode.
 */
export async function clearWhatNoLongerApplies(
  trx: Knex.Transaction,
  sourceId: string,
  before: Settings,
  after: Settings,
): Promise<void> {
  const key = dedupKey(before);
  if (key !== undefined && key !== dedupKey(after))
    await trx('raw_current').where({ source_id: sourceId }).delete();
  if (before.sync_mode === 'snapshot' && after.sync_mode !== 'snapshot')
    await trx('source_snapshots').where({ source_id: sourceId }).delete();
}
