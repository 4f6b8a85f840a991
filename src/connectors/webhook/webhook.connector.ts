import type { Knex } from 'knex';
import type { Connector, ConnectorContext, ConnectorSource, SyncBatch, TestStep } from '../connector';
import { SourceFailure, toConnectorError } from '../kit/classify-error';
import { StepRunner, type StepOutcome } from '../kit/step-runner';
import { WebhookBuffer } from './webhook-buffer';
import { SIGNATURE_FORMAT, SIGNATURE_HEADER } from './webhook-signature';

/** A shorter shared secret is guessable offline from one signed payload. */
export const MIN_SECRET_LENGTH = 16;

export interface WebhookConnectorOptions {
  /** The buffer's tables (webhook_receipts) live in Sluice's own database. */
  knex: Knex;
  /**
   * Whether a saved source is active (undefined when unsaved), bounded by `timeoutMs`; handed in by
   * the composition root (sources/source-store), so the connector reads no source table itself.
   */
  savedSource(id: string, timeoutMs: number): Promise<SavedSource | undefined>;
  /** Records per batch (default 1000). */
  batchSize?: number;
  /** JSON bytes per batch, past its first record (default 4 MB): payloads may be up to BODY_LIMIT each. */
  batchBytes?: number;
}

const STEPS = ['configuration', 'buffer', 'endpoint'];

/** What the test reads of a saved source. */
export interface SavedSource {
  is_active: boolean;
  /** A payload that arrived before this instant has waited through two schedule ticks. */
  stale_before: Date;
}

/** Drain state: the id of the last buffered row yielded; landing commits it with the batch. */
export interface WebhookState {
  last_id: string;
}

/** The committed `last_id`, or "0" for none (a first sync, or state left by another source type). */
export function lastIdOf(state: unknown): string {
  const value = (state as { last_id?: unknown } | null | undefined)?.last_id;
  if (typeof value === 'string' && /^\d{1,19}$/.test(value)) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  return '0';
}

/**
 * The webhook source type: payloads arrive at POST /webhooks/{id} (webhook.routes.ts) and wait in
 * webhook_buffer; a sync drains them in id order. Rows at or below the committed last_id have
 * landed, so each sync first deletes those: the buffer holds at most one sync's worth of landed
 * rows. Nothing here opens a network connection.
 */
export class WebhookConnector implements Connector {
  readonly type = 'webhook';
  /** Reads no metadata: the shared secret senders sign with is the whole connection string. */
  readonly metadataSchema = { type: 'object', properties: {}, additionalProperties: true } as const;
  private readonly buffer: WebhookBuffer;
  private readonly batchSize: number;
  private readonly batchBytes: number;

  constructor(private readonly options: WebhookConnectorOptions) {
    this.buffer = new WebhookBuffer(options.knex);
    this.batchSize = options.batchSize ?? 1000;
    this.batchBytes = options.batchBytes ?? 4 * 1024 * 1024;
  }

  /** The buffer is drained, never read again: never a full refresh. */
  fullRefresh(): boolean {
    return false;
  }

  checkConnectionString(value: string): string | undefined {
    if (value.length < MIN_SECRET_LENGTH)
      return `must be the shared HMAC secret senders sign with, at least ${MIN_SECRET_LENGTH} characters`;
    return undefined;
  }

  async test(source: ConnectorSource, ctx: ConnectorContext): Promise<TestStep[]> {
    // Each query is bounded by knex's own timeout, which also cancels it on the server (a step
    // runs up to two); the runner's bound is only a backstop behind them.
    const steps = new StepRunner(ctx, STEPS);
    const backstop = { timeoutMs: 3 * ctx.timeoutMs };
    const saved = await steps.run(
      'configuration',
      async (): Promise<StepOutcome<SavedSource | null>> => {
        if (!source.connection_string)
          throw new SourceFailure(
            'no shared secret: set connection_string to the secret senders sign payloads with',
            'invalid_config',
          );
        const row = (await this.options.savedSource(source.id, ctx.timeoutMs)) ?? null;
        if (!row)
          return {
            value: row,
            message: 'shared secret set (unsaved source: no endpoint until it is saved)',
          };
        if (!row.is_active)
          return {
            value: row,
            status: 'warning',
            code: 'inactive',
            message:
              'shared secret set, but the source is inactive: receipts are refused (409) until it is activated',
          };
        return { value: row, message: 'shared secret set; the source is active and accepts payloads' };
      },
      backstop,
    );

    await steps.run(
      'buffer',
      async (): Promise<StepOutcome<true>> => {
        const committed = lastIdOf(await this.buffer.committedState(source.id, ctx.timeoutMs));
        const { count, oldest } = await this.buffer.pending(source.id, committed, ctx.timeoutMs);
        if (!count || !oldest) return { value: true, message: 'no payloads waiting to be synced' };
        const ageS = Math.max(0, Math.round((Date.now() - oldest.getTime()) / 1000));
        const message = `${count} payload(s) waiting to be synced; the oldest arrived ${ageS} s ago`;
        // Two missed schedule ticks: the payloads are safe, but nothing seems to be draining them.
        if (saved?.is_active && oldest < saved.stale_before)
          return {
            value: true,
            status: 'warning',
            code: 'stale_buffer',
            message: `${message}: is the source syncing?`,
          };
        return { value: true, message };
      },
      backstop,
    );

    await steps.run('endpoint', async (): Promise<StepOutcome<true>> =>
      saved
        ? {
            value: true,
            message: `senders POST /webhooks/${source.id} with header ${SIGNATURE_HEADER}: ${SIGNATURE_FORMAT}`,
          }
        : { value: true, status: 'skipped', message: 'the endpoint exists once the source is saved' },
    );
    return steps.finish();
  }

  /**
   * Drains what was received before the sync started (receipts during the drain wait for the next
   * one, so a sync ends even under a steady stream). State after each batch: {last_id}.
   */
  async *sync(source: ConnectorSource, state: unknown, ctx: ConnectorContext): AsyncIterable<SyncBatch> {
    let after = lastIdOf(state);
    try {
      // `state` is what landing committed: the rows it covers are in raw_records already.
      if (after !== '0') await this.buffer.removeUpTo(source.id, after);
      const upTo = await this.buffer.highWater(source.id, ctx.timeoutMs);
      if (upTo === null) return;
      for (;;) {
        ctx.signal.throwIfAborted();
        const rows = await this.buffer.read(source.id, after, upTo, this.batchSize, this.batchBytes);
        if (!rows.length) return;
        after = rows[rows.length - 1]!.id;
        const next: WebhookState = { last_id: after };
        yield {
          records: rows.map((r) => r.payload),
          state: next,
          recordProvenance: {
            receipt_id: rows.map((r) => r.id),
            received_at: rows.map((r) => r.received_at ?? null),
          },
        };
      }
    } catch (err) {
      throw toConnectorError(err, 'drain the webhook buffer');
    }
  }
}
