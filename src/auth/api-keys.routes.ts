import Router from '@koa/router';
import { ConflictError, NotFoundError } from '../http/errors';
import { jsonBody, uuidParam } from '../http/request';
import { bodyValidator, queryValidator } from '../http/validation';
import { DuplicateKeyName, type ApiKeyRepository } from './api-key.repository';
import type { AuditLog } from './audit-log';
import type { KeyVerifier } from './key-verifier';

import { apiKeyCreateSchema, auditQuerySchema, pageQuerySchema, type ApiKeyCreate } from './auth.contracts';

/** Key management and the audit log; admin scope is enforced by the auth middleware (scopes.ts). */
export function apiKeysRoutes(deps: {
  keys: ApiKeyRepository;
  verifier: KeyVerifier;
  audit: AuditLog;
}): Router {
  const router = new Router();
  const validateCreate = bodyValidator<ApiKeyCreate>(apiKeyCreateSchema);
  const validatePage = queryValidator<{ limit: number; offset: number }>(pageQuerySchema);
  const validateAudit = queryValidator<{
    limit: number;
    offset: number;
    actor?: string;
    action?: string;
    target_id?: string;
  }>(auditQuerySchema);

  router.post('/api-keys', async (ctx) => {
    const input = validateCreate(jsonBody(ctx));
    const created = await deps.keys.create(input.name, input.scope).catch((err) => {
      if (err instanceof DuplicateKeyName)
        throw new ConflictError('Another API key already has this name.', [
          { pointer: '/name', in: 'body', message: 'is already taken' },
        ]);
      throw err;
    });
    // The hash may be cached as "unknown" if someone tried the token before it existed.
    deps.verifier.forget(created.hash);
    const { hash: _hash, ...shown } = created;
    ctx.state.audit = { detail: { name: created.name, scope: created.scope, prefix: created.prefix } };
    ctx.status = 201;
    ctx.set('Location', `/api-keys/${created.id}`);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = shown;
  });

  router.get('/api-keys', async (ctx) => {
    const query = validatePage(ctx.query);
    const page = await deps.keys.list(query.limit, query.offset);
    ctx.body = { data: page.data, pagination: { total: page.total, ...query } };
  });

  router.delete('/api-keys/:id', async (ctx) => {
    const revoked = await deps.keys.revoke(uuidParam(ctx));
    if (!revoked) throw new NotFoundError('API key not found.');
    deps.verifier.forget(revoked.hash);
    ctx.state.audit = { detail: { name: revoked.key.name, scope: revoked.key.scope } };
    ctx.status = 204;
  });

  router.get('/audit', async (ctx) => {
    const query = validateAudit(ctx.query);
    const page = await deps.audit.list(query);
    ctx.body = {
      data: page.data,
      pagination: { total: page.total, limit: query.limit, offset: query.offset },
    };
  });

  return router;
}
