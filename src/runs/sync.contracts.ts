import type { FromSchema } from 'json-schema-to-ts';
import type { TestStep } from '../connectors/connector';
import { STEP_CODES } from '../connectors/kit/step-codes';
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
    trigger: { type: 'string', enum: SYNC_TRIGGERS },
    status: { type: 'string', enum: RUN_STATUSES },
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
    status: { type: 'string', enum: RUN_STATUSES },
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
    name: {
      type: 'string',
      description:
        'snake_case, the same step the same name in every type: configuration, resolve, connect, ...',
    },
    status: { type: 'string', enum: ['passed', 'failed', 'skipped', 'warning'] },
    message: { type: 'string' },
    duration_ms: { type: 'integer' },
    code: {
      type: 'string',
      enum: STEP_CODES,
      description:
        'Stable code of a failed or warning step (see "Connectors" in the architecture); absent on a step that passed.',
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

/** What BullMQ's getState() answers; `unknown` for a job removed while it was read. */
export const JOB_STATES = [
  'waiting',
  'waiting-children',
  'prioritized',
  'delayed',
  'active',
  'completed',
  'failed',
  'unknown',
] as const;

export const JOB_QUEUES = ['sync', 'test', 'sync-all'] as const;

/** What a sync job returns (GET /jobs/{id} `result` once it completed). */
export const syncJobResultSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: {
    runId: { type: 'string', format: 'uuid' },
    status: {
      type: 'string',
      enum: ['success', 'skipped'],
      description: 'skipped: the run was no longer active (source inactive or deleted, or taken over).',
    },
    reason: { type: 'string' },
    overlap: {
      type: 'object',
      additionalProperties: false,
      required: ['policy', 'activeRunId'],
      description:
        'A tick that found its source busy: the overlap policy applied, and the run holding the source.',
      properties: {
        policy: { type: 'string', enum: ['skip'] },
        activeRunId: { type: 'string', format: 'uuid' },
      },
    },
    records: { type: 'integer' },
    bytes: { type: 'integer' },
  },
} as const;
export type SyncJobResult = FromSchema<typeof syncJobResultSchema>;

/** What a sync-all job returns. */
export const syncAllJobResultSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['batch_id', 'queued'],
  properties: {
    batch_id: { type: 'string', format: 'uuid' },
    queued: { type: 'integer', description: 'Syncs the fan-out queued.' },
    cancelled: {
      const: true,
      description: 'The batch was cancelled before the job ran (its enqueue timed out).',
    },
  },
} as const;
export type SyncAllJobResult = FromSchema<typeof syncAllJobResultSchema>;

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
    queue: { type: 'string', enum: JOB_QUEUES },
    name: { type: 'string' },
    state: { type: 'string', enum: JOB_STATES },
    data: {
      type: 'object',
      additionalProperties: true,
      description: 'Ids only: sourceId, runId, trigger, batchId, draftId, requestId.',
    },
    attempts_made: { type: 'integer' },
    result: {
      description:
        "The job's result once it completed, null before: by queue, a SyncJobResult, a TestResult or a SyncAllJobResult.",
    },
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
