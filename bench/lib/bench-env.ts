import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config';
import { createContainer, type Container, type ContainerOverrides } from '../../src/container';
import { assertLoopback } from './bench-database';

export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

/**
 * The environment a Sluice process gets in a benchmark: the bench database, loopback Redis, a
 * queue prefix of the benchmark's own (so it never touches another install's keys) and a fresh
 * encryption key (pass the same env to every process that must read the same secrets).
 */
export function benchEnv(databaseUrl: string, prefix: string): Record<string, string> {
  assertLoopback(databaseUrl);
  assertLoopback(BENCH_REDIS_URL);
  return {
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    REDIS_URL: BENCH_REDIS_URL,
    ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
    // Child processes log as in production (their stdout is discarded, as a log shipper takes it).
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
    QUEUE_PREFIX: prefix,
  };
}

/**
 * The real composition root, in this process, configured by `env`. Logs at warn unless
 * BENCH_LOG_LEVEL says otherwise: this process's stdout is the report.
 */
export function benchContainer(env: Record<string, string>, overrides: ContainerOverrides = {}): Container {
  const level = process.env.BENCH_LOG_LEVEL ?? 'warn';
  return createContainer(loadConfig({ ...process.env, ...env, LOG_LEVEL: level }), overrides);
}
