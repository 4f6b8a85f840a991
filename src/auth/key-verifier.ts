import type { ApiScope } from '../config';
import type { Logger } from '../logger';
import type { ApiKeyRepository } from './api-key.repository';
import { sameDigest, tokenDigest } from './api-token';

/** Who a request acts as: audit actor and rate-limit key. */
export interface Principal {
  /** Stored keys: their name; API_KEYS entries: `env:<scope>#<position>`. */
  name: string;
  scope: ApiScope;
  keyId?: string;
}

/**
 * How long a stored key's lookup (found or not) is reused. Revocation through this process's API
 * takes effect at once (forget()); through another process or the CLI within this bound.
 */
export const KEY_CACHE_MS = 5_000;
/** Cache entries kept at most; beyond it the cache starts over (a flood of bad tokens cannot grow it). */
const MAX_CACHED = 10_000;
/** last_used_at is written at most this often per key. */
const TOUCH_EVERY_MS = 60_000;

interface Cached {
  principal: Principal | undefined;
  until: number;
}

/**
 * Turns a token into a principal. API_KEYS entries are hashed at start and every one is compared
 * in constant time (no early exit, so timing tells nothing about which or how much matched);
 * stored keys are found by the hash (the index lookup sees only a digest of the token).
 */
export class KeyVerifier {
  private readonly envKeys: { digest: Buffer; principal: Principal }[];
  private readonly cache = new Map<string, Cached>();
  private readonly touched = new Map<string, number>();

  constructor(
    envKeys: { scope: ApiScope; token: string }[],
    private readonly store: ApiKeyRepository,
    private readonly logger: Logger,
    private readonly cacheMs = KEY_CACHE_MS,
  ) {
    this.envKeys = envKeys.map(({ scope, token }, i) => ({
      digest: tokenDigest(token),
      principal: { name: `env:${scope}#${i + 1}`, scope },
    }));
  }

  /**
   * The token's principal, or undefined (unknown, revoked). Answered synchronously when it is at
   * hand (an API_KEYS entry, a cached lookup), so that auth, which runs on every request, makes a
   * promise only when the store must be asked.
   */
  verify(token: string): Principal | undefined | Promise<Principal | undefined> {
    const digest = tokenDigest(token);
    let found: Principal | undefined;
    for (const key of this.envKeys) if (sameDigest(digest, key.digest)) found ??= key.principal;
    if (found) return found;

    const hash = digest.toString('hex');
    const now = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.until > now) return cached.principal;
    return this.lookup(hash, now);
  }

  private async lookup(hash: string, now: number): Promise<Principal | undefined> {
    const row = await this.store.findByHash(hash);
    const principal = row ? { name: row.name, scope: row.scope, keyId: row.id } : undefined;
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(hash, { principal, until: now + this.cacheMs });
    if (principal?.keyId) this.touch(principal.keyId, now);
    return principal;
  }

  /** A key changed here (revoked, or created with a hash cached as unknown): drop its cached lookup now. */
  forget(hash: string): void {
    this.cache.delete(hash);
  }

  private touch(id: string, now: number): void {
    if ((this.touched.get(id) ?? 0) + TOUCH_EVERY_MS > now) return;
    if (this.touched.size >= MAX_CACHED) this.touched.clear();
    this.touched.set(id, now);
    this.store
      .touch(id)
      .catch((err: Error) => this.logger.warn({ err: err.message }, 'api key last_used_at not written'));
  }
}
