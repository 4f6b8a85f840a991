import { problems, ref, type PathItem } from '../docs/openapi';
import { runLogLineSchema, runLogSchema } from './run-log.contracts';

export const runLogSchemas = {
  RunLogLine: runLogLineSchema,
  RunLog: {
    ...runLogSchema,
    properties: { ...runLogSchema.properties, lines: { type: 'array', items: ref('RunLogLine') } },
  },
};

export const runLogPaths: Record<string, PathItem> = {
  '/raw-data-sources/{id}/runs/{run_id}/logs': {
    get: {
      tags: ['Sync'],
      operationId: 'getRawDataSourceRunLogs',
      summary: "A run's own log: start, batches, retries, quarantine summary, finish",
      description:
        'The structured lines the worker wrote while running this run, over all its attempts, oldest ' +
        'first: `started`, `reading`, one `batch` line per landed batch with its counts, `retrying` ' +
        'with the reason, `quarantine` (how many records failed schema_definition and the first ' +
        'violations), and `finished` with the totals and duration. A run keeps at most 500 lines ' +
        '(128 KiB); past that, lines are counted and a `dropped` line ("… K lines dropped") follows ' +
        "the attempt's last line. Lines of a running run appear about once a second. Secrets never " +
        'appear in a line. The lines go with the run: deleting the source (with ?purge=true) removes them.',
      parameters: [
        { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } },
        {
          name: 'run_id',
          in: 'path',
          required: true,
          description: 'A run of this source (GET /raw-data-sources/{id}/runs).',
          schema: { type: 'string', format: 'uuid' },
        },
      ],
      responses: {
        '200': { description: "The run's lines", content: { 'application/json': { schema: ref('RunLog') } } },
        ...problems(400, 404),
      },
    },
  },
};
