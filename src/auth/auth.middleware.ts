import type { Context, Middleware } from 'koa';
import { ADMIN_QUEUES_PATH } from '../admin/admin-board';
import {
  ForbiddenError,
  ServiceUnavailableError,
  TooManyRequestsError,
  UnauthorizedError,
} from '../http/errors';
import type { AnonymousLimits } from './anonymous-limits';
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

export interface AnonymousGuard {
  limits: AnonymousLimits;
  /** The limit key of the request's client (address, or IPv6 /64; see src/net/client-address.ts). */
  keyOf(ctx: Context): string;
}

/**
 * Every request but the public ones (scopes.ts) needs a valid key whose scope covers it: 401
 * without one (Basic challenge on the job dashboard, so a browser prompts), 403 when short.
 * Sets ctx.state.principal for the audit log and the rate limits. With `anonymous`, requests
 * without a valid key are counted per client address: beyond the budget they are 429, and an
 * address known to be over it gets no key lookup at all.
 */
export function authenticate(verifier: KeyVerifier, anonymous?: AnonymousGuard): Middleware {
  // Not async: a known key (most requests) goes on without a promise; only a store lookup waits.
  // A throw here reaches the error handler as a rejection (koa-compose catches it).
  return (ctx, next) => {
    if (isPublicPath(ctx.method, ctx.path)) return next();
    const challenge = ctx.path.toLowerCase().startsWith(ADMIN_QUEUES_PATH) ? 'Basic' : 'Bearer';
    const tooMany = (seconds: number) =>
      new TooManyRequestsError(
        `Too many requests without a valid API key from this address (${anonymous?.limits.points} a minute); retry in ${seconds} s.`,
        seconds,
      );
    /** A 401, counted against the client's address first (then a 429 when over its budget). */
    const refuse = (detail: string): Promise<never> | never => {
      const unauthorized = new UnauthorizedError(detail, challenge);
      if (!anonymous) throw unauthorized;
      return anonymous.limits.charge(anonymous.keyOf(ctx)).then(
        (wait) => {
          throw wait ? tooMany(wait) : unauthorized;
        },
        // Counting failed (neither Redis nor the insurance answered): the 401 stands.
        () => {
          throw unauthorized;
        },
      );
    };
    const token = credentialOf(ctx.get('authorization'));
    if (!token) return refuse('Send an API key as Authorization: Bearer <token>.');
    if (token.length > MAX_TOKEN_LENGTH) return refuse('The API key is not valid.');
    const admit = (principal: Principal | undefined) => {
      if (!principal) return refuse('The API key is not valid or was revoked.');
      ctx.state.principal = principal;
      const need = requiredScope(ctx.method, ctx.path);
      if (!scopeCovers(principal.scope, need))
        throw new ForbiddenError(
          `This request needs a key with the ${need} scope; this key has ${principal.scope}.`,
        );
      return next();
    };
    // The store is asked only for an address not already over its budget of bad tokens.
    const verified = verifier.verify(token, () => {
      const held = anonymous ? anonymous.limits.blockedFor(anonymous.keyOf(ctx)) : 0;
      if (held) throw tooMany(held);
    });
    if (!(verified instanceof Promise)) return admit(verified);
    return verified.then(admit, () => {
      throw new ServiceUnavailableError('API keys cannot be checked right now.');
    });
  };
}
