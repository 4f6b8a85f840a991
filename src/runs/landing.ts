import type { Knex } from 'knex';
import type { SyncBatch } from '../connectors/connector';

const INSERT_CHUNK = 1000;
/** Most payload text one INSERT of valid records carries (a batch of large records takes several). */
const INSERT_CHUNK_CHARS = 8 * 2 ** 20;

/**
 * How a sync mode lands: `dedup` also keeps raw_current (the latest version of each key) in the
 * batch's own statement; `append` and `snapshot` only add rows (a snapshot becomes current when its
 * run succeeds: SyncRunRepository.finish).
 */
export interface DedupRules {
  /** Dot paths of the key field(s), e.g. ['id'] or ['tenant', 'order.id']. */
  primaryKey: readonly string[];
  /** Dot path of a delete marker: a record whose value there is present, not null and not false is a delete. */
  deleteMarker?: string;
}

/**
 * Valid records land with one statement and one text parameter (sent as UTF-8 bytes): their JSON
 * texts joined by newlines, split back by Postgres. JSON.stringify never writes a raw newline (it escapes it in
 * strings), so the split is exact. Against a multi-row VALUES list (3 parameters a row) this spares
 * the worker building and binding thousands of parameters and Postgres parsing and planning them:
 * about a third less Postgres CPU per row, close to COPY's.
 *
 * Provenance rides the same way: each record's (when the connector gives one per record) as a
 * second joined text zipped with the payloads by unnest, already merged with the batch's shared
 * part (as text: Postgres parses it once, no jsonb concatenation per row); otherwise the shared
 * part alone, one parameter for the whole batch.
 */
const INSERT_ROWS = (runId: string) => `INSERT INTO raw_records (source_id, run_id, payload, provenance)
    SELECT ?::uuid, ${runId}, t.p::jsonb, coalesce(t.e::jsonb, ?::jsonb)
    FROM ${runId === 'held.id' ? 'held, ' : ''}unnest(string_to_array(?::text, E'\\n'), string_to_array(?::text, E'\\n')) AS t(p, e)`;

/**
 * raw_current after the rows just landed (`landed`): the last version of each key in the batch
 * replaces the current one, or removes it when it is a delete. Two changes of one statement may
 * not touch one row twice, hence DISTINCT ON the key; upsert and delete touch disjoint keys.
 *
 * Only while the source is still dedup by the same key (`dedup_still`): a run reads its settings
 * when it starts, and a source switched to another mode or key meanwhile must not get current rows
 * back that the switch cleared (sources/sync-mode-change.ts). FOR SHARE orders the batch against the
 * switch, which locks the source row FOR UPDATE: whichever comes second sees the other committed.
 */
const currentCtes = (dedup: DedupRules) => {
  const key =
    dedup.primaryKey.length === 1
      ? 'l.payload #> ?::text[]'
      : `jsonb_build_array(${dedup.primaryKey.map(() => 'l.payload #> ?::text[]').join(', ')})`;
  const deleted = dedup.deleteMarker
    ? `coalesce(l.payload #> ?::text[], 'null'::jsonb) NOT IN ('null'::jsonb, 'false'::jsonb)`
    : 'false';
  return `dedup_still AS (
    SELECT 1 FROM raw_data_sources
    WHERE id = ?::uuid AND sync_mode = 'dedup' AND CASE jsonb_typeof(metadata -> 'primary_key')
        WHEN 'string' THEN jsonb_build_array(metadata -> 'primary_key') ELSE metadata -> 'primary_key' END = ?::jsonb
    FOR SHARE
  ), latest AS (
    SELECT DISTINCT ON (record_key) * FROM (
      SELECT l.id, l.run_id, l.payload, l.provenance, ${key} AS record_key, ${deleted} AS deleted
      FROM landed l WHERE EXISTS (SELECT 1 FROM dedup_still)
    ) k ORDER BY record_key, id DESC
  ), upserted AS (
    INSERT INTO raw_current (source_id, record_key, run_id, raw_record_id, payload, provenance, updated_at)
    SELECT ?::uuid, record_key, run_id, id, payload, provenance, now() FROM latest WHERE NOT deleted
    ON CONFLICT (source_id, record_key) DO UPDATE SET run_id = excluded.run_id,
      raw_record_id = excluded.raw_record_id, payload = excluded.payload,
      provenance = excluded.provenance, updated_at = excluded.updated_at
  ), removed AS (
    DELETE FROM raw_current c USING latest
    WHERE c.source_id = ?::uuid AND c.record_key = latest.record_key AND latest.deleted
  )`;
};

