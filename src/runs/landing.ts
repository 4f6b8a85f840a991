import type { Knex } from 'knex';
import type { SyncBatch } from '../connectors/connector';

const INSERT_CHUNK = 1000;
/** Most payload text one INSERT of valid records carries (a batch of large records takes several). */
const INSERT_CHUNK_CHARS = 8 * 2 ** 20;

/**
 * Valid records land with one statement and one text parameter (sent as UTF-8 bytes): their JSON
 * texts joined by newlines, split back by Postgres. JSON.stringify never writes a raw newline (it escapes it in
 * strings), so the split is exact. Against a multi-row VALUES list (3 parameters a row) this spares
 * the worker building and binding thousands of parameters and Postgres parsing and planning them:
 * about a third less Postgres CPU per row, close to COPY's.
 */
const INSERT_JOINED = `INSERT INTO raw_records (source_id, run_id, payload)
  SELECT ?::uuid, ?::uuid, p::jsonb FROM unnest(string_to_array(?::text, E'\\n')) AS p`;

/**
 * A batch in one statement: the run's counters (only while this attempt holds the run: `held`),
 * the records (joined as above) and the source's state (when the batch moves it). The inserts read
 * `held`, so they happen after the run row is locked and updated, and not at all when it is not
 * held; the caller then throws, and an enclosing transaction rolls back. Answers held = 0 or 1.
 */
const LAND_BATCH = `WITH held AS (
    UPDATE sync_runs SET records = records + ?::bigint, bytes = bytes + ?::bigint,
      invalid = invalid + ?::bigint
    WHERE id = ?::uuid AND attempt = ?::int AND status = 'running'
    RETURNING id
  ), landed AS (
    INSERT INTO raw_records (source_id, run_id, payload)
    SELECT ?::uuid, held.id, p::jsonb FROM held, unnest(string_to_array(?::text, E'\\n')) AS p
  ), state AS (
    INSERT INTO source_sync_state (source_id, state, run_id, updated_at)
    SELECT ?::uuid, ?::jsonb, held.id, now() FROM held WHERE ?::jsonb IS NOT NULL
    ON CONFLICT (source_id) DO UPDATE
      SET state = excluded.state, run_id = excluded.run_id, updated_at = excluded.updated_at
  )
  SELECT count(*)::int AS held FROM held`;

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
  quarantined: QuarantinedRow[];
  /** UTF-8 size of every record's JSON, quarantined ones included. */
  bytes: number;
  /** The source's state after this batch, as JSON text; undefined leaves it as it is. */
  state: string | undefined;
}

/** Checks one record against schema_definition; returns its errors, or undefined when valid. */
export type RecordCheck = (record: unknown) => unknown[] | undefined;

/** The attempt no longer holds its run: another worker took the job over (stalled), or the run was closed. */
export class RunTakenOverError extends Error {
  constructor(runId: string, attempt: number) {
    super(`run ${runId} is no longer held by attempt ${attempt}`);
    this.name = 'RunTakenOverError';
  }
}

/**
 * Lands batches in raw_records. A batch, the run's counters and the source's incremental state
 * commit in one transaction, so a crash between batches loses nothing and a retry resumes from
 * the state that matches what landed.
 */
export class Landing {
  constructor(private readonly knex: Knex) {}

  async getState(sourceId: string): Promise<unknown> {
    const row = await this.knex('source_sync_state').select('state').where({ source_id: sourceId }).first();
    return row?.state;
  }

  /**
   * Called when an attempt starts. Records an earlier attempt of this run landed without moving
   * the state (a full refresh) are removed, so the retry does not land them twice.
   */
  async prepareAttempt(sourceId: string, runId: string): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const state = await trx('source_sync_state').select('run_id').where({ source_id: sourceId }).first();
      if (state?.run_id === runId) return;
      const removed = await trx('raw_records').where({ run_id: runId }).delete();
      const unquarantined = await trx('quarantined_records').where({ run_id: runId }).delete();
      if (removed || unquarantined)
        await trx('sync_runs').update({ records: 0, bytes: 0, invalid: 0 }).where({ id: runId });
    });
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
  ): Promise<Landed> {
    return this.write(this.prepare(sourceId, runId, batch, check), attempt);
  }

  /**
   * The CPU half of landing a batch, no I/O: every record as JSON text, sorted into what lands and
   * what is quarantined. Separate from write() so that a sync can prepare the next batch while the
   * current one is being written.
   */
  prepare(sourceId: string, runId: string, batch: SyncBatch, check?: RecordCheck): PreparedBatch {
    const valid: string[] = [];
    const quarantined: QuarantinedRow[] = [];
    let bytes = 0;
    for (const record of batch.records) {
      const payload = JSON.stringify(record);
      bytes += Buffer.byteLength(payload);
      if (UNSTORABLE.test(payload)) {
        // jsonb cannot hold U+0000 or a lone surrogate: keep the record, visibly repaired, apart.
        const repaired = payload.replace(UNSTORABLE_ALL, '$1\\ufffd');
        quarantined.push({
          source_id: sourceId,
          run_id: runId,
          payload: repaired,
          errors: UNSTORABLE_ERRORS,
        });
        continue;
      }
      const errors = check?.(record);
      if (errors)
        quarantined.push({ source_id: sourceId, run_id: runId, payload, errors: JSON.stringify(errors) });
      else valid.push(payload);
    }
    return {
      sourceId,
      runId,
      records: valid.length,
      chunks: [...joinedChunks(valid)].map((joined) => Buffer.from(joined)),
      quarantined,
      bytes,
      state: batch.state === undefined ? undefined : JSON.stringify(batch.state),
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
    const { sourceId, runId, quarantined, bytes } = batch;
    const [first = EMPTY, ...rest] = batch.chunks;
    const land = async (db: Knex | Knex.Transaction) => {
      const { rows } = await db.raw<{ rows: { held: number }[] }>(LAND_BATCH, [
        batch.records,
        bytes,
        quarantined.length,
        runId,
        attempt,
        sourceId,
        first,
        sourceId,
        batch.state ?? null,
        batch.state ?? null,
      ]);
      if (!rows[0]?.held) throw new RunTakenOverError(runId, attempt);
      for (const joined of rest) await db.raw(INSERT_JOINED, [sourceId, runId, joined]);
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

/** `payloads` joined by newlines, in pieces of at most INSERT_CHUNK_CHARS (one record may exceed it alone). */
function* joinedChunks(payloads: string[]): Generator<string> {
  let start = 0;
  let chars = 0;
  for (let i = 0; i < payloads.length; i++) {
    if (i > start && chars + payloads[i]!.length > INSERT_CHUNK_CHARS) {
      yield payloads.slice(start, i).join('\n');
      start = i;
      chars = 0;
    }
    chars += payloads[i]!.length + 1;
  }
  if (start < payloads.length) yield payloads.slice(start).join('\n');
}
