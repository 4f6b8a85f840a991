import type { Middleware } from 'koa';
import { ADMIN_QUEUES_PATH } from '../admin/admin-board';
import { ForbiddenError, ServiceUnavailableError, UnauthorizedError } from '../http/errors';
import type { KeyVerifier, Principal } from './key-verifier';
import { isPublicPath, requiredScope, scopeCovers } from './scopes';

/** Longer credentials are refused unread: no token is this long, and hashing megabytes costs. */
const MAX_TOKEN_LENGTH = 512;

/** The token of `Authorization: Bearer <token>`, or the password of HTTP Basic (the user name when the password is empty). */
export function credentialOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const space = header.indexOf(' ');
  if (space < 0) return undefined;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (!value || value.length > MAX_TOKEN_LENGTH * 2) return undefined;
  if (scheme === 'bearer') return value;
  if (scheme !== 'basic') return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return decoded.slice(colon + 1) || decoded.slice(0, colon) || undefined;
}

export const principalOf = (state: Record<string, unknown>): Principal | undefined =>
  state.principal as Principal | undefined;

/**
 * Every request but the public ones (scopes.ts) needs a valid key whose scope covers it: 401
 * without one (Basic challenge on the job dashboard, so a browser prompts), 403 when short.
 * Sets ctx.state.principal for the audit log and the rate limits.
 */
export function authenticate(verifier: KeyVerifier): Middleware {
  // Not async: a known key (most requests) goes on without a promise; only a store lookup waits.
  // A throw here reaches the error handler as a rejection (koa-compose catches it).
  return (ctx, next) => {
    if (isPublicPath(ctx.method, ctx.path)) return next();
    const challenge = ctx.path.toLowerCase().startsWith(ADMIN_QUEUES_PATH) ? 'Basic' : 'Bearer';
    const token = credentialOf(ctx.get('authorization'));
    if (!token) throw new UnauthorizedError('Send an API key as Authorization: Bearer <token>.', challenge);
    if (token.length > MAX_TOKEN_LENGTH) throw new UnauthorizedError('The API key is not valid.', challenge);
    const admit = (principal: Principal | undefined) => {
      if (!principal) throw new UnauthorizedError('The API key is not valid or was revoked.', challenge);
      ctx.state.principal = principal;
      const need = requiredScope(ctx.method, ctx.path);
      if (!scopeCovers(principal.scope, need))
        throw new ForbiddenError(
          `This request needs a key with the ${need} scope; this key has ${principal.scope}.`,
        );
      return next();
    };
    const verified = verifier.verify(token);
    if (!(verified instanceof Promise)) return admit(verified);
    return verified.then(admit, () => {
      throw new ServiceUnavailableError('API keys cannot be checked right now.');
    });
  };
}
