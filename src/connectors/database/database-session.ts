import type { ColumnInfo } from './column-types';
import type { Row } from './json-row';

/** An open, logged-in connection to one database; every read runs in a READ ONLY transaction. */
export interface DatabaseSession {
  /** Whether the connection is TLS-encrypted. */
  readonly encrypted: boolean;
  /** Runs a bounded query (the caller puts the LIMIT in it) and returns its rows and columns. */
  sample(sql: string): Promise<{ columns: ColumnInfo[]; rows: Row[] }>;
  /**
   * Streams a query's rows in chunks of at most `batchSize`, reading from the server only as fast
   * as the consumer takes them. Each wait for the server is bounded; `signal` stops it at once.
   */
  stream(sql: string, params: string[], batchSize: number, signal: AbortSignal): AsyncGenerator<Row[]>;
  close(): Promise<void>;
}

/** How long a session may wait on the server for one answer (a sample, one chunk of a stream). */
export interface SessionLimits {
  readTimeoutMs: number;
}
