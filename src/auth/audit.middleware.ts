import type { Context, Middleware } from 'koa';
import { isWebhookPath } from '../connectors/webhook/webhook-path';
import type { Logger } from '../logger';
import type { AuditLog } from './audit-log';
import { outcomeOf } from './audit-log';
import { principalOf } from './auth.middleware';
import type { RejectedTally } from './rejected-tally';

/** Refusals: audited in aggregate (RejectedTally), so requests without a key cannot grow the log. */
const REFUSED = new Set([401, 403, 429]);

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** What a route can add to its audit row (ctx.state.audit): the target it made, names, scopes. */
export interface AuditNote {
  targetId?: string;
  detail?: Record<string, unknown>;
}

const TARGET_TYPES: Record<string, string> = {
  'raw-data-sources': 'source',
  'api-keys': 'api_key',
  admin: 'queue',
};
const VERBS: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'update', DELETE: 'delete' };

const clip = (text: string, max: number) => (text.length > max ? text.slice(0, max) : text);

/**
 * The action a write request performs, from its method and path: `source.create`,
 * `source.sync`, `source.sync_all`, `api_key.revoke`, `queue.retry`...
 */
export function describeWrite(
  method: string,
  path: string,
): { action: string; targetType: string; targetId: string | null } {
  const segments = path.toLowerCase().split('/').filter(Boolean);
  const [collection = '', second, third] = segments;
  const targetType = TARGET_TYPES[collection] ?? collection.replace(/-/g, '_').replace(/s$/, '');
  const named = (verb: string) => `${targetType}.${verb.replace(/-/g, '_')}`;
  if (collection === 'admin')
    return { action: named(segments.at(-1) ?? 'change'), targetType, targetId: null };
  if (second === 'sync-all') return { action: named('sync_all'), targetType, targetId: null };
  if (second === 'test' && segments.length === 2)
    return { action: named('test'), targetType, targetId: null };
  if (third) return { action: named(third), targetType, targetId: second ?? null };
  if (targetType === 'api_key' && method === 'DELETE')
    return { action: named('revoke'), targetType, targetId: second ?? null };
  return { action: named(VERBS[method] ?? method.toLowerCase()), targetType, targetId: second ?? null };
}

/**
 * One audit row per write request, whatever its outcome (including validation failures and 404s);
 * refusals (401, 403, 429) are counted instead and written as one row per status and actor per
 * window (`rejected`). Sits outside the error handler so it sees the status actually answered.
 * Webhook receipts are data, not changes to Sluice, and are not audited.
 */
export function auditWrites(audit: AuditLog, logger: Logger, rejected: RejectedTally): Middleware {
  // Not async itself: reads (most requests) pass straight through without an extra promise.
  const audited: Middleware = async (ctx, next) => {
    try {
      await next();
    } finally {
      if (REFUSED.has(ctx.status)) {
        const principal = principalOf(ctx.state);
        rejected.note({
          actor: principal?.name ?? 'anonymous',
          status: ctx.status,
          method: ctx.method,
          path: ctx.path,
          keyId: principal?.keyId,
        });
      } else await write(ctx, audit, logger);
    }
  };
  return (ctx, next) => (READS.has(ctx.method) || isWebhookPath(ctx.path) ? next() : audited(ctx, next));
}

async function write(ctx: Context, audit: AuditLog, logger: Logger): Promise<void> {
  const { action, targetType, targetId } = describeWrite(ctx.method, ctx.path);
  const note = (ctx.state.audit ?? {}) as AuditNote;
  const principal = principalOf(ctx.state);
  const body = (ctx.body ?? {}) as { type?: unknown; id?: unknown; job_id?: unknown };
  const problem = ctx.status >= 400 && typeof body.type === 'string' ? body.type : undefined;
  // A create names its new target only in the response.
  const createdId = ctx.status === 201 && typeof body.id === 'string' ? body.id : undefined;
  const jobId = ctx.status === 202 && typeof body.job_id === 'string' ? body.job_id : undefined;
  const entry = {
    actor: principal?.name ?? 'anonymous',
    action: clip(action, 64),
    target_type: clip(targetType, 64),
    target_id: note.targetId ?? createdId ?? (targetId ? clip(targetId, 200) : null),
    outcome: outcomeOf(ctx.status),
    status: ctx.status,
    request_id: (ctx.state.requestId as string | undefined) ?? null,
    detail: {
      method: ctx.method,
      path: clip(ctx.path, 500),
      ...(principal?.keyId ? { key_id: principal.keyId } : {}),
      ...(problem ? { problem } : {}),
      ...(jobId ? { job_id: jobId } : {}),
      ...note.detail,
    },
  };
  try {
    await audit.record(entry);
  } catch (err) {
    logger.error(
      { err: (err as Error).message, requestId: entry.request_id, action },
      'audit row not written',
    );
  }
}
