import type { Knex } from 'knex';
import type { Row } from '../http/crud/resource';
import type { Logger } from '../logger';

export const COUNTS_TABLE = 'raw_data_source_counts';
/** The ledger's key: the list filters it can answer (column names, as CrudRepository passes them). */
export const COUNTED_COLUMNS: ReadonlySet<string> = new Set(['source_type', 'is_active', 'sync_status']);
/** One row per key after a fold; at most 6 × 2 × 4 keys exist, so this is "a few writes' worth" more. */
export const FOLD_ABOVE_ROWS = 500;
/** Any constant works: it only keeps two folds from queueing behind each other's row locks. */
const FOLD_LOCK_KEY = 0x5c0c0417;

/**
 * Exact counts of raw_data_sources per list filter, read from the raw_data_source_counts ledger
 * (migration 20261126110100): a sum over at most a few hundred small rows instead of count(*) over
 * the filtered set. Writers append signed deltas through triggers; `fold()` collapses them to one
 * row per key and runs, unawaited, when a count sees the ledger has grown. Workers may also call it
 * on a schedule so the ledger stays small between reads.
 */
export class SourceCounts {
  private folding: Promise<void> | undefined;

  constructor(
    private readonly knex: Knex,
    private readonly logger?: Logger,
  ) {}

  /** How many sources match `filters` (column → value); exact, in the reading statement's snapshot. */
  async count(filters: Row): Promise<number> {
    const entries = Object.entries(filters).filter(([, value]) => value !== undefined);
    // A filter the ledger is not keyed by (a column added to the list later): count the rows.
    if (entries.some(([column]) => !COUNTED_COLUMNS.has(column))) {
      const [row] = await this.knex('raw_data_sources').where(filters).count({ total: '*' });
      return Number(row?.total ?? 0);
    }
    const condition = entries.length ? entries.map(() => '?? = ?').join(' AND ') : 'true';
    const result = await this.knex.raw<{ rows: Array<{ total: number; rows: number }> }>(
      `SELECT coalesce(sum(n) FILTER (WHERE ${condition}), 0)::bigint AS total, count(*)::int AS rows FROM ??`,
      [...entries.flat(), COUNTS_TABLE] as Knex.RawBinding[],
    );
    const { total = 0, rows = 0 } = result.rows[0] ?? {};
    if (rows > FOLD_ABOVE_ROWS) this.foldInBackground();
    return total;
  }

  /**
   * Replaces the ledger rows this statement can see by one sum per key. Correct beside concurrent
   * writers and folds: it re-inserts exactly the sum of the rows its DELETE removed, in one
   * transaction, so every snapshot sees either all the old rows or their sums. Returns whether it ran.
   */
  async fold(): Promise<boolean> {
    return this.knex.transaction(async (trx) => {
      const lock = await trx.raw<{ rows: Array<{ locked: boolean }> }>(
        'SELECT pg_try_advisory_xact_lock(?) AS locked',
        [FOLD_LOCK_KEY],
      );
      if (!lock.rows[0]?.locked) return false;
      await trx.raw(
        `WITH folded AS (DELETE FROM ?? RETURNING source_type, is_active, sync_status, n)
         INSERT INTO ?? (source_type, is_active, sync_status, n)
         SELECT source_type, is_active, sync_status, sum(n) FROM folded
         GROUP BY 1, 2, 3 HAVING sum(n) <> 0`,
        [COUNTS_TABLE, COUNTS_TABLE],
      );
      return true;
    });
  }

  /** Resolves when no fold started by this instance is running (tests and shutdown wait on it). */
  async settled(): Promise<void> {
    await this.folding;
  }

  private foldInBackground(): void {
    this.folding ??= this.fold()
      .then(
        () => undefined,
        (err: unknown) => this.logger?.warn({ err }, 'folding raw_data_source_counts failed'),
      )
      .finally(() => {
        this.folding = undefined;
      });
  }
}
