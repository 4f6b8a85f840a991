import type { StepCode } from './kit/step-codes';
import type { Logger } from '../logger';
import type { Outbound } from './outbound';

/** What a connector sees of a source: its settings, with the secret decrypted for this call only. */
export interface ConnectorSource {
  id: string;
  name: string;
  source_type: string | null;
  connection_string: string | null;
  metadata: Record<string, unknown> | null;
  schema_definition: Record<string, unknown> | null;
}

export type StepStatus = 'passed' | 'failed' | 'skipped' | 'warning';

export interface TestStep {
  name: string;
  status: StepStatus;
  message: string;
  duration_ms: number;
  /** Stable code for a failure or a warning (kit/step-codes.ts: dns, refused, timeout, ...). */
  code?: StepCode;
}

/**
 * Where a record came from (a Redis entry id, a NATS subject and sequence, a file and line, an API
 * request URL without credentials, a cursor value): small scalar fields, landed beside the payload.
 */
export type Provenance = Readonly<Record<string, ProvenanceValue>>;
export type ProvenanceValue = string | number | boolean | null;

/**
 * Each record's own provenance, column-wise: per key, one value per record, parallel to `records`
 * (`{line: [1, 2, 4]}`, `{subject: [...], seq: [...]}`). Arrays of scalars, not an object per
 * record: a batch adds a few small arrays to the heap, not a thousand objects.
 */
export type ProvenanceColumns = Readonly<Record<string, readonly ProvenanceValue[]>>;

/** One batch of records and the incremental state that holds once the batch has landed. */
export interface SyncBatch {
  records: unknown[];
  state?: unknown;
  /** Provenance every record of the batch shares (the file, the stream, the page's request URL). */
  provenance?: Provenance;
  /** Provenance of each record (entry id, line, cursor value), laid over `provenance`. */
  recordProvenance?: ProvenanceColumns;
}

export interface ConnectorContext {
  /** Aborted when the job is cancelled or the worker shuts down: stop reading promptly. */
  signal: AbortSignal;
  logger: Logger;
  /** Resolve-once-then-check for every outbound connection (see outbound.ts). */
  outbound: Outbound;
  /** Bound for each connect and each read (CONNECT_TIMEOUT_MS, 10 s by default). */
  timeoutMs: number;
}

export interface Connector {
  readonly type: string;
  /**
   * JSON Schema of the metadata keys this connector reads (other keys are the user's own and are
   * kept): checked at create and update, so a bad setting is a 400, not a failed sync later.
   */
  readonly metadataSchema?: Readonly<Record<string, unknown>>;
  /**
   * Whether a sync with these settings reads the whole source every time (a full refresh: a file, a
   * table without cursor_column), so that a successful run is a complete snapshot. Absent, the
   * type's sync modes are not checked.
   */
  fullRefresh?(metadata: Record<string, unknown> | null): boolean;
  /** Checks the connection string's form (scheme, parameters); returns a problem or undefined. */
  checkConnectionString?(value: string): string | undefined;
  test(source: ConnectorSource, ctx: ConnectorContext): Promise<TestStep[]>;
  /**
   * Streams batches from `state` on; memory stays bounded by the batch size, in records and in
   * bytes (ByteLimits, kit/byte-limits.ts: one record, one batch, decompression). The sync asks for the
   * next batch while the previous one is still landing (one batch ahead): asking is no sign that a
   * batch landed; only the state committed with it is (never ack or delete upstream on that basis).
   */
  sync(source: ConnectorSource, state: unknown, ctx: ConnectorContext): AsyncIterable<SyncBatch>;
}

/** A failure that retrying cannot fix (bad credentials, missing table, no connector): fail the run at once. */
export class PermanentSyncError extends Error {
  constructor(
    message: string,
    readonly code = 'permanent',
  ) {
    super(message);
    this.name = 'PermanentSyncError';
  }
}

export class NotImplementedConnectorError extends PermanentSyncError {
  constructor(type: string | null) {
    super(
      type
        ? `source type "${type}" has no connector yet (not implemented)`
        : 'source has no source_type to sync with',
      'not_implemented',
    );
    this.name = 'NotImplementedConnectorError';
  }
}
