import { problems, type PathItem } from '../docs/openapi';
import { eventsQuerySchema } from '../events/events.routes';
import { runsQuerySchema } from './sync.routes';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const tags = ['Sync'];

const nullable = (type: string, extra: object = {}) => ({ type: [type, 'null'], ...extra });

export const syncSchemas = {
  SyncRun: {
    type: 'object',
    required: ['id', 'source_id', 'trigger', 'status', 'attempt', 'queued_at', 'records', 'bytes', 'invalid'],
    properties: {
      id: { type: 'string', format: 'uuid' },
      source_id: { type: 'string', format: 'uuid' },
      trigger: { enum: ['manual', 'schedule', 'sync_all'] },
      status: { enum: ['queued', 'running', 'success', 'failed', 'cancelled'] },
      attempt: { type: 'integer' },
      job_id: nullable('string'),
      batch_id: nullable('string', { format: 'uuid' }),
      queued_at: { type: 'string', format: 'date-time' },
      started_at: nullable('string', { format: 'date-time' }),
      finished_at: nullable('string', { format: 'date-time' }),
      duration_ms: nullable('integer'),
      records: { type: 'integer' },
      bytes: { type: 'integer' },
      invalid: { type: 'integer' },
      error: nullable('string'),
    },
  },
  SyncRunList: {
    type: 'object',
    required: ['data', 'pagination'],
    properties: { data: { type: 'array', items: ref('SyncRun') }, pagination: ref('Pagination') },
  },
  SyncAccepted: {
    type: 'object',
    required: ['job_id', 'run_id', 'status'],
    properties: {
      job_id: { type: 'string' },
      run_id: { type: 'string', format: 'uuid' },
      status: { type: 'string' },
    },
  },
  SyncAllAccepted: {
    type: 'object',
    required: ['batch_id', 'queued', 'skipped'],
    properties: {
      batch_id: {
        type: 'string',
        format: 'uuid',
        description: 'Also the id of the fan-out job: GET /jobs/{batch_id}.',
      },
      queued: { type: 'integer', description: 'Active sources with no sync queued or running.' },
      skipped: { type: 'integer', description: 'Active sources already queued or syncing.' },
    },
  },
  TestStep: {
    type: 'object',
    required: ['name', 'status', 'message', 'duration_ms'],
    properties: {
      name: { type: 'string' },
      status: { enum: ['passed', 'failed', 'skipped', 'warning'] },
      message: { type: 'string' },
      duration_ms: { type: 'integer' },
      code: {
        type: 'string',
        description:
          'Stable failure code: dns, refused, timeout, tls, auth, not_found, permission, not_implemented...',
      },
    },
  },
  TestResult: {
    type: 'object',
    required: ['ok', 'steps', 'duration_ms'],
    properties: {
      ok: { type: 'boolean' },
      steps: { type: 'array', items: ref('TestStep') },
      duration_ms: { type: 'integer' },
    },
  },
  JobAccepted: {
    type: 'object',
    required: ['job_id', 'status'],
    properties: { job_id: { type: 'string' }, status: { type: 'string' } },
  },
  Job: {
    type: 'object',
    required: ['id', 'queue', 'name', 'state'],
    properties: {
      id: { type: 'string' },
      queue: { enum: ['sync', 'test', 'sync-all'] },
      name: { type: 'string' },
      state: { type: 'string', examples: ['waiting', 'delayed', 'active', 'completed', 'failed'] },
      data: { type: 'object', description: 'Ids only: sourceId, runId, trigger, batchId.' },
      attempts_made: { type: 'integer' },
      result: { description: "The job's result; for a test job, a TestResult." },
      error: nullable('string'),
      created_at: nullable('string', { format: 'date-time' }),
      finished_at: nullable('string', { format: 'date-time' }),
    },
  },
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
      parameters: [
        ...queryParams(eventsQuerySchema),
        { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } },
      ],
      responses: {
        '200': {
          description: 'An event stream; each event is {id, type, source_id, run_id, at, data}',
          content: { 'text/event-stream': { schema: { type: 'string' } } },
        },
        ...problems(400, 503),
      },
    },
  },
};
