import { problems, type PathItem } from '../docs/openapi';
import {
  cursorPaginationSchema,
  quarantinedRecordSchema,
  quarantineQuerySchema,
  rawRecordSchema,
  recordsQuerySchema,
} from './records.contracts';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const tags = ['Records'];

const queryParams = (schema: { properties: Record<string, object> }) =>
  Object.entries(schema.properties).map(([name, s]) => ({ name, in: 'query', required: false, schema: s }));

export const recordsSchemas = {
  RawRecord: rawRecordSchema,
  QuarantinedRecord: quarantinedRecordSchema,
  CursorPagination: cursorPaginationSchema,
  RawRecordPage: {
    type: 'object',
    required: ['data', 'pagination'],
    properties: { data: { type: 'array', items: ref('RawRecord') }, pagination: ref('CursorPagination') },
  },
  QuarantinedRecordPage: {
    type: 'object',
    required: ['data', 'pagination'],
    properties: {
      data: { type: 'array', items: ref('QuarantinedRecord') },
      pagination: ref('CursorPagination'),
    },
  },
};

/** The three representations of a record list, chosen by Accept. */
function representations(page: string, item: string, csvColumns: string) {
  return {
    'application/json': { schema: ref(page) },
    'application/x-ndjson': {
      schema: {
        type: 'string',
        description: `Every matching record (not paged), one ${item} JSON object a line, oldest first; streamed.`,
      },
    },
    'text/csv': {
      schema: {
        type: 'string',
        description: `Every matching record (not paged) with a header line: ${csvColumns}; JSON columns as JSON text; streamed.`,
      },
    },
  };
}

export const recordsPaths: Record<string, PathItem> = {
  '/raw-data-sources/{id}/records': {
    get: {
      tags,
      operationId: 'listRawDataSourceRecords',
      summary:
        'Records landed for a source, oldest first: JSON pages by cursor, or every match streamed as NDJSON or CSV (Accept)',
      description:
        'Accept: application/json (the default) answers a page and a `pagination.next_cursor` to pass as `after`; ' +
        'application/x-ndjson or text/csv streams every match from a single snapshot. 406 for any other Accept.',
      parameters: [idParam, ...queryParams(recordsQuerySchema)],
      responses: {
        '200': {
          description: 'A page of records, or the export stream',
          content: representations('RawRecordPage', 'RawRecord', 'id,run_id,ingested_at,payload'),
        },
        ...problems(400, 404, 406, 503),
      },
    },
  },
  '/raw-data-sources/{id}/quarantine': {
    get: {
      tags,
      operationId: 'listRawDataSourceQuarantine',
      summary:
        "Records that failed the source's schema_definition, with their errors: JSON pages by cursor, or streamed as NDJSON or CSV",
      description:
        'Each record with the schema_definition violations that kept it out of the landing zone; paged and ' +
        'exported like the records (Accept chooses JSON pages, NDJSON or CSV).',
      parameters: [idParam, ...queryParams(quarantineQuerySchema)],
      responses: {
        '200': {
          description: 'A page of quarantined records, or the export stream',
          content: representations(
            'QuarantinedRecordPage',
            'QuarantinedRecord',
            'id,run_id,quarantined_at,payload,errors',
          ),
        },
        ...problems(400, 404, 406, 503),
      },
    },
  },
};
