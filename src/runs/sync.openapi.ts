import { problems, type PathItem } from '../docs/openapi';
import { headers } from '../docs/problem-responses';
import { sluiceEventSchema } from '../events/event-bus';
import { eventsQuerySchema } from '../events/events.routes';
import {
  jobAcceptedSchema,
  jobSchema,
  syncAllJobResultSchema,
  syncJobResultSchema,
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

function jobOf(queue: string, result: string) {
  return {
    title: `${queue} job`,
    allOf: [ref('JobBase')],
    type: 'object',
    required: ['queue', 'result'],
    properties: {
      queue: { type: 'string', const: queue },
      result: { anyOf: [ref(result), { type: 'null' }] },
    },
  };
}
const queuedAt = { description: 'Queued', headers: headers('Location') };
const TEST_TIMING =
  'The test runs as a job on a worker, bounded as a whole by TEST_TIMEOUT_MS (each step by ' +
  'CONNECT_TIMEOUT_MS within it); the request waits TEST_WAIT_MS, which is always longer. So a test a worker ' +
  'picks up at once answers 200 with its result, a slow or hanging peer included (as a failed `timeout` ' +
  'step); 202 with the job to poll only means no worker took the job in time (all busy, or none running).';

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
  SyncJobResult: syncJobResultSchema,
  SyncAllJobResult: syncAllJobResultSchema,
  JobBase: jobSchema,
  // A job's result depends on its queue: one variant per queue, so a client reading a test job gets
  // a TestResult. Each variant narrows the base (same fields, same validation of the rest).
  Job: {
    description: 'A job of the sync, test or sync-all queue; `queue` tells which, and so what `result` is.',
    oneOf: [
      jobOf('sync', 'SyncJobResult'),
      jobOf('test', 'TestResult'),
      jobOf('sync-all', 'SyncAllJobResult'),
    ],
  },
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
      description:
        'Opens a queued run and queues its job; poll GET /jobs/{job_id} (Location) or follow the run in ' +
        'GET /raw-data-sources/{id}/runs or the event stream. 409 when the source is inactive, or a sync is just finishing.',
      parameters: [idParam],
      responses: {
        '202': { ...queuedAt, content: json(ref('SyncAccepted')) },
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
      description: `Runs the connector's test steps against the saved source. ${TEST_TIMING}`,
      parameters: [idParam],
      responses: {
        '200': { description: 'Test finished', content: json(ref('TestResult')) },
        '202': {
          description: 'No worker took the job in time: poll GET /jobs/{job_id} (Location)',
          headers: headers('Location'),
          content: json(ref('JobAccepted')),
        },
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
      description:
        'The body is validated as a create (400 names the field). The configuration is sealed (encrypted) ' +
        `as a draft that expires, and the job carries only its id. ${TEST_TIMING}`,
      requestBody: { required: true, content: json(ref('RawDataSourceCreate')) },
      responses: {
        '200': { description: 'Test finished', content: json(ref('TestResult')) },
        '202': {
          description: 'No worker took the job in time: poll GET /jobs/{job_id} (Location)',
          headers: headers('Location'),
          content: json(ref('JobAccepted')),
        },
        ...problems(400, 413, 415, 503),
      },
    },
  },
  '/raw-data-sources/sync-all': {
    post: {
      tags,
      operationId: 'syncAllRawDataSources',
      summary: 'Queue a sync of every active source not already queued or syncing',
      description:
        'Counts what it will queue, records the batch and hands the fan-out to a job (GET /jobs/{batch_id}, ' +
        'in Location); the job queues the syncs page by page.',
      responses: {
        '202': {
          description: 'Fan-out started',
          headers: headers('Location'),
          content: json(ref('SyncAllAccepted')),
        },
        ...problems(503),
      },
    },
  },
  '/raw-data-sources/{id}/runs': {
    get: {
      tags,
      operationId: 'listRawDataSourceRuns',
      summary: 'Run history of a source, newest first',
      description:
        'Every run of the source (queued, running, success, failed, cancelled) with its counts and error, paged by limit and offset.',
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
      description:
        'The job as BullMQ holds it: its state, ids-only data and, once completed, its result (typed by queue). ' +
        'Completed jobs are kept 24 hours (test jobs 1 hour); after that, 404.',
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
                // What the data lines decode to (JSON Schema 2020-12), so clients can type the events.
                contentMediaType: 'text/event-stream',
                contentSchema: ref('Event'),
              },
            },
          },
        },
        ...problems(400, 503),
      },
    },
  },
};
