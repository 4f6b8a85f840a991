import type { Readable } from 'node:stream';
import type { Knex } from 'knex';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { sendCancelRequest } from '../db/cancel-request';
import type { QuarantinedRecord, RawRecord } from './records.contracts';

/** Which rows a read covers; every filter is optional but the source. */
export interface RecordFilter {
  sourceId: string;
  /** Keyset: only rows with a greater id (ids grow with landing order). */
  afterId?: number;
  runId?: string;
  /** Only rows landed at or after this instant (prunes older partitions). */
  since?: string;
}

export type ExportFormat = 'ndjson' | 'csv';

/** A landing table as the read API serves it. */
interface RecordTable {
  table: string;
  /** The landing time column, also the partition key. */
  time: string;
  /** JSON columns after `payload`, in output order. */
  extra: readonly string[];
}

const LANDED: RecordTable = { table: 'raw_records', time: 'ingested_at', extra: [] };
const QUARANTINED: RecordTable = { table: 'quarantined_records', time: 'quarantined_at', extra: ['errors'] };

/**
 * Each row of an NDJSON export is one column of JSON text. CSV with a quote and a delimiter that
 * JSON text never holds raw (Postgres escapes control characters in JSON) copies it verbatim:
 * COPY's text format would double every backslash.
 */
const VERBATIM = `(FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`;

export interface Page<T> {
  data: T[];
  /** The last row's id when more rows follow; undefined on the last page. */
  lastId: number | undefined;
}

/**
 * Reads landed and quarantined records: keyset pages through (source_id, id), and exports
 * streamed straight from COPY … TO STDOUT on a connection of their own (`exports`), so a long
 * export never holds one of the API's pooled connections and memory stays flat whatever its size.
 */
export class RecordsRepository {
  constructor(
    private readonly knex: Knex,
    private readonly exports: pg.Pool,
    /** The source's sync_mode (sources/source-store), which decides what `current` means. */
    private readonly syncModeOf: (sourceId: string) => Promise<string | null | undefined>,
  ) {}

  /**
   * The `current` view of a source as a query with the columns of raw_records, or undefined when
   * its sync mode keeps none (append). Snapshot: the rows of the latest complete run, as
   * source_snapshots points at it (swapped in the statement that closes the run, so never a part
   * of one). Dedup: raw_current, the last landed version of each key (kept in the landing
   * transaction); a key's id is that of the raw row it came from, so keyset paging still works.
   */
  async currentView(sourceId: string): Promise<{ from: Knex.QueryBuilder } | undefined> {
    // Wrapped: a query builder is a thenable, which an async function would run and unwrap.
    const mode = await this.syncModeOf(sourceId);
    if (mode === 'snapshot')
      return {
        from: this.knex('raw_records')
          .select('id', 'source_id', 'run_id', 'ingested_at', 'payload')
          .where('source_id', sourceId)
          .where('run_id', this.knex('source_snapshots').select('run_id').where('source_id', sourceId)),
      };
    if (mode === 'dedup')
      return {
        from: this.knex('raw_current')
          .select({ id: 'raw_record_id' }, 'source_id', 'run_id', { ingested_at: 'updated_at' }, 'payload')
          .where('source_id', sourceId),
      };
    return undefined;
  }

  async landed(filter: RecordFilter, limit: number, from?: Knex.QueryBuilder): Promise<Page<RawRecord>> {
    return this.page<RawRecord>(LANDED, filter, limit, from);
  }

  async quarantined(filter: RecordFilter, limit: number): Promise<Page<QuarantinedRecord>> {
    return this.page<QuarantinedRecord>(QUARANTINED, filter, limit);
  }

  exportLanded(filter: RecordFilter, format: ExportFormat, from?: Knex.QueryBuilder): Promise<Readable> {
    return this.export(LANDED, filter, format, from);
  }

  exportQuarantined(filter: RecordFilter, format: ExportFormat): Promise<Readable> {
    return this.export(QUARANTINED, filter, format);
  }

  private select(spec: RecordTable, filter: RecordFilter, from?: Knex.QueryBuilder): Knex.QueryBuilder {
    const source = from ? this.knex.from(from.as('v')) : this.knex(spec.table);
    return source
      .where('source_id', filter.sourceId)
      .modify((b: Knex.QueryBuilder) => {
        if (filter.afterId !== undefined) void b.where('id', '>', filter.afterId);
        if (filter.runId) void b.where('run_id', filter.runId);
        if (filter.since) void b.where(spec.time, '>=', filter.since);
      })
      .orderBy('id');
  }

  private async page<T>(
    spec: RecordTable,
    filter: RecordFilter,
    limit: number,
    from?: Knex.QueryBuilder,
  ): Promise<Page<T>> {
    const rows = (await this.select(spec, filter, from)
      .select('id', 'run_id', spec.time, 'payload', ...spec.extra)
      .limit(limit + 1)) as (T & { id: number })[];
    const more = rows.length > limit;
    if (more) rows.pop();
    return { data: rows, lastId: more ? rows.at(-1)?.id : undefined };
  }

  private async export(
    spec: RecordTable,
    filter: RecordFilter,
    format: ExportFormat,
    from?: Knex.QueryBuilder,
  ): Promise<Readable> {
    const columns = ['id', 'run_id', spec.time, 'payload', ...spec.extra];
    const query = this.select(spec, filter, from);
    // Timestamps as JSON writes them (RFC 3339) in UTC, whatever the session's time zone: no
    // session setting, so the export runs the same through a pooler in transaction mode.
    const time = `(to_json(${spec.time} AT TIME ZONE 'UTC') #>> '{}') || '+00:00'`;
    if (format === 'ndjson')
      void query.select(
        this.knex.raw(
          `json_build_object(${columns.map((c) => `'${c}', ${c === spec.time ? time : c}`).join(', ')})`,
        ),
      );
    else void query.select(...columns.map((c) => (c === spec.time ? this.knex.raw(`${time} AS ${c}`) : c)));
    // COPY takes no bind parameters: the values are inlined, escaped by knex (and already
    // validated as a UUID, an integer and a timestamp by the route).
    const sql = `COPY (${query.toQuery()}) TO STDOUT ${format === 'ndjson' ? VERBATIM : '(FORMAT csv, HEADER)'}`;
    const client = await this.exports.connect();
    let released = false;
    const release = (err?: Error) => {
      if (released) return;
      released = true;
      // A COPY stopped half-way (the client went away) would run to its end, its rows read and
      // dropped: cancel it (a CancelRequest, which a pooler forwards), and close the connection,
      // which is left mid-protocol.
      if (err) void sendCancelRequest(client);
      client.release(err);
    };
    const stream = client.query(copyTo(sql));
    stream.once('end', () => release());
    stream.once('error', (err) => release(err));
    stream.once('close', () => release(new Error('export stopped before its end')));
    return stream;
  }
}
