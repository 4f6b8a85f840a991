import type { FromSchema } from 'json-schema-to-ts';
import { PAGE_QUERY_PROPERTIES } from '../http/page-query';

/**
 * The payloads of the notification endpoints, each one `as const` JSON Schema: ajv validates
 * requests with it, `FromSchema` gives the type the code uses, and notification.openapi.ts
 * publishes it.
 */

/**
 * The event types a subscription may ask for. `sync.succeeded` is sent only to subscriptions that
 * name it (opt-in, like every type here: nothing is sent that was not asked for).
 * `source.deactivated` is published by the source lifecycle; a subscription may name it already.
 */
export const NOTIFIABLE_EVENT_TYPES = [
  'sync.failed',
  'sync.succeeded',
  'sync.partial',
  'schema.drift_detected',
  'source.deactivated',
  'freshness.breached',
  'freshness.recovered',
] as const;
export type NotifiableEventType = (typeof NOTIFIABLE_EVENT_TYPES)[number];

export const isNotifiable = (type: string): type is NotifiableEventType =>
  (NOTIFIABLE_EVENT_TYPES as readonly string[]).includes(type);

const url = {
  type: 'string',
  minLength: 1,
  maxLength: 2048,
  description:
    'Where deliveries are POSTed: http or https, no user:password part. Each delivery passes the ' +
    'outbound address policy (OUTBOUND_ALLOW / OUTBOUND_DENY) when it is sent.',
  examples: ['https://hooks.example.com/sluice'],
} as const;
const eventTypes = {
  type: 'array',
  minItems: 1,
  maxItems: NOTIFIABLE_EVENT_TYPES.length,
  uniqueItems: true,
  items: { enum: NOTIFIABLE_EVENT_TYPES },
  description: 'The event types delivered to this URL.',
} as const;
const secret = {
  type: 'string',
  minLength: 16,
  maxLength: 256,
  writeOnly: true,
  description:
    'Signs every delivery (Sluice-Signature). Write-only: stored encrypted, never returned or logged.',
} as const;
const description = { type: ['string', 'null'], maxLength: 500 } as const;
const enabled = { type: 'boolean', description: 'A disabled subscription receives nothing.' } as const;

export const subscriptionCreateSchema = {
  $id: 'NotificationSubscriptionCreate',
  type: 'object',
  additionalProperties: false,
  required: ['url', 'event_types', 'secret'],
  properties: { url, event_types: eventTypes, secret, description, enabled: { ...enabled, default: true } },
} as const;
export type SubscriptionCreate = FromSchema<typeof subscriptionCreateSchema>;

export const subscriptionUpdateSchema = {
  $id: 'NotificationSubscriptionUpdate',
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { url, event_types: eventTypes, secret, description, enabled },
} as const;
export type SubscriptionUpdate = FromSchema<typeof subscriptionUpdateSchema>;

/** A subscription as the API shows it: never the secret. */
export const subscriptionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'url', 'event_types', 'description', 'enabled', 'has_secret', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    url: { type: 'string' },
    event_types: { type: 'array', items: { enum: NOTIFIABLE_EVENT_TYPES } },
    description: { type: ['string', 'null'] },
    enabled: { type: 'boolean' },
    has_secret: { type: 'boolean', description: 'Always true: the secret itself is never shown.' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
} as const;
export type Subscription = FromSchema<typeof subscriptionSchema>;

export const subscriptionListQuerySchema = {
  $id: 'NotificationSubscriptionListQuery',
  type: 'object',
  additionalProperties: false,
  properties: PAGE_QUERY_PROPERTIES,
} as const;

export const deliveryLogQuerySchema = {
  $id: 'NotificationDeliveryLogQuery',
  type: 'object',
  additionalProperties: false,
  properties: PAGE_QUERY_PROPERTIES,
} as const;

export const ATTEMPT_OUTCOMES = ['succeeded', 'retrying', 'failed'] as const;

/** One delivery attempt in a subscription's log. */
export const deliveryAttemptSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'id',
    'delivery_id',
    'event_id',
    'event_type',
    'attempt',
    'outcome',
    'status_code',
    'duration_ms',
    'error',
    'at',
  ],
  properties: {
    id: { type: 'string', description: 'Grows with time.' },
    delivery_id: {
      type: 'string',
      format: 'uuid',
      description: 'Also sent as the Sluice-Delivery header: the same on every attempt of a delivery.',
    },
    event_id: { type: 'string', description: 'The event id (as in GET /events).' },
    event_type: { type: 'string' },
    attempt: { type: 'integer', minimum: 1 },
    outcome: {
      enum: ATTEMPT_OUTCOMES,
      description: 'succeeded (2xx), retrying (another attempt is scheduled) or failed (no more attempts).',
    },
    status_code: { type: ['integer', 'null'], description: 'The HTTP status answered; null if none.' },
    duration_ms: { type: 'integer', minimum: 0 },
    error: { type: ['string', 'null'], description: 'Why the attempt failed; never a secret or a body.' },
    at: { type: 'string', format: 'date-time' },
  },
} as const;
export type DeliveryAttempt = FromSchema<typeof deliveryAttemptSchema>;
export type AttemptOutcome = DeliveryAttempt['outcome'];