const segments = (path: string) => path.split('.');
const currentParams = (sourceId: string, dedup: DedupRules) => [
  sourceId,
  JSON.stringify(dedup.primaryKey),
  ...dedup.primaryKey.map(segments),
  ...(dedup.deleteMarker ? [segments(dedup.deleteMarker)] : []),
  sourceId,
  sourceId,
];

/**
 * A batch in one statement: the run's counters (only while this attempt holds the run: `held`),
 * the records (joined as above; with dedup, raw_current too) and the source's state (when the batch
 * moves it). The inserts read `held`, so they happen after the run row is locked and updated, and
 * not at all when it is not held; the caller then throws, and an enclosing transaction rolls back.
 * Answers held = 0 or 1.
 */
const landBatchSql = (dedup?: DedupRules) => `WITH held AS (
    UPDATE sync_runs SET records = records + ?::bigint, bytes = bytes + ?::bigint,
      invalid = invalid + ?::bigint
    WHERE id = ?::uuid AND attempt = ?::int AND status = 'running'
    RETURNING id
  ), landed AS (
    ${INSERT_ROWS('held.id')}${dedup ? '\n    RETURNING id, run_id, payload, provenance' : ''}
  ), ${dedup ? `${currentCtes(dedup)}, ` : ''}state AS (
    INSERT INTO source_sync_state (source_id, state, run_id, updated_at)
    SELECT ?::uuid, ?::jsonb, held.id, now() FROM held WHERE ?::jsonb IS NOT NULL
    ON CONFLICT (source_id) DO UPDATE
      SET state = excluded.state, run_id = excluded.run_id, updated_at = excluded.updated_at
  )
  SELECT count(*)::int AS held FROM held`;

/** The usual statements, built once: only dedup's depend on the source's key paths. */
const LAND_BATCH = landBatchSql();

/** The further pieces of a large batch, in the transaction the first piece's statement opened. */
const insertRestSql = (dedup?: DedupRules) =>
  dedup
    ? `WITH landed AS (
    ${INSERT_ROWS('?::uuid')}
    RETURNING id, run_id, payload, provenance
  ), ${currentCtes(dedup)}
  SELECT 1`
    : INSERT_ROWS('?::uuid');

/**
 * JSON.stringify escapes U+0000 as \u0000 and a lone surrogate as \udXXX (paired ones it writes
 * raw): both are escapes Postgres jsonb refuses. An even run of backslashes before them is text.
 */
const UNSTORABLE_SOURCE = String.raw`(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})`;
const UNSTORABLE = new RegExp(UNSTORABLE_SOURCE, 'i');
const UNSTORABLE_ALL = new RegExp(UNSTORABLE_SOURCE, 'gi');
const UNSTORABLE_ERRORS = JSON.stringify([
  {
    pointer: '/',
    message: 'contains U+0000 or an unpaired surrogate, which Postgres cannot store; shown here as U+FFFD',
  },
]);

export interface Landed {
  records: number;
  bytes: number;
  invalid: number;
}

interface QuarantinedRow {
  source_id: string;
  run_id: string;
  payload: string;
  errors: string;
  provenance: string | null;
}

/** A batch ready to write (see Landing.prepare). */
export interface PreparedBatch {
  sourceId: string;
  runId: string;
  /** How many records land in raw_records. */
  records: number;
  /**
   * Their JSON texts, newline-joined and UTF-8 encoded, one INSERT each. Bytes, not a string: a
   * string this large would live in V8's large-object space, which only a full GC empties, and a
   * batch in flight often outlives a young-generation GC; the worker's memory grew by ~100 MB that
   * way. A Buffer's memory is outside the heap and is returned once the batch is written.
   */
  chunks: Buffer[];
  /** Each record's own provenance, joined like `chunks` and aligned with them; absent when the connector gave none. */
  provenanceChunks?: Buffer[];
  /** The provenance every record of the batch shares, as JSON text. */
  provenance: string | null;
  quarantined: QuarantinedRow[];
  /** UTF-8 size of the JSON of the records that land (quarantined ones are not landed, so not counted). */
  bytes: number;
  /** The source's state after this batch, as JSON text; undefined leaves it as it is. */
  state: string | undefined;
  /** Keep raw_current too (sync_mode dedup). */
  dedup?: DedupRules;
}

/** Checks one record against schema_definition; returns its errors, or undefined when valid. */
export type RecordCheck = (record: unknown) => unknown[] | undefined;

