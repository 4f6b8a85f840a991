import type { Knex } from 'knex';
import type { Logger } from '../logger';

/** The partitioned landing tables and the column each is partitioned on (one partition a UTC day). */
export const PARTITIONED_TABLES = [
  { table: 'raw_records', key: 'ingested_at' },
  { table: 'quarantined_records', key: 'quarantined_at' },
] as const;

const DAY_MS = 86_400_000;
/** Days of partitions kept ready ahead of today: a worker stopped for less than this lands nothing into a gap. */
export const AHEAD_DAYS = 7;
/** Rows one DELETE removes when a source's own retention is shorter than the global one. */
const DELETE_BATCH = 5000;
/** DDL waits at most this long for a lock, so it never queues readers and writers behind it for longer. */
const LOCK_TIMEOUT = '1s';

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
const dayStart = (t: number) => Math.floor(t / DAY_MS) * DAY_MS;
const ymd = (t: number) => new Date(t).toISOString().slice(0, 10).replace(/-/g, '');

export interface Partition {
  table: string;
  name: string;
  /** Exclusive upper bound (null: MAXVALUE). */
  upper: Date | null;
  /** Detached concurrently, but the detach was interrupted: it must be finalized. */
  detachPending: boolean;
}

export interface RetentionReport {
  created: string[];
  dropped: string[];
  /** Rows deleted for sources whose retention_days is shorter than the global retention. */
  deleted: number;
}

/**
 * Keeps the partitions of the landing tables ahead of time and applies retention: whole days past
 * the global RETENTION_DAYS are detached (CONCURRENTLY: readers and writers go on) and dropped; a
 * source whose own retention_days is shorter has its older rows deleted in small batches, each its
 * own short transaction. The effective retention of a source is the shorter of the two.
 */
export class RecordRetention {
  constructor(
    private readonly knex: Knex,
    private readonly options: { retentionDays: number; logger: Logger },
  ) {}

  /** Everything the maintenance timer does, in order; each step logs and goes on if another fails. */
  async maintain(now = new Date()): Promise<RetentionReport> {
    const report: RetentionReport = { created: [], dropped: [], deleted: 0 };
    const step = async (name: string, work: () => Promise<void>) => {
      try {
        await work();
      } catch (err) {
        this.options.logger.error({ err }, `record retention: ${name} failed`);
      }
    };
    await step('creating partitions', async () => {
      report.created = await this.ensurePartitions(now);
    });
    await step('dropping partitions', async () => {
      report.dropped = await this.dropExpired(now);
    });
    await step('deleting per-source', async () => {
      report.deleted = await this.deleteBySource(now);
    });
    if (report.created.length || report.dropped.length || report.deleted)
      this.options.logger.info(report, 'record retention applied');
    return report;
  }

  async partitions(): Promise<Partition[]> {
    const { rows } = await this.knex.raw<{ rows: Partition[] }>(
      `SELECT p.relname AS "table", c.relname AS name, i.inhdetachpending AS "detachPending",
          (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS upper
         FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = ANY(?) AND p.relnamespace = current_schema()::regnamespace
        ORDER BY p.relname, upper NULLS LAST`,
      [PARTITIONED_TABLES.map((t) => t.table)],
    );
    return rows;
  }

