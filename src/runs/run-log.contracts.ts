import type { FromSchema } from 'json-schema-to-ts';
import { RUN_STATUSES } from './sync.contracts';

/** One line of a run's own log (runs/run-log.ts); schema-first like sync.contracts.ts. */
export const runLogLineSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['at', 'level', 'event', 'attempt', 'message'],
  properties: {
    at: { type: 'string', format: 'date-time' },
    level: { enum: ['info', 'warn', 'error'] },
    event: {
      type: 'string',
      description:
        'What the line is about: started, reading, batch, quarantine, retrying, finished, stopped, dropped.',
      examples: ['batch'],
    },
    attempt: { type: 'integer', description: 'The attempt of the run that wrote the line.' },
    message: { type: 'string', description: 'Readable text; secrets are never in it.' },
    data: {
      type: 'object',
      additionalProperties: true,
      description: 'Counts and codes behind the message (records, bytes, invalid, code…).',
    },
  },
} as const;
export type RunLogLine = FromSchema<typeof runLogLineSchema>;

export const runLogSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['run_id', 'source_id', 'status', 'lines'],
  properties: {
    run_id: { type: 'string', format: 'uuid' },
    source_id: { type: 'string', format: 'uuid' },
    status: {
      enum: RUN_STATUSES,
      description: "The run's status when the lines were read (a running run's log still grows).",
    },
    lines: { type: 'array', items: runLogLineSchema },
  },
} as const;
export type RunLogView = FromSchema<typeof runLogSchema>;
