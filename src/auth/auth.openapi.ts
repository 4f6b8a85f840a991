import { idParam, json, pageOf, problems, queryParams, ref, type PathItem } from '../docs/openapi';
import {
  apiKeyCreateSchema,
  apiKeyCreatedSchema,
  apiKeySchema,
  auditQuerySchema,
  auditRecordSchema,
  pageQuerySchema,
} from './auth.contracts';

export const authSchemas = {
  ApiKeyCreate: apiKeyCreateSchema,
  ApiKey: apiKeySchema,
  ApiKeyCreated: apiKeyCreatedSchema,
  ApiKeyList: pageOf('ApiKey'),
  AuditRecord: auditRecordSchema,
  AuditList: pageOf('AuditRecord'),
};

const tags = ['Access'];

export const authPaths: Record<string, PathItem> = {
  '/api-keys': {
    get: {
      tags,
      operationId: 'listApiKeys',
      summary: 'List API keys, newest first (never a token or hash); admin',
      description: 'Each key with its name, scope, prefix and when it was created, last used and revoked.',
      parameters: queryParams(pageQuerySchema),
      responses: { '200': { description: 'A page', content: json(ref('ApiKeyList')) }, ...problems(400) },
    },
    post: {
      tags,
      operationId: 'createApiKey',
      summary: 'Create an API key; the token is in this response only; admin',
      description:
        'Only a hash of the token is stored: keep the token from this answer, it cannot be shown again.',
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
      description: 'Later requests with it are 401; the audit log keeps naming it.',
      parameters: [idParam],
      responses: { '204': { description: 'Revoked' }, ...problems(400, 404) },
    },
  },
  '/audit': {
    get: {
      tags,
      operationId: 'listAudit',
      summary: 'The audit log of every write request and key change, newest first; admin',
      description:
        'Who (the key), what (action, target, outcome, HTTP status) and when; `detail` is free-form and never holds a secret.',
      parameters: queryParams(auditQuerySchema),
      responses: { '200': { description: 'A page', content: json(ref('AuditList')) }, ...problems(400) },
    },
  },
};
