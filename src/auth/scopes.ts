import type { ApiScope } from '../config';
import { ADMIN_QUEUES_PATH } from '../admin/admin-board';
import { isWebhookPath } from '../connectors/webhook/webhook-path';

export type { ApiScope };

const RANK: Record<ApiScope, number> = { read: 1, write: 2, admin: 3 };

export const scopeCovers = (have: ApiScope, need: ApiScope): boolean => RANK[have] >= RANK[need];

/**
 * Paths under these need admin whatever the method: the job dashboard, the audit log, key
 * management, and webhook subscriptions (they make Sluice send event data to a URL of the
 * caller's choosing, and their delivery logs show what receivers answered).
 */
const ADMIN_PREFIXES = [ADMIN_QUEUES_PATH, '/audit', '/api-keys', '/notification-subscriptions'];

const under = (path: string, prefix: string) =>
  path === prefix || path.startsWith(`${prefix}/`) || path.startsWith(`${prefix}?`);

/**
 * Open without a token: health, the API document and its UI, and webhook receipts (they carry
 * their own HMAC signature). Matched case-insensitively, as the router matches routes.
 */
export function isPublicPath(method: string, path: string): boolean {
  const p = path.toLowerCase();
  if (method === 'POST' && isWebhookPath(p)) return true;
  if (method !== 'GET' && method !== 'HEAD') return false;
  return p === '/healthz' || p === '/readyz' || p === '/openapi.json' || under(p, '/docs');
}

export function isAdminPath(path: string): boolean {
  const p = path.toLowerCase();
  return ADMIN_PREFIXES.some((prefix) => under(p, prefix));
}

/** The scope a request needs: admin for admin paths, read for reads, write for everything else. */
export function requiredScope(method: string, path: string): ApiScope {
  if (isAdminPath(path)) return 'admin';
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' ? 'read' : 'write';
}
