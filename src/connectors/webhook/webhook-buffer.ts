import type { Knex } from 'knex';

const TABLE = 'webhook_buffer';

/**
 * First key of the per-source advisory lock (the second is hashtext(source_id)). Two-key advisory
 * locks live apart from single-key ones, and this constant keeps them apart from other features'.
 */
const LOCK_NAMESPACE = 0x5e_b0_0c;

export interface BufferedPayload {
  /** bigserial, as a string (ids are compared in SQL, never as JS numbers). */
  id: string;
  payload: unknown;
  /** When the receipt was stored (its provenance, with the id). */
  received_at?: string;
}

export interface PendingSummary {
  count: number;
  oldest: Date | null;
}

/**
 * The durable buffer between the webhook endpoint and the sync that drains it.
 *
 * Ordering: ids come from one sequence, but concurrent receipts may commit out of id order, so a
 * drain that read "everything above last_id" could pass over an id still being committed and never
 * see it again. Each receipt therefore inserts under a shared advisory lock on its source, and a
 * drain first takes that lock exclusively for a moment: when it gets it, every id handed out so far
 * is committed (or rolled back), so everything up to the highest id it then sees is safe to read,
 * and anything received later gets a higher id. Receipts never wait for each other, only for that
 * moment.
 */
export class WebhookBuffer {
  constructor(private readonly knex: Knex) {}

  /**
   * Stores `records` (one row each, in order) in one transaction: all or nothing. Pass `trx` to
   * insert inside a transaction the caller commits (tests use it to hold a receipt open).
   */
  async append(sourceId: string, records: unknown[], trx?: Knex.Transaction): Promise<number> {
    if (!records.length) return 0;
    // One statement, so one round trip and its own transaction when `trx` is not given. The lock is
    // a FROM item: every row, and so every id the insert draws, comes after it is held.
    const result = await (trx ?? this.knex).raw(
      `INSERT INTO ${TABLE} (source_id, payload)
       SELECT ?, e.value
       FROM pg_advisory_xact_lock_shared(${LOCK_NAMESPACE}, hashtext(?)) AS held,
            jsonb_array_elements(?::jsonb) WITH ORDINALITY AS e(value, n)
       ORDER BY e.n`,
      [sourceId, sourceId, JSON.stringify(records)],
    );
    return (result as { rowCount: number }).rowCount;
  }

  /**
   * The highest id a drain may read: every id at or below it is committed. Waits (up to
   * `lockTimeoutMs`) for receipts in flight to commit; null when the buffer holds nothing.
   */
  async highWater(sourceId: string, lockTimeoutMs: number): Promise<string | null> {
    return this.knex.transaction(async (trx) => {
      await trx.raw(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
      await trx.raw(`SELECT pg_advisory_xact_lock(${LOCK_NAMESPACE}, hashtext(?))`, [sourceId]);
      const row = await trx(TABLE).max({ id: 'id' }).where({ source_id: sourceId }).first();
      return row?.id == null ? null : String(row.id);
    });
  }

  /**
   * The next rows after `afterId`, up to `upToId`: at most `limit` of them and, past the first,
   * no more than about `maxBytes` of JSON, so one batch of large payloads stays small in memory.
   */
  async read(
    sourceId: string,
    afterId: string,
    upToId: string,
    limit: number,
    maxBytes: number,
  ): Promise<BufferedPayload[]> {
    const range = () =>
      this.knex(TABLE)
        .where({ source_id: sourceId })
        .andWhere('id', '>', afterId)
        .andWhere('id', '<=', upToId)
        .orderBy('id');
    const sizes = (await range()
      .select('id', this.knex.raw('octet_length(payload::text) AS bytes'))
      .limit(limit)) as { id: string; bytes: number }[];
    if (!sizes.length) return [];
    let cut = sizes[0]!.id;
    let total = 0;
    for (const row of sizes) {
      total += Number(row.bytes);
      if (total > maxBytes && row.id !== sizes[0]!.id) break;
      cut = row.id;
    }
    const rows = (await range()
      .andWhere('id', '<=', cut)
      .select('id', 'payload', 'received_at')) as (BufferedPayload & { received_at: Date })[];
    return rows.map((r) => ({
      id: String(r.id),
      payload: r.payload,
      received_at: r.received_at.toISOString(),
    }));
  }

  /** Deletes rows at or below `upToId`: call only with an id whose rows have landed. */
  async removeUpTo(sourceId: string, upToId: string): Promise<number> {
    return this.knex(TABLE).where({ source_id: sourceId }).andWhere('id', '<=', upToId).delete();
  }

  /** How many rows wait above `afterId`, and when the oldest arrived. */
  async pending(sourceId: string, afterId: string, timeoutMs: number): Promise<PendingSummary> {
    const row = (await this.knex(TABLE)
      .where({ source_id: sourceId })
      .andWhere('id', '>', afterId)
      .select(this.knex.raw('count(*)::bigint AS count'), this.knex.raw('min(received_at) AS oldest'))
      .first()
      .timeout(timeoutMs, { cancel: true })) as { count: string; oldest: Date | null } | undefined;
    return { count: Number(row?.count ?? 0), oldest: row?.oldest ?? null };
  }

  /**
   * The drain state landing last committed for this source (src/sync/landing.ts keeps it in
   * source_sync_state together with the records it covers); the test step reports what waits beyond it.
   */
  async committedState(sourceId: string, timeoutMs: number): Promise<unknown> {
    const row = (await this.knex('source_sync_state')
      .select('state')
      .where({ source_id: sourceId })
      .first()
      .timeout(timeoutMs, { cancel: true })) as { state: unknown } | undefined;
    return row?.state;
  }
}
