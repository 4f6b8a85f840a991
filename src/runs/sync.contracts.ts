import type { FromSchema } from 'json-schema-to-ts';
import type { TestStep } from '../connectors/connector';
import { PAGE_QUERY_PROPERTIES } from '../http/page-query';

/**
 * The payloads of the run endpoints, each one `as const` JSON Schema serving three uses: ajv
 * validates requests with it, `FromSchema` gives the TypeScript type the code returns, and
 * sync.openapi.ts publishes it as a component. Nothing is written twice, so the type, the
 * validation and the document cannot drift apart.
 */

const nullableString = { type: ['string', 'null'] } as const;
const nullableTime = { type: ['string', 'null'], format: 'date-time' } as const;

export const RUN_STATUSES = ['queued', 'running', 'success', 'failed', 'cancelled'] as const;
export const SYNC_TRIGGERS = ['manual', 'schedule', 'sync_all'] as const;

export const syncRunSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'id',
    'source_id',
    'trigger',
    'status',
    'attempt',
    'job_id',
    'batch_id',
    'queued_at',
    'started_at',
    'finished_at',
    'duration_ms',
    'records',
    'bytes',
    'invalid',
    'error',
  ],
  properties: {
    id: { type: 'string', format: 'uuid' },
    source_id: { type: 'string', format: 'uuid' },
    trigger: { enum: SYNC_TRIGGERS },
    status: { enum: RUN_STATUSES },
    attempt: { type: 'integer' },
    job_id: nullableString,
    batch_id: { type: ['string', 'null'], format: 'uuid' },
    queued_at: { type: 'string', format: 'date-time' },
    started_at: nullableTime,
    finished_at: nullableTime,
    duration_ms: { type: ['integer', 'null'] },
    records: { type: 'integer' },
    bytes: { type: 'integer' },
    invalid: { type: 'integer' },
    error: nullableString,
  },
} as const;
export type SyncRun = FromSchema<typeof syncRunSchema>;
export type RunStatus = SyncRun['status'];

export const syncAcceptedSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['job_id', 'run_id', 'status'],
  properties: {
    job_id: { type: 'string' },
    run_id: { type: 'string', format: 'uuid' },
    status: { enum: RUN_STATUSES },
  },
} as const;
export type SyncAccepted = FromSchema<typeof syncAcceptedSchema>;

export const syncAllAcceptedSchema = {
  type: 'object',
  additionalProperties: false,
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
} as const;
export type SyncAllAccepted = FromSchema<typeof syncAllAcceptedSchema>;

export const testStepSchema = {
  type: 'object',
  additionalProperties: false,
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
} as const;

export const testResultSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['ok', 'steps', 'duration_ms'],
  properties: {
    ok: { type: 'boolean', description: 'True when no step failed.' },
    steps: { type: 'array', items: testStepSchema },
    duration_ms: { type: 'integer' },
  },
} as const;

/** A finished connection test; the steps' shape is the connector kit's TestStep. */
export type TestResult = Omit<FromSchema<typeof testResultSchema>, 'steps'> & { steps: TestStep[] };

export const jobAcceptedSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['job_id', 'status'],
  properties: { job_id: { type: 'string' }, status: { const: 'queued' } },
} as const;
export type JobAccepted = FromSchema<typeof jobAcceptedSchema>;

export const jobSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'id',
    'queue',
    'name',
    'state',
    'data',
    'attempts_made',
    'result',
    'error',
    'created_at',
    'finished_at',
  ],
  properties: {
    id: { type: 'string' },
    queue: { enum: ['sync', 'test', 'sync-all'] },
    name: { type: 'string' },
    state: { type: 'string', examples: ['waiting', 'delayed', 'active', 'completed', 'failed'] },
    data: {
      type: 'object',
      additionalProperties: true,
      description: 'Ids only: sourceId, runId, trigger, batchId.',
    },
    attempts_made: { type: 'integer' },
    result: { description: "The job's result; for a test job, a TestResult." },
    error: nullableString,
    created_at: nullableTime,
    finished_at: nullableTime,
  },
} as const;
export type JobView = FromSchema<typeof jobSchema>;

export const runsQuerySchema = {
  $id: 'SyncRunListQuery',
  type: 'object',
  additionalProperties: false,
  properties: PAGE_QUERY_PROPERTIES,
} as const;
