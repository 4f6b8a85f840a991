import type { Knex } from 'knex';
import type { SavedSource } from './webhook/webhook.connector';
import { ApiConnector } from './api/api.connector';
import type { Connector } from './connector';
import { DatabaseConnector } from './database/database.connector';
import { FileConnector } from './file/file.connector';
import { StreamConnector } from './stream/stream.connector';
import { WebhookConnector } from './webhook/webhook.connector';

/** One connector per source_type, built once per process. */
export function createConnectors(deps: {
  knex: Knex;
  fileRoots: string[];
  savedSource(id: string, timeoutMs: number): Promise<SavedSource | undefined>;
}): Connector[] {
  return [
    new DatabaseConnector(),
    new ApiConnector(),
    new FileConnector(deps.fileRoots),
    new StreamConnector(),
    new WebhookConnector({ knex: deps.knex, savedSource: deps.savedSource }),
  ];
}