/** A quarantined record's errors, as landing and schema_definition checks write them. */
export interface Violation {
  pointer: string;
  message: string;
}

/** The attempt no longer holds its run: another worker took the job over (stalled), or the run was closed. */
export class RunTakenOverError extends Error {
  constructor(runId: string, attempt: number) {
    super(`run ${runId} is no longer held by attempt ${attempt}`);
    this.name = 'RunTakenOverError';
  }
}

/** The value at a dot path of a record, undefined when any step is missing. */
function valueAt(record: unknown, path: string): unknown {
  let value = record;
  for (const step of segments(path)) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[step];
  }
  return value;
}

/** Errors of a record that lacks a dedup key part: it cannot become anyone's current version. */
function missingKey(record: unknown, dedup: DedupRules): Violation[] | undefined {
  const missing = dedup.primaryKey.filter((path) => {
    const v = valueAt(record, path);
    return v === undefined || v === null;
  });
  return missing.length
    ? missing.map((path) => ({
        pointer: `/${segments(path).join('/')}`,
        message: 'primary key is missing or null',
      }))
    : undefined;
}

/**
 * Lands batches in raw_records. A batch, the run's counters, the source's incremental state and
 * (dedup) the source's current versions commit in one transaction, so a crash between batches
 * loses nothing and a retry resumes from the state that matches what landed.
 */
export class Landing {
  constructor(private readonly knex: Knex) {}

  async getState(sourceId: string): Promise<unknown> {
    const row = await this.knex('source_sync_state').select('state').where({ source_id: sourceId }).first();
    return row?.state;
  }

  /**
   * Called when an attempt starts. Records an earlier attempt of this run landed without moving
   * the state (a full refresh) are removed, so the retry does not land them twice. Answers whether
   * the run's counters were reset to zero.
   */
  async prepareAttempt(sourceId: string, runId: string): Promise<boolean> {
    return this.knex.transaction(async (trx) => {
      const state = await trx('source_sync_state').select('run_id').where({ source_id: sourceId }).first();
      if (state?.run_id === runId) return false;
      const removed = await trx('raw_records').where({ run_id: runId }).delete();
      const unquarantined = await trx('quarantined_records').where({ run_id: runId }).delete();
      if (!removed && !unquarantined) return false;
      await trx('sync_runs').update({ records: 0, bytes: 0, invalid: 0 }).where({ id: runId });
      return true;
    });
  }

  /** The first violations of a run's quarantined records (oldest first), to name in its outcome. */
  async firstViolations(runId: string, limit = 3): Promise<Violation[]> {
    const rows = (await this.knex('quarantined_records')
      .select('errors')
      .where({ run_id: runId })
      .orderBy('id')
      .limit(limit)) as { errors: Violation[] }[];
    return rows.map((r) => r.errors[0] ?? { pointer: '/', message: 'invalid' });
  }

  /**
   * Lands one batch: prepare() then write(). With `check`, records failing schema_definition go to
   * quarantined_records with their errors and count as the run's `invalid`; the rest land as usual.
   */
  async land(
    sourceId: string,
    runId: string,
    batch: SyncBatch,
    attempt: number,
    check?: RecordCheck,
    dedup?: DedupRules,
  ): Promise<Landed> {
    return this.write(this.prepare(sourceId, runId, batch, check, dedup), attempt);
  }

