import type { FromSchema } from 'json-schema-to-ts';
import { PAGE_QUERY_PROPERTIES } from '../http/page-query';

/**
 * The payloads of the key and audit endpoints, each one `as const` JSON Schema: ajv validates
 * requests with it, `FromSchema` gives the type the code uses, and auth.openapi.ts publishes it.
 */

export const KEY_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
export const API_SCOPES = ['read', 'write', 'admin'] as const;

const nullableTime = { type: ['string', 'null'], format: 'date-time' } as const;

export const apiKeyCreateSchema = {
  $id: 'ApiKeyCreate',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'scope'],
  properties: {
    name: { type: 'string', pattern: KEY_NAME_PATTERN, description: 'Unique; letters, digits, . _ -' },
    scope: { enum: API_SCOPES },
  },
} as const;
export type ApiKeyCreate = FromSchema<typeof apiKeyCreateSchema>;

export const pageQuerySchema = {
  $id: 'ApiKeyListQuery',
  type: 'object',
  additionalProperties: false,
  properties: PAGE_QUERY_PROPERTIES,
} as const;

export const auditQuerySchema = {
  $id: 'AuditListQuery',
  type: 'object',
  additionalProperties: false,
  properties: {
    ...PAGE_QUERY_PROPERTIES,
    actor: { type: 'string', minLength: 1, maxLength: 128 },
    action: { type: 'string', minLength: 1, maxLength: 64 },
    target_id: { type: 'string', minLength: 1, maxLength: 200 },
  },
} as const;

/** A stored key as the API shows it: no token, no hash. */
export const apiKeySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'scope', 'prefix', 'created_at', 'last_used_at', 'revoked_at'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    scope: { enum: API_SCOPES },
    prefix: { type: 'string', description: 'The first characters of the token, to tell keys apart.' },
    created_at: { type: 'string', format: 'date-time' },
    last_used_at: { ...nullableTime, description: 'Updated at most once a minute.' },
    revoked_at: nullableTime,
  },
} as const;
export type ApiKey = FromSchema<typeof apiKeySchema>;

export const apiKeyCreatedSchema = {
  ...apiKeySchema,
  required: [...apiKeySchema.required, 'token'],
  properties: {
    ...apiKeySchema.properties,
    token: { type: 'string', description: 'The token: shown in this response only, never again.' },
  },
} as const;
export type ApiKeyCreated = FromSchema<typeof apiKeyCreatedSchema>;

export const AUDIT_OUTCOMES = ['success', 'denied', 'failed'] as const;

/** An audit row as read back: GET /audit selects exactly its required columns. */
export const auditRecordSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'id',
    'at',
    'actor',
    'action',
    'target_type',
    'target_id',
    'outcome',
    'status',
    'request_id',
    'detail',
  ],
  properties: {
    id: { type: 'string', description: 'Grows with time.' },
    at: { type: 'string', format: 'date-time' },
    actor: {
      type: 'string',
      description: 'Key name (`env:<scope>#<n>` for API_KEYS entries), `anonymous` or `cli`.',
    },
    action: { type: 'string', examples: ['source.create', 'source.sync', 'api_key.revoke'] },
    target_type: { type: 'string' },
    target_id: { type: ['string', 'null'] },
    outcome: { enum: AUDIT_OUTCOMES },
    status: { type: ['integer', 'null'], description: 'The HTTP status answered (null for the keys CLI).' },
    request_id: { type: ['string', 'null'] },
    detail: {
      type: 'object',
      additionalProperties: true,
      description: 'Method, path, problem type, names and scopes; never a secret.',
    },
  },
} as const;
export type AuditRecord = FromSchema<typeof auditRecordSchema>;
export type AuditOutcome = AuditRecord['outcome'];
/** What a caller writes: the record less what the database assigns. */
export type AuditEntry = Omit<AuditRecord, 'id' | 'at'>;
