import type { CrudDocs } from '../http/crud/resource';

/** What the document needs of a connector: its type and the metadata schema source.hooks validates with. */
export interface MetadataRule {
  type: string;
  metadataSchema?: Readonly<Record<string, unknown>>;
}

const pascal = (type: string) => type.replace(/(^|[_-])(\w)/g, (_m, _s, c: string) => c.toUpperCase());
const componentOf = (type: string) => `${pascal(type)}SourceMetadata`;

/** A create body per source type, shown in Swagger UI and checked against the schema by the tests. */
const EXAMPLES: Record<string, { summary: string; value: Record<string, unknown> }> = {
  database: {
    summary: 'database: a Postgres table, read incrementally by updated_at',
    value: {
      name: 'orders-db',
      source_type: 'database',
      connection_string: 'postgres://reader:secret@db.example.com:5432/shop',
      metadata: { table: 'public.orders', cursor_column: 'updated_at' },
      refresh_interval: 900,
    },
  },
  api: {
    summary: 'api: a JSON API paged by cursor, incremental by updated_at',
    value: {
      name: 'crm-contacts',
      source_type: 'api',
      connection_string: 'https://api.example.com/v1/contacts',
      metadata: {
        records_path: 'data',
        pagination: { type: 'cursor', param: 'cursor', path: 'meta.next_cursor' },
        incremental: { param: 'updated_since', field: 'updated_at' },
      },
    },
  },
  file: {
    summary: 'file: a semicolon-separated CSV file under FILE_ROOTS',
    value: {
      name: 'daily-export',
      source_type: 'file',
      connection_string: 'file:///srv/exports/orders.csv',
      metadata: { format: 'csv', delimiter: ';', header: true },
      refresh_interval: 86400,
    },
  },
  stream: {
    summary: 'stream: a Redis stream, from its oldest entry',
    value: {
      name: 'clickstream',
      source_type: 'stream',
      connection_string: 'redis://:secret@redis.example.com:6379/0',
      metadata: { stream: 'clicks', batch: 500, start: 'earliest' },
    },
  },
  webhook: {
    summary: 'webhook: senders sign with the connection string; metadata is your own',
    value: {
      name: 'shop-events',
      source_type: 'webhook',
      connection_string: 'whsec-7c1f9a2b4d6e8f0a1b3c5d7e9f1a3b5c',
      metadata: { owner: 'growth-team' },
    },
  },
};

/**
 * How `metadata` is documented: one schema per source type — the very schema its connector
 * declares and source.hooks validates with, so the two cannot drift — offered as an anyOf.
 * Validation is per type and only applies when metadata holds a key the type's connector reads
 * (other keys are the user's own), so the union documents exactly what is accepted: every
 * alternative takes additional keys, and one (webhook) reads none.
 */
export function sourceMetadataDocs(rules: readonly MetadataRule[]): CrudDocs {
  const schemas: Record<string, unknown> = {};
  for (const rule of rules) {
    const keys = Object.keys((rule.metadataSchema?.properties as object | undefined) ?? {});
    schemas[componentOf(rule.type)] = {
      title: componentOf(rule.type),
      ...(rule.metadataSchema ?? { type: 'object', additionalProperties: true }),
      description:
        `metadata of a source_type ${rule.type} source. ` +
        (keys.length
          ? `Keys the connector reads: ${keys.join(', ')}; checked at create and update once any of them is present. `
          : 'The connector reads no key. ') +
        'Other keys are your own, stored as given.',
    };
  }
  schemas.SourceMetadata = {
    description:
      "Settings for the source's connector, by source_type (see each alternative); keys no connector reads are kept as your own.",
    anyOf: rules.map((r) => ({ $ref: `#/components/schemas/${componentOf(r.type)}` })),
  };
  const createExamples = Object.fromEntries(
    rules.filter((r) => EXAMPLES[r.type]).map((r) => [r.type, EXAMPLES[r.type]!]),
  );
  return {
    schemas,
    fields: { metadata: { $ref: '#/components/schemas/SourceMetadata' } },
    createExamples,
  };
}
