import type { ApiScope } from '../config';
import type { Logger } from '../logger';
import type { ApiKeyRepository } from './api-key.repository';
import { sameDigest, tokenDigest } from './api-token';
import { BoundedCache } from '../cache/bounded-cache';

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
/**
 * How long an unknown token stays known as unknown. Longer than a key's: a token is unknown until
 * a key with it is created, and a creation through this process forgets it at once (forget());
 * through another process, the key works here within this bound.
 */
export const UNKNOWN_KEY_CACHE_MS = 30_000;
/** Entries kept at most in each cache; beyond it the least recently used go. */
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
  /**
   * Known keys and unknown tokens are cached apart: a flood of bad tokens evicts only other bad
   * tokens, never the keys in use.
   */
  private readonly known = new BoundedCache<string, Cached>(MAX_CACHED);
  private readonly unknown = new BoundedCache<string, number>(MAX_CACHED);
  /** Lookups under way: concurrent requests with one token share one query. */
  private readonly pending = new Map<string, Promise<Principal | undefined>>();
  private readonly touched = new Map<string, number>();

  constructor(
    envKeys: { scope: ApiScope; token: string }[],
    private readonly store: ApiKeyRepository,
    private readonly logger: Logger,
    private readonly cacheMs = KEY_CACHE_MS,
    private readonly unknownCacheMs = UNKNOWN_KEY_CACHE_MS,
  ) {
    this.envKeys = envKeys.map(({ scope, token }, i) => ({
      digest: tokenDigest(token),
      principal: { name: `env:${scope}#${i + 1}`, scope },
    }));
  }

  /**
   * The token's principal, or undefined (unknown, revoked). Answered synchronously when it is at
   * hand (an API_KEYS entry, a cached lookup), so that auth, which runs on every request, makes a
   * promise only when the store must be asked. `beforeLookup` runs just before the store would be
   * asked for a token not known as a key here, and may throw to refuse the request instead (the
   * caller's per-address budget).
   */
  verify(token: string, beforeLookup?: () => void): Principal | undefined | Promise<Principal | undefined> {
    const digest = tokenDigest(token);
    let found: Principal | undefined;
    for (const key of this.envKeys) if (sameDigest(digest, key.digest)) found ??= key.principal;
    if (found) return found;

    const hash = digest.toString('hex');
    const now = Date.now();
    const cached = this.known.get(hash);
    if (cached && cached.until > now) return cached.principal;
    const unknownUntil = this.unknown.get(hash);
    if (unknownUntil !== undefined && unknownUntil > now) return undefined;
    const pending = this.pending.get(hash);
    if (pending) return pending;
    // A token that was a key here before (its entry expired, not evicted) is looked up whatever
    // the caller's budget says: only tokens never seen valid can be refused unlooked.
    if (!cached) beforeLookup?.();
    const lookup = this.lookup(hash, now).finally(() => this.pending.delete(hash));
    this.pending.set(hash, lookup);
    return lookup;
  }

  private async lookup(hash: string, now: number): Promise<Principal | undefined> {
    const row = await this.store.findByHash(hash);
    const principal = row ? { name: row.name, scope: row.scope, keyId: row.id } : undefined;
    if (principal) {
      this.known.set(hash, { principal, until: now + this.cacheMs });
      this.unknown.delete(hash);
    } else {
      this.unknown.set(hash, now + this.unknownCacheMs);
      this.known.delete(hash);
    }
    if (principal?.keyId) this.touch(principal.keyId, now);
    return principal;
  }

  /** A key changed here (revoked, or created with a hash cached as unknown): drop its cached lookup now. */
  forget(hash: string): void {
    this.known.delete(hash);
    this.unknown.delete(hash);
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
