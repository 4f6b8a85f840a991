import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../logger';
import type { ApiKeyRepository } from './api-key.repository';
import { generateToken, tokenHash } from './api-token';
import { KeyVerifier } from './key-verifier';

const ENV_TOKEN = `slc_${'e'.repeat(43)}`;
const logger = createLogger('silent');

/** A store that counts lookups: the cache must spare the database. */
function fakeStore(rows: Map<string, { id: string; name: string; scope: 'read' | 'write' | 'admin' }>) {
  const calls = { find: 0, touch: 0 };
  const store = {
    findByHash: async (hash: string) => {
      calls.find += 1;
      return rows.get(hash);
    },
    touch: async () => {
      calls.touch += 1;
    },
  } as unknown as ApiKeyRepository;
  return { store, calls };
}

describe('KeyVerifier', () => {
  it('accepts API_KEYS tokens without a database lookup, and nothing that merely resembles them', async () => {
    const { store, calls } = fakeStore(new Map());
    const verifier = new KeyVerifier(
      [
        { scope: 'read', token: `slc_${'r'.repeat(43)}` },
        { scope: 'admin', token: ENV_TOKEN },
      ],
      store,
      logger,
    );
    expect(await verifier.verify(ENV_TOKEN)).toEqual({ name: 'env:admin#2', scope: 'admin' });
    expect(calls.find).toBe(0);
    // Same length, last character off; a prefix; a longer string: all refused.
    for (const wrong of [`${ENV_TOKEN.slice(0, -1)}f`, ENV_TOKEN.slice(0, 40), `${ENV_TOKEN}x`, ''])
      expect(await verifier.verify(wrong)).toBeUndefined();
  });

  it('finds stored keys by hash, caches found and unknown lookups, and forgets a key at once', async () => {
    const token = generateToken();
    const rows = new Map([[tokenHash(token), { id: 'k1', name: 'ci', scope: 'read' as const }]]);
    const { store, calls } = fakeStore(rows);
    const verifier = new KeyVerifier([], store, logger, 60_000);
    for (let i = 0; i < 5; i++)
      expect(await verifier.verify(token)).toMatchObject({ name: 'ci', scope: 'read' });
    expect(calls.find).toBe(1);
    expect(calls.touch).toBe(1);
    const unknown = generateToken();
    for (let i = 0; i < 5; i++) expect(await verifier.verify(unknown)).toBeUndefined();
    expect(calls.find).toBe(2);

    // Revoked here: forget() makes the next request look again.
    rows.delete(tokenHash(token));
    verifier.forget(tokenHash(token));
    expect(await verifier.verify(token)).toBeUndefined();
  });

  it('sees a revocation made elsewhere once the cache bound passes', async () => {
    const token = generateToken();
    const rows = new Map([[tokenHash(token), { id: 'k1', name: 'ci', scope: 'write' as const }]]);
    const verifier = new KeyVerifier([], fakeStore(rows).store, logger, 50);
    // The clock moves only when told: on a loaded machine, real time could pass the 50 ms bound
    // between the first two calls and find the key revoked too early.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      expect(await verifier.verify(token)).toBeDefined();
      rows.clear();
      vi.setSystemTime(Date.now() + 49);
      expect(await verifier.verify(token)).toBeDefined(); // still cached
      vi.setSystemTime(Date.now() + 2);
      expect(await verifier.verify(token)).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });

  it('issue 13 #6: an unknown token costs one lookup however often or concurrently it is sent', async () => {
    const { store, calls } = fakeStore(new Map());
    const verifier = new KeyVerifier([], store, logger);
    const bad = generateToken();
    const answers = await Promise.all(Array.from({ length: 50 }, () => verifier.verify(bad)));
    expect(answers.every((a) => a === undefined)).toBe(true);
    for (let i = 0; i < 50; i++) expect(verifier.verify(bad)).toBeUndefined(); // synchronously, from the cache
    expect(calls.find).toBe(1);
  });

  it('a flood of distinct bad tokens evicts only bad tokens (bounded), never the keys in use', async () => {
    const token = generateToken();
    const rows = new Map([[tokenHash(token), { id: 'k1', name: 'ci', scope: 'read' as const }]]);
    const { store, calls } = fakeStore(rows);
    const verifier = new KeyVerifier([], store, logger, 60_000);
    await verifier.verify(token);
    for (let i = 0; i < 10_050; i++) await verifier.verify(`bad-${i}`);
    const before = calls.find;
    expect(verifier.verify(token)).toMatchObject({ name: 'ci' });
    // The oldest bad tokens were evicted (the cache is bounded), the newest are still cached.
    expect(verifier.verify('bad-10049')).toBeUndefined();
    expect(calls.find).toBe(before);
    await verifier.verify('bad-0');
    expect(calls.find).toBe(before + 1);
  });

  it('beforeLookup can refuse before the store is asked', async () => {
    const { store, calls } = fakeStore(new Map());
    const verifier = new KeyVerifier([], store, logger);
    expect(() =>
      verifier.verify(generateToken(), () => {
        throw new Error('over budget');
      }),
    ).toThrow('over budget');
    expect(calls.find).toBe(0);
  });

  it('beforeLookup is not asked for a key known here whose cache entry expired', async () => {
    const token = generateToken();
    const rows = new Map([[tokenHash(token), { id: 'k1', name: 'ci', scope: 'read' as const }]]);
    const { store, calls } = fakeStore(rows);
    const verifier = new KeyVerifier([], store, logger, 10);
    expect(await verifier.verify(token)).toMatchObject({ name: 'ci' });
    await new Promise((resolve) => setTimeout(resolve, 30));
    const refuse = () => {
      throw new Error('over budget');
    };
    expect(await verifier.verify(token, refuse)).toMatchObject({ name: 'ci' });
    expect(calls.find).toBe(2);
  });

  it('issues slc_ tokens of 43 base64url characters', () => {
    const token = generateToken();
    expect(token).toMatch(/^slc_[A-Za-z0-9_-]{43}$/);
    expect(generateToken()).not.toBe(token);
  });
});
