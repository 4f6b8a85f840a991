/** A tag of the document: operations are grouped by it in Swagger UI and in generated clients. */
export interface TagDoc {
  name: string;
  description: string;
}

/**
 * Every tag an operation of this API uses, with what it groups. An operation with a tag not
 * listed here (or in OpenApiInput.tags) fails the Spectral test (operation-tag-defined).
 */
export const API_TAGS: readonly TagDoc[] = [
  {
    name: 'RawDataSource',
    description:
      'Sources: where the data is (source_type, connection_string, metadata), how often to sync it and how to check it.',
  },
  {
    name: 'Sync',
    description:
      'Sync and test-connection requests (each runs as a job), the run history of a source, and job polling.',
  },
  { name: 'Records', description: 'The landed records of a source and its quarantine, as pages or exports.' },
  { name: 'Events', description: 'Server-Sent Events: source changes, sync progress and connection tests.' },
  { name: 'Webhooks', description: 'Signed payloads pushed by a webhook source; landed by its next sync.' },
  {
    name: 'Notifications',
    description:
      'Webhook subscriptions to events (sync failed, schema drift, freshness, deactivation), signed deliveries and their log; admin scope.',
  },
  { name: 'Access', description: 'API keys and the audit log; admin scope.' },
  { name: 'Admin', description: 'The job dashboard (Bull Board) for operators; admin scope.' },
  { name: 'Health', description: 'Liveness, readiness and Prometheus metrics.' },
  { name: 'Docs', description: 'This document and its Swagger UI.' },
];
