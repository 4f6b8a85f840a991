import type { FromSchema } from 'json-schema-to-ts';

/**
 * The payloads of the record endpoints, each one `as const` JSON Schema used three ways: ajv
 * validates the query with it, `FromSchema` types what the repository returns, and
 * records.openapi.ts publishes it.
 */

export const RECORD_VIEWS = ['all', 'current'] as const;
export type RecordView = (typeof RECORD_VIEWS)[number];

/** Media types a record list is served as; the two streaming ones export every matching row. */
export const RECORD_MEDIA_TYPES = ['application/json', 'application/x-ndjson', 'text/csv'] as const;
export type RecordMediaType = (typeof RECORD_MEDIA_TYPES)[number];

const commonQuery = {
  limit: {
    type: 'integer',
    minimum: 1,
    maximum: 1000,
    default: 100,
    description: 'Records per JSON page (streamed exports are not paged).',
  },
  after: {
    type: 'string',
    pattern: '^[A-Za-z0-9_-]{1,40}$',
    description: "Opaque cursor: the previous page's `pagination.next_cursor`.",
  },
  run_id: { type: 'string', format: 'uuid', description: 'Only records landed by this run.' },
  since: {
    type: 'string',
    format: 'date-time',
    description: 'Only records landed at or after this time (RFC 3339).',
  },
} as const;

export const recordsQuerySchema = {
  $id: 'RecordListQuery',
  type: 'object',
  additionalProperties: false,
  properties: {
    ...commonQuery,
    view: {
      enum: RECORD_VIEWS,
      default: 'all',
      description:
        '`all`: every landed record, oldest first. `current`: the latest version of each record, for sources whose sync mode keeps one.',
    },
  },
} as const;
export type RecordsQuery = FromSchema<typeof recordsQuerySchema> & { limit: number; view: RecordView };

export const quarantineQuerySchema = {
  $id: 'QuarantineListQuery',
  type: 'object',
  additionalProperties: false,
  properties: commonQuery,
} as const;
export type QuarantineQuery = FromSchema<typeof quarantineQuerySchema> & { limit: number };

export const rawRecordSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'run_id', 'ingested_at', 'payload'],
  properties: {
    id: { type: 'integer', description: 'Landing order: increases with every record landed.' },
    run_id: { type: 'string', format: 'uuid' },
    ingested_at: { type: 'string', format: 'date-time' },
    payload: { description: 'The record as the source delivered it (any JSON value).' },
  },
} as const;
export type RawRecord = FromSchema<typeof rawRecordSchema>;

export const recordErrorSchema = {
  type: 'object',
  required: ['pointer', 'message'],
  properties: {
    pointer: { type: 'string', description: 'JSON Pointer into the payload.' },
    message: { type: 'string' },
  },
} as const;

export const quarantinedRecordSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'run_id', 'quarantined_at', 'payload', 'errors'],
  properties: {
    id: { type: 'integer' },
    run_id: { type: 'string', format: 'uuid' },
    quarantined_at: { type: 'string', format: 'date-time' },
    payload: { description: 'The record as delivered (U+0000 and lone surrogates shown as U+FFFD).' },
    errors: {
      type: 'array',
      items: recordErrorSchema,
      description: "Why it failed the source's schema_definition (or could not be stored).",
    },
  },
} as const;
export type QuarantinedRecord = FromSchema<typeof quarantinedRecordSchema>;

export const cursorPaginationSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['limit', 'next_cursor'],
  properties: {
    limit: { type: 'integer' },
    next_cursor: {
      type: ['string', 'null'],
      description: 'Pass as `after` for the next page; null on the last page.',
    },
  },
} as const;
export type CursorPagination = FromSchema<typeof cursorPaginationSchema>;
