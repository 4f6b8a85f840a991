import type { Knex } from 'knex';
import type { SyncBatch } from '../connectors/connector';

const INSERT_CHUNK = 1000;

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
   * Lands one batch. With `check`, records failing schema_definition go to quarantined_records
   * with their errors and count as the run's `invalid`; the rest land as usual.
   *
   * `attempt` fences the batch: a worker that froze past its lock (GC pause, VM stall) while another
   * took the job over and resumed from the committed state must not land its in-memory batches too.
   * The run row is updated first, so its row lock orders this batch against the other worker's start.
   */
  async land(
    sourceId: string,
    runId: string,
    batch: SyncBatch,
    attempt: number,
    check?: RecordCheck,
  ): Promise<Landed> {
    const valid: string[] = [];
    const quarantined: { source_id: string; run_id: string; payload: string; errors: string }[] = [];
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
    await this.knex.transaction(async (trx) => {
      const held = await trx('sync_runs')
        .update({
          records: trx.raw('records + ?', [valid.length]),
          bytes: trx.raw('bytes + ?', [bytes]),
          invalid: trx.raw('invalid + ?', [quarantined.length]),
        })
        .where({ id: runId, attempt, status: 'running' });
      if (!held) throw new RunTakenOverError(runId, attempt);
      for (let i = 0; i < valid.length; i += INSERT_CHUNK) {
        const rows = valid
          .slice(i, i + INSERT_CHUNK)
          .map((payload) => ({ source_id: sourceId, run_id: runId, payload }));
        await trx('raw_records').insert(rows);
      }
      for (let i = 0; i < quarantined.length; i += INSERT_CHUNK)
        await trx('quarantined_records').insert(quarantined.slice(i, i + INSERT_CHUNK));
      if (batch.state !== undefined) {
        await trx('source_sync_state')
          .insert({
            source_id: sourceId,
            state: JSON.stringify(batch.state),
            run_id: runId,
            updated_at: trx.fn.now(),
          })
          .onConflict('source_id')
          .merge();
      }
    });
    return { records: valid.length, bytes, invalid: quarantined.length };
  }
}
