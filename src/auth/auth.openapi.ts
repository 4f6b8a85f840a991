import { problems, type PathItem } from '../docs/openapi';
import { toComponent } from '../docs/openapi';
import { AUDIT_COLUMNS } from './audit-log';
import { apiKeyCreateSchema, auditQuerySchema, pageQuerySchema } from './api-keys.routes';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const queryParams = (schema: { properties: Record<string, unknown> }) =>
  Object.entries(schema.properties).map(([name, s]) => ({
    name,
    in: 'query',
    required: false,
    schema: toComponent(s),
  }));
const nullableTime = { type: ['string', 'null'], format: 'date-time' };
const pageOf = (item: string) => ({
  type: 'object',
  additionalProperties: false,
  required: ['data', 'pagination'],
  properties: { data: { type: 'array', items: ref(item) }, pagination: ref('Pagination') },
});

const apiKey = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'scope', 'prefix', 'created_at', 'last_used_at', 'revoked_at'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    scope: { enum: ['read', 'write', 'admin'] },
    prefix: { type: 'string', description: 'The first characters of the token, to tell keys apart.' },
    created_at: { type: 'string', format: 'date-time' },
    last_used_at: { ...nullableTime, description: 'Updated at most once a minute.' },
    revoked_at: nullableTime,
  },
};

export const authSchemas = {
  ApiKeyCreate: apiKeyCreateSchema,
  ApiKey: apiKey,
  ApiKeyCreated: {
    ...apiKey,
    required: [...apiKey.required, 'token'],
    properties: {
      ...apiKey.properties,
      token: { type: 'string', description: 'The token: shown in this response only, never again.' },
    },
  },
  ApiKeyList: pageOf('ApiKey'),
  AuditRecord: {
    type: 'object',
    additionalProperties: false,
    required: [...AUDIT_COLUMNS],
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
      outcome: { enum: ['success', 'denied', 'failed'] },
      status: { type: ['integer', 'null'], description: 'The HTTP status answered (null for the keys CLI).' },
      request_id: { type: ['string', 'null'] },
      detail: {
        type: 'object',
        description: 'Method, path, problem type, names and scopes; never a secret.',
      },
    },
  },
  AuditList: pageOf('AuditRecord'),
};

const tags = ['Access'];
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };

export const authPaths: Record<string, PathItem> = {
  '/api-keys': {
    get: {
      tags,
      operationId: 'listApiKeys',
      summary: 'List API keys, newest first (never a token or hash); admin',
      parameters: queryParams(pageQuerySchema),
      responses: { '200': { description: 'A page', content: json(ref('ApiKeyList')) }, ...problems(400) },
    },
    post: {
      tags,
      operationId: 'createApiKey',
      summary: 'Create an API key; the token is in this response only; admin',
      requestBody: { required: true, content: json(ref('ApiKeyCreate')) },
      responses: {
        '201': {
          description: 'Created',
          headers: { Location: { schema: { type: 'string' } } },
          content: json(ref('ApiKeyCreated')),
        },
        ...problems(400, 409, 413, 415),
      },
    },
  },
  '/api-keys/{id}': {
    delete: {
      tags,
      operationId: 'revokeApiKey',
      summary: 'Revoke an API key (it stops working at once here, within 5 s everywhere); admin',
      parameters: [idParam],
      responses: { '204': { description: 'Revoked' }, ...problems(400, 404) },
    },
  },
  '/audit': {
    get: {
      tags,
      operationId: 'listAudit',
      summary: 'The audit log of every write request and key change, newest first; admin',
      parameters: queryParams(auditQuerySchema),
      responses: { '200': { description: 'A page', content: json(ref('AuditList')) }, ...problems(400) },
    },
  },
};