  /**
   * Creates the partitions of today and the next AHEAD_DAYS days that are missing. Each is made as
   * a plain table and then attached, which locks the parent only in SHARE UPDATE EXCLUSIVE mode
   * (CREATE TABLE … PARTITION OF would take ACCESS EXCLUSIVE and stop every read and write).
   */
  async ensurePartitions(now = new Date()): Promise<string[]> {
    const existing = new Set((await this.partitions()).map((p) => p.name));
    const created: string[] = [];
    const today = dayStart(now.getTime());
    for (const { table } of PARTITIONED_TABLES)
      for (let day = today; day <= today + AHEAD_DAYS * DAY_MS; day += DAY_MS) {
        const name = `${table}_p${ymd(day)}`;
        if (existing.has(name)) continue;
        await this.knex.transaction(async (trx) => {
          await trx.raw(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
          await trx.raw(
            `CREATE TABLE ${q(name)} (LIKE ${q(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)`,
          );
          // DDL takes no bind parameters; the bounds are ISO strings made here.
          await trx.raw(
            `ALTER TABLE ${q(table)} ATTACH PARTITION ${q(name)}
              FOR VALUES FROM ('${new Date(day).toISOString()}') TO ('${new Date(day + DAY_MS).toISOString()}')`,
          );
        });
        created.push(name);
      }
    return created;
  }

  /**
   * Detaches and drops every partition wholly older than the global retention. DETACH … CONCURRENTLY
   * takes no lock that blocks reads or inserts; it waits for queries already using the partition.
   */
  async dropExpired(now = new Date()): Promise<string[]> {
    const days = this.options.retentionDays;
    const partitions = await this.partitions();
    const dropped: string[] = [];
    // A detach interrupted earlier (a worker killed mid-way) is finished first, whatever the retention.
    for (const p of partitions.filter((x) => x.detachPending)) {
      await this.knex.raw(`ALTER TABLE ${q(p.table)} DETACH PARTITION ${q(p.name)} FINALIZE`);
      await this.dropTable(p.name);
      dropped.push(p.name);
    }
    if (!days) return dropped;
    const cutoff = now.getTime() - days * DAY_MS;
    for (const p of partitions) {
      if (p.detachPending || !p.upper || p.upper.getTime() > cutoff) continue;
      if (p.table === 'raw_records') await this.keepCurrentSnapshots(p.name, now);
      // Not in a transaction: CONCURRENTLY runs its own two.
      await this.knex.raw(`ALTER TABLE ${q(p.table)} DETACH PARTITION ${q(p.name)} CONCURRENTLY`);
      await this.dropTable(p.name);
      dropped.push(p.name);
    }
    return dropped;
  }

  /**
   * The rows of a snapshot that is still current (source_snapshots) are what `view=current`
   * serves: retention never takes them. Before their day is dropped they move into `now`'s
   * partition (an UPDATE of the partition key moves a row), so they live on while their snapshot
   * is current; the next complete snapshot lets them expire like any other row.
   */
  private async keepCurrentSnapshots(partition: string, now: Date): Promise<void> {
    const moved = await this.knex.raw<{ rowCount: number }>(
      `UPDATE raw_records r SET ingested_at = ?
         FROM source_snapshots s
        WHERE r.tableoid = ?::regclass AND r.source_id = s.source_id AND r.run_id = s.run_id`,
      [now, partition],
    );
    if (moved.rowCount)
      this.options.logger.info({ partition, rows: moved.rowCount }, 'kept the rows of current snapshots');
  }

  private async dropTable(name: string): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await trx.raw(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
      await trx.raw(`DROP TABLE IF EXISTS ${q(name)}`);
    });
  }

  /**
   * For sources whose retention_days is shorter than the global retention (or with no global one),
   * deletes their rows past it, DELETE_BATCH at a time: each batch a short transaction, so landing
   * and reads are never held up for long. Rows are found through (source_id, id), the oldest first.
   */
  async deleteBySource(now = new Date()): Promise<number> {
    const global = this.options.retentionDays;
    const sources = await this.knex('raw_data_sources')
      .select<{ id: string; retention_days: number }[]>('id', 'retention_days')
      .whereNotNull('retention_days')
      .modify((b) => {
        if (global) void b.where('retention_days', '<', global);
      });
    let deleted = 0;
    for (const source of sources) {
      const cutoff = new Date(now.getTime() - source.retention_days * DAY_MS);
      for (const { table, key } of PARTITIONED_TABLES)
        for (;;) {
          const { rowCount } = await this.knex.raw<{ rowCount: number }>(
            `DELETE FROM ${q(table)} r USING (
                SELECT id, ${q(key)} AS k FROM ${q(table)} t
                 WHERE source_id = ? AND ${q(key)} < ?
                   -- A current snapshot's rows stay (see keepCurrentSnapshots).
                   ${table === 'raw_records' ? 'AND NOT EXISTS (SELECT 1 FROM source_snapshots s WHERE s.source_id = t.source_id AND s.run_id = t.run_id)' : ''}
                 ORDER BY id LIMIT ${DELETE_BATCH}
              ) old
              WHERE r.id = old.id AND r.${q(key)} = old.k`,
            [source.id, cutoff],
          );
          deleted += rowCount;
          if (rowCount < DELETE_BATCH) break;
        }
    }
    return deleted;
  }
}
