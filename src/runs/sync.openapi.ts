import { problems, type PathItem } from '../docs/openapi';
import { sluiceEventSchema } from '../events/event-bus';
import { eventsQuerySchema } from '../events/events.routes';
import {
  jobAcceptedSchema,
  jobSchema,
  runsQuerySchema,
  syncAcceptedSchema,
  syncAllAcceptedSchema,
  syncRunSchema,
  testResultSchema,
  testStepSchema,
} from './sync.contracts';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const tags = ['Sync'];

export const syncSchemas = {
  SyncRun: syncRunSchema,
  SyncRunList: {
    type: 'object',
    required: ['data', 'pagination'],
    properties: { data: { type: 'array', items: ref('SyncRun') }, pagination: ref('Pagination') },
  },
  SyncAccepted: syncAcceptedSchema,
  SyncAllAccepted: syncAllAcceptedSchema,
  TestStep: testStepSchema,
  TestResult: {
    ...testResultSchema,
    properties: { ...testResultSchema.properties, steps: { type: 'array', items: ref('TestStep') } },
  },
  JobAccepted: jobAcceptedSchema,
  Job: jobSchema,
  Event: sluiceEventSchema,
};

const queryParams = (schema: { properties: Record<string, object> }) =>
  Object.entries(schema.properties).map(([name, s]) => ({ name, in: 'query', required: false, schema: s }));

export const syncPaths: Record<string, PathItem> = {
  '/raw-data-sources/{id}/sync': {
    post: {
      tags,
      operationId: 'syncRawDataSource',
      summary: 'Queue a sync now; a second request while one is queued or running returns that one',
      parameters: [idParam],
      responses: {
        '202': { description: 'Queued', content: json(ref('SyncAccepted')) },
        ...problems(400, 404, 409, 503),
      },
    },
  },
  '/raw-data-sources/{id}/cancel': {
    post: {
      tags,
      operationId: 'cancelRawDataSourceSync',
      summary: "Cancel the source's queued or running sync",
      description:
        'The run ends `cancelled` (its `error` says who asked) and `sync.cancelled` is published. A queued job ' +
        'is removed from the queue; a running one is stopped by the worker process holding it, whichever it ' +
        'is, within about a second. The source goes back at once to its status before the run (the outcome ' +
        'of its latest finished run, or `pending`). Batches the run had already landed are kept, as a failed ' +
        "run's are, with the source's incremental state that came with them; a snapshot source's cancelled " +
        'run never becomes its current snapshot. A source with nothing queued or running answers 409 ' +
        '(`reason: no_active_run`), so a second cancel is harmless.',
      parameters: [idParam],
      responses: {
        '200': { description: 'The cancelled run', content: json(ref('SyncRun')) },
        ...problems(400, 404, 409, 503),
      },
    },
  },
  '/raw-data-sources/{id}/test': {
    post: {
      tags,
      operationId: 'testRawDataSource',
      summary: 'Test the connection (runs as a job; waits a bounded time for the result)',
      parameters: [idParam],
      responses: {
        '200': { description: 'Test finished', content: json(ref('TestResult')) },
        '202': { description: 'Still running: poll GET /jobs/{job_id}', content: json(ref('JobAccepted')) },
        ...problems(400, 404, 503),
      },
    },
  },
  '/raw-data-sources/test': {
    post: {
      tags,
      operationId: 'testUnsavedRawDataSource',
      summary:
        'Test a configuration before saving it (same body as create; nothing is stored but a short-lived sealed draft)',
      requestBody: { required: true, content: json(ref('RawDataSourceCreate')) },
      responses: {
        '200': { description: 'Test finished', content: json(ref('TestResult')) },
        '202': { description: 'Still running: poll GET /jobs/{job_id}', content: json(ref('JobAccepted')) },
        ...problems(400, 413, 415, 503),
      },
    },
  },
  '/raw-data-sources/sync-all': {
    post: {
      tags,
      operationId: 'syncAllRawDataSources',
      summary: 'Queue a sync of every active source not already queued or syncing',
      responses: {
        '202': { description: 'Fan-out started', content: json(ref('SyncAllAccepted')) },
        ...problems(503),
      },
    },
  },
  '/raw-data-sources/{id}/runs': {
    get: {
      tags,
      operationId: 'listRawDataSourceRuns',
      summary: 'Run history of a source, newest first',
      parameters: [idParam, ...queryParams(runsQuerySchema)],
      responses: {
        '200': { description: 'A page of runs', content: json(ref('SyncRunList')) },
        ...problems(400, 404),
      },
    },
  },
  '/jobs/{id}': {
    get: {
      tags,
      operationId: 'getJob',
      summary: 'State and result of a sync, test or sync-all job',
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      responses: { '200': { description: 'The job', content: json(ref('Job')) }, ...problems(400, 404, 503) },
    },
  },
  '/events': {
    get: {
      tags: ['Events'],
      operationId: 'streamEvents',
      summary:
        'Server-Sent Events: source changes, sync progress, connection tests. Resumable with Last-Event-ID.',
      description:
        'At most EVENTS_MAX_CLIENTS_PER_KEY (default 5) open streams per key, 429 beyond; at most ' +
        'EVENTS_MAX_CLIENTS (default 100) per API process, 503 beyond.',
      parameters: [
        ...queryParams(eventsQuerySchema),
        { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } },
      ],
      responses: {
        '200': {
          description: 'An event stream; each event is {id, type, source_id, run_id, at, data}',
          content: {
            'text/event-stream': {
              schema: {
                type: 'string',
                description: 'Server-Sent Events; each `data:` line is one Event (JSON).',
              },
            },
          },
        },
        ...problems(400, 503),
      },
    },
  },
};
