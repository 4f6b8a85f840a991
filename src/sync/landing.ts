import type { Knex } from 'knex';
import type { SyncBatch } from '../connectors/connector';

const INSERT_CHUNK = 1000;

export interface Landed {
  records: number;
  bytes: number;
}

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
      if (removed) await trx('sync_runs').update({ records: 0, bytes: 0 }).where({ id: runId });
    });
  }

  /**
   * `attempt` fences the batch: a worker that froze past its lock (GC pause, VM stall) while another
   * took the job over and resumed from the committed state must not land its in-memory batches too.
   * The run row is updated first, so its row lock orders this batch against the other worker's start.
   */
  async land(sourceId: string, runId: string, batch: SyncBatch, attempt: number): Promise<Landed> {
    const payloads = batch.records.map((r) => JSON.stringify(r));
    const bytes = payloads.reduce((n, p) => n + Buffer.byteLength(p), 0);
    await this.knex.transaction(async (trx) => {
      const held = await trx('sync_runs')
        .update({ records: trx.raw('records + ?', [payloads.length]), bytes: trx.raw('bytes + ?', [bytes]) })
        .where({ id: runId, attempt, status: 'running' });
      if (!held) throw new RunTakenOverError(runId, attempt);
      for (let i = 0; i < payloads.length; i += INSERT_CHUNK) {
        const rows = payloads
          .slice(i, i + INSERT_CHUNK)
          .map((payload) => ({ source_id: sourceId, run_id: runId, payload }));
        await trx('raw_records').insert(rows);
      }
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
    return { records: payloads.length, bytes };
  }
}
