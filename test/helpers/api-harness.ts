import type { AddressInfo } from 'node:net';
import { Cluster } from 'ioredis';
import type { Server } from 'node:http';
import { expect } from 'vitest';
import type { Knex } from 'knex';
import { loadConfig } from '../../src/config';
import { createContainer, type Container } from '../../src/container';
import type { Connector } from '../../src/connectors/connector';
import type { AnyResource } from '../../src/http/crud/resource';
import type { SyncWorker } from '../../workers/sync-worker';
import { applyHttpTimeouts } from '../../src/http/server-timeouts';
import { createTestDatabase, type TestDatabase } from './test-database';
import { TEST_ENCRYPTION_KEYS, TEST_REDIS_URL, uniqueSuffix } from './test-env';
import { collectingLogger } from './test-logger';
import { until } from './until';
import { createWorker } from '../../workers/worker-container';

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary response shapes
  body: any;
}

/** The admin key every harness request sends unless told otherwise (API_KEYS=admin:<this>). */
export const TEST_ADMIN_TOKEN = `slc_test_admin_${'a'.repeat(40)}`;

export interface TestApi {
  baseUrl: string;
  /** The admin token the harness sends by default. */
  adminToken: string;
  knex: Knex;
  container: Container;
  database: TestDatabase;
  /** Every log line the app wrote, for redaction checks. */
  logs: string[];
  /** Starts an in-process worker on the same queues (closed by close()). */
  startWorker(): Promise<SyncWorker>;
  request(
    method: string,
    path: string,
    /** `token`: another bearer token, or null for none; the admin token by default. */
    init?: { body?: unknown; raw?: string | Buffer; headers?: Record<string, string>; token?: string | null },
  ): Promise<ApiResponse>;
  get(path: string): Promise<ApiResponse>;
  post(path: string, body?: unknown): Promise<ApiResponse>;
  put(path: string, body?: unknown): Promise<ApiResponse>;
  del(path: string): Promise<ApiResponse>;
  close(): Promise<void>;
}

export interface TestApiOptions {
  resources?: AnyResource[];
  migrationsDir?: string;
  env?: Record<string, string>;
  connectors?: Connector[];
  /** The DATABASE_URL the app gets for its database's direct URL, e.g. through a private PgBouncer. */
  databaseUrl?: (direct: string) => string;
}

/** The real app on an ephemeral loopback port, over its own copy of the template database. */
export async function startTestApi(options: TestApiOptions = {}): Promise<TestApi> {
  const database = await createTestDatabase(options.migrationsDir);
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: options.databaseUrl?.(database.url) ?? database.url,
    REDIS_URL: TEST_REDIS_URL,
    ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
    LOG_LEVEL: 'info',
    // Each test file gets its own queues, events and locks in the shared Redis.
    QUEUE_PREFIX: `test_${uniqueSuffix()}`,
    API_KEYS: `admin:${TEST_ADMIN_TOKEN}`,
    // Tests that exercise retries want them over in seconds, not the production minute.
    SYNC_ATTEMPTS: '3',
    // Fuzz and load-ish tests send thousands of requests; test/integration/rate-limit.test.ts sets its own.
    RATE_LIMIT_ALL: '0',
    RATE_LIMIT_SYNC: '0',
    RATE_LIMIT_TEST: '0',
    // Every test request comes from 127.0.0.1; test/integration/anonymous-limits.test.ts sets its own.
    RATE_LIMIT_ANONYMOUS: '0',
    ...options.env,
  });
  const { logger, lines: logs } = collectingLogger(config.logLevel);
  const container = createContainer(config, {
    logger,
    resources: options.resources,
    connectors: options.connectors,
  });
  const app = container.createHttpApp();
  const workers: SyncWorker[] = [];
  const server: Server = await new Promise((resolve) => {
    const s = applyHttpTimeouts(
      app.listen(0, '127.0.0.1', () => resolve(s)),
      config,
    );
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const request: TestApi['request'] = async (method, path, init = {}) => {
    const ownAuth = Object.keys(init.headers ?? {}).some((h) => h.toLowerCase() === 'authorization');
    const token = init.token === undefined ? (ownAuth ? null : TEST_ADMIN_TOKEN) : init.token;
    const headers: Record<string, string> = {
      ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
      ...init.headers,
    };
    let body: string | Buffer | undefined = init.raw;
    if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, headers: res.headers, text, body: parsed };
  };

  return {
    baseUrl,
    adminToken: TEST_ADMIN_TOKEN,
    knex: database.knex,
    container,
    database,
    logs,
    request,
    get: (path) => request('GET', path),
    post: (path, body) => request('POST', path, { body: body ?? {} }),
    put: (path, body) => request('PUT', path, { body: body ?? {} }),
    del: (path) => request('DELETE', path),
    async startWorker() {
      const worker = createWorker(container);
      workers.push(worker);
      await worker.start();
      return worker;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await Promise.all(workers.map((w) => w.close()));
      await deleteKeys(container.redis, container.config.queuePrefix);
      await container.close();
      await database.drop();
    },
  };
}

/** Removes every Redis key of a test's prefix (queues, events, locks). */
async function deleteKeys(redis: Container['redis'], prefix: string): Promise<void> {
  // A cluster's keys are spread over its nodes (SCAN sees one) and a test's cluster is torn down whole.
  if (redis.status !== 'ready' || redis instanceof Cluster) return;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

/** Asserts a 400 problem+json whose errors name `pointer` (and, if given, with that message). */
export function expectInvalid(res: ApiResponse, pointer: string, message?: string): void {
  expect(res.status, res.text).toBe(400);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  const entry = (res.body.errors ?? []).find((e: { pointer: string }) => e.pointer === pointer);
  expect(entry, `no error for ${pointer} in ${res.text}`).toBeDefined();
  if (message) expect(entry.message).toContain(message);
}

/** A string of exactly `n` characters. */
export const longest = (n: number) => 'x'.repeat(n);

/**
 * The job `jobId` is over (completed or failed, or removed: a 404): GET /jobs/{id}'s body. A sync's
 * run row, its source's status, its events and its run-log lines are all written before its job
 * ends, so this is the one wait after which all of them can be read; and only then does the job's
 * deduplication key go, so a POST /sync of the same source sent earlier is a 409 "just finishing",
 * not a new run.
 */
export async function untilJobDone(api: TestApi, jobId: string, ms?: number): Promise<ApiResponse['body']> {
  const res = await until(
    () => api.get(`/jobs/${jobId}`),
    (r) => r.status === 404 || r.body.state === 'completed' || r.body.state === 'failed',
    ms,
  );
  return res.body;
}