  /**
   * The CPU half of landing a batch, no I/O: every record as JSON text, sorted into what lands and
   * what is quarantined. Separate from write() so that a sync can prepare the next batch while the
   * current one is being written.
   */
  prepare(
    sourceId: string,
    runId: string,
    batch: SyncBatch,
    check?: RecordCheck,
    dedup?: DedupRules,
  ): PreparedBatch {
    const valid: string[] = [];
    const quarantined: QuarantinedRow[] = [];
    const provenanceText = provenanceWriter(batch);
    const validProvenance: string[] | undefined = batch.recordProvenance ? [] : undefined;
    const quarantine = (i: number, payload: string, errors: string) =>
      quarantined.push({
        source_id: sourceId,
        run_id: runId,
        payload,
        errors,
        provenance: provenanceText(i),
      });
    let bytes = 0;
    const { records } = batch;
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      const payload = JSON.stringify(record);
      if (UNSTORABLE.test(payload)) {
        // jsonb cannot hold U+0000 or a lone surrogate: keep the record, visibly repaired, apart.
        quarantine(i, payload.replace(UNSTORABLE_ALL, '$1\\ufffd'), UNSTORABLE_ERRORS);
        continue;
      }
      const errors = check?.(record) ?? (dedup ? missingKey(record, dedup) : undefined);
      if (errors) {
        quarantine(i, payload, JSON.stringify(errors));
        continue;
      }
      valid.push(payload);
      validProvenance?.push(provenanceText(i)!);
      bytes += Buffer.byteLength(payload);
    }
    const ranges = chunkRanges(valid);
    return {
      sourceId,
      runId,
      records: valid.length,
      chunks: ranges.map(([from, to]) => Buffer.from(valid.slice(from, to).join('\n'))),
      provenanceChunks: validProvenance
        ? ranges.map(([from, to]) => Buffer.from(validProvenance.slice(from, to).join('\n')))
        : undefined,
      provenance: batch.provenance ? JSON.stringify(batch.provenance) : null,
      quarantined,
      bytes,
      state: batch.state === undefined ? undefined : JSON.stringify(batch.state),
      dedup,
    };
  }

  /**
   * Writes a prepared batch: its records, the run's counters and the source's state, atomically.
   * A usual batch (one INSERT's worth, nothing quarantined) is one statement, LAND_BATCH, in one
   * round trip; otherwise the same statement opens a transaction that the rest joins.
   *
   * `attempt` fences the batch: a worker that froze past its lock (GC pause, VM stall) while another
   * took the job over and resumed from the committed state must not land its in-memory batches too.
   * The run row is updated first, so its row lock orders this batch against the other worker's start.
   */
  async write(batch: PreparedBatch, attempt: number): Promise<Landed> {
    const { sourceId, runId, quarantined, bytes, dedup, provenance } = batch;
    const [first = EMPTY, ...rest] = batch.chunks;
    const own = batch.provenanceChunks;
    const current = dedup ? currentParams(sourceId, dedup) : [];
    const land = async (db: Knex | Knex.Transaction) => {
      const { rows } = await db.raw<{ rows: { held: number }[] }>(dedup ? landBatchSql(dedup) : LAND_BATCH, [
        batch.records,
        bytes,
        quarantined.length,
        runId,
        attempt,
        sourceId,
        provenance,
        first,
        own?.[0] ?? null,
        ...current,
        sourceId,
        batch.state ?? null,
        batch.state ?? null,
      ]);
      if (!rows[0]?.held) throw new RunTakenOverError(runId, attempt);
      for (let i = 0; i < rest.length; i++)
        await db.raw(insertRestSql(dedup), [
          sourceId,
          runId,
          provenance,
          rest[i]!,
          own?.[i + 1] ?? null,
          ...current,
        ]);
      for (let i = 0; i < quarantined.length; i += INSERT_CHUNK)
        await db('quarantined_records').insert(quarantined.slice(i, i + INSERT_CHUNK));
    };
    // A single statement is atomic on its own: no BEGIN and COMMIT round trips around it.
    if (!rest.length && !quarantined.length) await land(this.knex);
    else await this.knex.transaction(land);
    return { records: batch.records, bytes, invalid: quarantined.length };
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Record i's provenance as JSON text (null when it has none): the batch's shared part with the
 * record's own values laid over it. Written as text, not built as objects and merged: a repeated
 * key keeps its last value in jsonb, and Postgres parses the text once.
 */
function provenanceWriter(batch: SyncBatch): (i: number) => string | null {
  const shared = batch.provenance ? JSON.stringify(batch.provenance) : null;
  const columns = Object.entries(batch.recordProvenance ?? {}).map(
    ([key, values]) => [`${JSON.stringify(key)}:`, values] as const,
  );
  if (!columns.length) return () => shared;
  const head = shared && shared !== '{}' ? `${shared.slice(0, -1)},` : '{';
  return (i) => {
    let own = '';
    for (const [key, values] of columns) {
      const value = values[i];
      if (value !== undefined) own += `${own ? ',' : ''}${key}${JSON.stringify(value)}`;
    }
    return own ? `${head}${own}}` : (shared ?? '{}');
  };
}

/** [from, to) ranges of `payloads` whose joined text stays within INSERT_CHUNK_CHARS (one record may exceed it alone). */
function chunkRanges(payloads: string[]): [number, number][] {
  const ranges: [number, number][] = [];
  let start = 0;
  let chars = 0;
  for (let i = 0; i < payloads.length; i++) {
    if (i > start && chars + payloads[i]!.length > INSERT_CHUNK_CHARS) {
      ranges.push([start, i]);
      start = i;
      chars = 0;
    }
    chars += payloads[i]!.length + 1;
  }
  if (start < payloads.length) ranges.push([start, payloads.length]);
  return ranges;
}
