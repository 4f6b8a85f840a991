import { Redis } from 'ioredis';

/** Every key matching `pattern`, by SCAN (never KEYS: the Redis may be shared). */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, page] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...page);
  } while (cursor !== '0');
  return keys;
}

/** Removes every key matching `pattern` (UNLINK: freed in the background, not on Redis's main thread). */
export async function deleteKeys(redis: Pick<Redis, 'scan' | 'unlink'>, pattern: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Removes a run's keys (`prefix:*`) on its own short connection: for a bench's final clean-up. */
export async function deletePrefixKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    await deleteKeys(redis, `${prefix}:*`).catch(() => 0);
  } finally {
    redis.disconnect();
  }
}

/**
 * Bytes held by the keys matching `pattern`: the sum of MEMORY USAGE (SAMPLES 0: every element
 * counted, not a sample) over them, which counts each key's name, value and allocator size
 * classes. Exact for these keys whatever other clients of a shared Redis do meanwhile; it leaves
 * out only the keyspace's own bucket array (8 bytes a slot).
 */
export async function memoryUsage(redis: Redis, pattern: string): Promise<{ keys: number; bytes: number }> {
  const keys = await scanKeys(redis, pattern);
  let bytes = 0;
  for (let i = 0; i < keys.length; i += 1000) {
    const pipeline = redis.pipeline();
    for (const key of keys.slice(i, i + 1000)) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    for (const [err, size] of (await pipeline.exec()) ?? []) if (!err) bytes += Number(size ?? 0);
  }
  return { keys: keys.length, bytes };
}

/** Redis's used_memory: what its allocator holds for everything, every client's data included. */
export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
}

/** Waits until Redis has freed what UNLINK handed to its background thread, so used_memory settles. */
export async function lazyFreed(redis: Redis): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const info = await redis.info('memory');
    if (Number(/lazyfree_pending_objects:(\d+)/.exec(info)?.[1] ?? 0) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** CPU seconds (user + system) the Redis server has used so far: every client's work, ours included. */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}
