import type { Knex } from 'knex';
import type { SavedSource } from './webhook/webhook.connector';
import { ApiConnector } from './api/api.connector';
import type { Connector } from './connector';
import type { ByteLimits } from './kit/byte-limits';
import { DatabaseConnector } from './database/database.connector';
import { FileConnector } from './file/file.connector';
import { StreamConnector } from './stream/stream.connector';
import { WebhookConnector } from './webhook/webhook.connector';

/** One connector per source_type, built once per process. */
export function createConnectors(deps: {
  knex: Knex;
  fileRoots: string[];
  /** RECORD_MAX_BYTES, BATCH_MAX_BYTES, DECOMPRESSED_MAX_BYTES, MAX_COMPRESSION_RATIO. */
  limits: ByteLimits;
  /** HTTP_REQUEST_MAX_MS: one whole HTTP request of the api connector. */
  httpRequestMaxMs?: number;
  /** STREAM_MAX_RUN_RECORDS: records one stream run lands at most. */
  streamMaxRunRecords?: number;
  savedSource(id: string, timeoutMs: number): Promise<SavedSource | undefined>;
}): Connector[] {
  return [
    new DatabaseConnector({ limits: deps.limits }),
    new ApiConnector({ limits: deps.limits, http: { requestMaxMs: deps.httpRequestMaxMs } }),
    new FileConnector(deps.fileRoots, { limits: deps.limits }),
    new StreamConnector(deps.limits.batchMaxBytes, deps.streamMaxRunRecords),
    new WebhookConnector({
      knex: deps.knex,
      savedSource: deps.savedSource,
      batchBytes: deps.limits.batchMaxBytes,
    }),
  ];
}
