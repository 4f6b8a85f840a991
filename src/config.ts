import { resolve } from 'node:path';
import { cidrProblem } from './net/cidr';
import { DEFAULT_SCHEMA_LIMITS, type SchemaLimits } from './schema/schema-limits';

const MIB = 1024 * 1024;

/**
 * Every setting Sluice reads from the environment, validated at start. All problems are collected
 * and reported together, so one start tells an operator everything that is wrong.
 */
export interface Config {
  env: 'development' | 'test' | 'production';
  host: string;
  port: number;
  databaseUrl: string;
  databasePoolMax: number;
  /**
   * Whether the hot by-id read is a named prepared statement: `on` always, `off` never (for
   * PgBouncer in transaction mode before 1.21, or without max_prepared_statements), `auto` named
   * until the pooler shows it cannot keep them, then unnamed for the life of the process.
   */
  databasePreparedStatements: 'auto' | 'on' | 'off';
  /** Single-Redis URL; with REDIS_CLUSTER_NODES only its credentials and TLS (rediss:) apply, to every node. */
  redisUrl: string;
  /**
   * Seed nodes of a Redis Cluster (REDIS_CLUSTER_NODES, `host:port,...`): set, Sluice's own Redis is
   * that cluster (src/redis/redis-client.ts) and every key that a script or a BullMQ queue touches
   * together carries a hash tag; empty, the single Redis of REDIS_URL, keys exactly as before.
   */
  redisClusterNodes: { host: string; port: number }[];
  /**
   * Sync queues (SYNC_SHARDS): 1 is the single `sync` queue; N spreads sources over `sync`,
   * `sync-1` … `sync-<N-1>` by a stable hash of the source id (queue/queue-names.ts syncShardOf).
   */
  syncShards: number;
  /** The sync shards this process's worker consumes (SYNC_SHARDS_CONSUME, e.g. `0,2`); all by default. */
  syncShardsConsume: number[];
  encryptionKeys: string;
  logLevel: string;
  /** pretty (pino-pretty, for a person at a terminal; the default in development) or json (one object a line). */
  logFormat: 'pretty' | 'json';
  workerConcurrency: number;
  bodyLimit: string;
  readyTimeoutMs: number;
  /** Prefix of every Redis key Sluice writes (queues, events, locks): one Redis can host several installs. */
  queuePrefix: string;
  syncAttempts: number;
  /** First retry delay of a sync (exponential after it); a source's retry_backoff_seconds overrides it. */
  syncBackoffMs: number;
  /** A sync attempt running longer fails its run ("timed out after …"); a source's max_run_seconds overrides it. */
  syncMaxRunSeconds: number;
  /** A source whose last N finished runs all failed is deactivated; 0 = never. deactivate_after_failures overrides it. */
  deactivateAfterFailures: number;
  /**
   * Syncs of one concurrency group (by default the destination host:port) running at once over all
   * workers: the default limit (0 = no limit), limits per group (`CONCURRENCY_GROUP_LIMITS`), the
   * lease a slot is held by (renewed while the run lives, so a dead worker's slot frees itself),
   * and how long a job that found no free slot waits before asking again (jittered).
   */
  concurrency: { defaultLimit: number; groupLimits: Record<string, number>; leaseMs: number; waitMs: number };
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** How long POST .../test waits for the test job before answering 202 with the job id. */
  testWaitMs: number;
  shutdownGraceMs: number;
  reconcileIntervalMs: number;
  /** Landed and quarantined records older than this many days are dropped; 0 keeps them forever. */
  retentionDays: number;
  /** Rows a deleted source's purge removes per statement and table. */
  purgeBatchSize: number;
  /** Pause between two purge batches, leaving room to other sources' landing. */
  purgePauseMs: number;
  eventsMaxLen: number;
  /** Bound for each connect and read a connector makes. */
  connectTimeoutMs: number;
  /** Bound on one whole HTTP request of a connector, body included (a server dribbling bytes). */
  httpRequestMaxMs: number;
  /** Records one stream run lands at most; the next run continues where it stopped. */
  streamMaxRunRecords: number;
  /** What one sync may hold: one record, one batch, one decompressed body, a compression ratio. */
  byteLimits: {
    recordMaxBytes: number;
    batchMaxBytes: number;
    decompressedMaxBytes: number;
    maxCompressionRatio: number;
  };
  /**
   * Times a sync job's worker process may die under it (killed, out of memory) before its run is
   * failed instead of run again: a source that crashes its worker must not crash workers forever.
   */
  workerMaxStalled: number;
  /** Directories `file` sources may read below (after resolving links); none unless configured. */
  fileRoots: string[];
  /**
   * CIDRs outbound connections may reach although the policy refuses them by default (loopback,
   * and private ranges for api/file); development and test default to loopback. Never opens
   * link-local, metadata or unspecified addresses (src/connectors/outbound-policy.ts).
   */
  outboundAllow: string[];
  /** CIDRs outbound connections never reach; wins over outboundAllow. */
  outboundDeny: string[];
  /**
   * Whether database and stream sources may reach private ranges (10/8, 172.16/12, 192.168/16,
   * 100.64/10, fc00::/7) without OUTBOUND_ALLOW: 'allow' (default) or 'deny'.
   */
  outboundPrivate: 'allow' | 'deny';
  /** Outbound attempts per destination that may wait for its first answer at once; 0 = no cap (Outbound.claim). */
  outboundMaxPending: number;
  /** Port of the unauthenticated /metrics server of processes without the API (worker role); 0 = off. */
  metricsPort: number;
  /** Address that server binds; loopback by default, since it has no auth. */
  metricsHost: string;
  /** Keys from `API_KEYS` (`scope:token,...`); src/auth hashes them at start and keeps no token. */
  apiKeys: { scope: ApiScope; token: string }[];
  /** Requests per key per minute: every request, sync requests, test requests; 0 switches that limit off. */
  rateLimits: { all: number; sync: number; test: number };
  /**
   * How long a rate-limit check waits on Redis before the in-memory limiter of the same size answers
   * instead (RATE_LIMIT_REDIS_WAIT_MS): short, so a slow Redis never slows requests down.
   */
  rateLimitRedisWaitMs: number;
  /** Origins (scheme://host[:port]) allowed cross-origin; CORS is off when empty. */
  corsOrigins: string[];
  /** Caps on a source's schema_definition, checked at create, update and draft test. */
  schemaLimits: SchemaLimits;
  /**
   * Requests per client address per minute that present no valid key (missing, unknown or revoked
   * token); beyond it 429 without a key lookup. 0 switches the limit off.
   */
  rateLimitAnonymous: number;
  /**
   * CIDRs of the reverse proxies in front of the API: X-Forwarded-For is read only when the
   * connection comes from one of them (and only up to the first hop that is not one). Empty: the
   * socket's address is the client's, whatever the headers say.
   */
  trustedProxies: string[];
  /** Refused requests (401, 403, 429) are written to the audit log as one row per reason and actor per this window. */
  auditRejectedWindowMs: number;
  /** How far a webhook signature's timestamp may be from now (either way) and how long a seen signature is remembered. */
  webhookToleranceSeconds: number;
  /** Accept the unstamped `sha256=<hex>` webhook signature (no replay protection): a migration path for senders. */
  webhookLegacySignatures: boolean;
  /** Event streams (GET /events) open at once: per API process, and per key within it. */
  eventsMaxClients: number;
  eventsMaxClientsPerKey: number;
  /** Idle keep-alive connections are closed after this; longer than a load balancer's idle timeout (often 60 s). */
  httpKeepAliveTimeoutMs: number;
  /** Time allowed for a request's headers; must exceed the keep-alive timeout. */
  httpHeadersTimeoutMs: number;
  /** Webhook notifications (src/notifications) and the freshness check that raises some of them. */
  notify: NotifyConfig;
}

export interface NotifyConfig {
  /** Tries per delivery (NOTIFY_ATTEMPTS), the first included; then it is logged as failed. */
  attempts: number;
  /** First retry delay (NOTIFY_BACKOFF_MS), doubled at each further try. */
  backoffMs: number;
  /** One delivery attempt, connect to the end of the answer (NOTIFY_TIMEOUT_MS). */
  timeoutMs: number;
  /** Attempts kept in each subscription's delivery log (NOTIFY_LOG_MAX); older ones are trimmed. */
  logMax: number;
  /** Deliveries one worker sends at once (NOTIFY_CONCURRENCY). */
  concurrency: number;
  /** How often (at most, across all workers) source freshness is checked (FRESHNESS_CHECK_INTERVAL_MS). */
  freshnessIntervalMs: number;
}

export const API_SCOPES = ['read', 'write', 'admin'] as const;
export type ApiScope = (typeof API_SCOPES)[number];
/** Shortest token accepted from API_KEYS: shorter ones are guessable. */
export const MIN_TOKEN_LENGTH = 32;
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];

  const str = (name: string, fallback?: string): string => {
    const value = env[name]?.trim();
    if (value) return value;
    if (fallback !== undefined) return fallback;
    problems.push(`${name} is required`);
    return '';
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < min || value > max) {
      problems.push(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return value;
  };
  const url = (name: string, protocols: string[], fallback?: string): string => {
    const value = str(name, fallback);
    if (!value) return value;
    try {
      const parsed = new URL(value);
      if (!protocols.includes(parsed.protocol))
        problems.push(`${name} must be a ${protocols.join(' or ')} URL (got ${parsed.protocol})`);
    } catch {
      problems.push(`${name} is not a valid URL`);
    }
    return value;
  };

  const prefix = (name: string, fallback: string): string => {
    const value = str(name, fallback);
    // BullMQ joins keys with ':'; a colon inside the prefix would break its key parsing.
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value)) problems.push(`${name} must match [A-Za-z0-9_.-]{1,64}`);
    return value;
  };

  const list = (name: string): string[] =>
    (env[name] ?? '')
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean);

  // Set (even to nothing) replaces the default: OUTBOUND_ALLOW= in development allows no loopback.
  const cidrs = (name: string, fallback: string[]): string[] => {
    const values = env[name] === undefined ? fallback : list(name);
    for (const value of values) {
      const problem = cidrProblem(value);
      if (problem) problems.push(`${name}: ${problem}`);
    }
    return values;
  };

  const bool = (name: string, fallback: boolean): boolean => {
    const raw = env[name]?.trim().toLowerCase();
    if (!raw) return fallback;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return fallback;
  };

  const preparedStatements = str('DATABASE_PREPARED_STATEMENTS', 'auto');
  if (!['auto', 'on', 'off'].includes(preparedStatements))
    problems.push(`DATABASE_PREPARED_STATEMENTS must be auto, on or off (got "${preparedStatements}")`);
  const nodeEnv = str('NODE_ENV', 'development');
  if (!['development', 'test', 'production'].includes(nodeEnv))
    problems.push(`NODE_ENV must be development, test or production (got "${nodeEnv}")`);
  const outboundPrivate = str('OUTBOUND_PRIVATE', 'allow');
  if (outboundPrivate !== 'allow' && outboundPrivate !== 'deny')
    problems.push('OUTBOUND_PRIVATE must be allow or deny');
  const logLevel = str('LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const logFormat = str('LOG_FORMAT', nodeEnv === 'development' ? 'pretty' : 'json');
  if (logFormat !== 'pretty' && logFormat !== 'json') problems.push('LOG_FORMAT must be pretty or json');
  const bodyLimit = str('BODY_LIMIT', '1mb');
  if (!/^\d+(b|kb|mb)$/i.test(bodyLimit)) problems.push('BODY_LIMIT must look like 512kb or 1mb');
  const encryptionKeys = str('ENCRYPTION_KEYS');
  if (encryptionKeys) problems.push(...checkEncryptionKeys(encryptionKeys));

  const config: Config = {
    env: nodeEnv as Config['env'],
    host: str('HOST', '127.0.0.1'),
    port: int('PORT', 3000, 0, 65535),
    databaseUrl: url('DATABASE_URL', ['postgres:', 'postgresql:']),
    databasePoolMax: int('DATABASE_POOL_MAX', 10, 1, 500),
    databasePreparedStatements: preparedStatements as Config['databasePreparedStatements'],
    redisUrl: env.REDIS_CLUSTER_NODES?.trim()
      ? url('REDIS_URL', ['redis:', 'rediss:'], 'redis://')
      : url('REDIS_URL', ['redis:', 'rediss:']),
    redisClusterNodes: clusterNodes(env.REDIS_CLUSTER_NODES, problems),
    syncShards: int('SYNC_SHARDS', 1, 1, SYNC_SHARDS_MAX),
    syncShardsConsume: [],
    encryptionKeys,
    logLevel,
    logFormat: logFormat === 'pretty' ? 'pretty' : 'json',
    workerConcurrency: int('WORKER_CONCURRENCY', 10, 1, 1000),
    bodyLimit: bodyLimit.toLowerCase(),
    readyTimeoutMs: int('READY_TIMEOUT_MS', 1000, 50, 60000),
    queuePrefix: prefix('QUEUE_PREFIX', 'sluice'),
    // 6 tries, backoff 2 s doubling: about a minute of retries, so a database or network blip of
    // 30 s delays a sync instead of failing it.
    syncAttempts: int('SYNC_ATTEMPTS', 6, 1, 50),
    syncBackoffMs: int('SYNC_BACKOFF_MS', 2000, 100, 86400000),
    syncMaxRunSeconds: int('SYNC_MAX_RUN_SECONDS', 86400, 1, 604800),
    deactivateAfterFailures: int('SYNC_DEACTIVATE_AFTER_FAILURES', 0, 0, 1000),
    concurrency: {
      defaultLimit: int('CONCURRENCY_LIMIT', 0, 0, 10000),
      groupLimits: groupLimits(list('CONCURRENCY_GROUP_LIMITS'), problems),
      leaseMs: int('CONCURRENCY_LEASE_MS', 30000, 1000, 3600000),
      waitMs: int('CONCURRENCY_WAIT_MS', 1000, 10, 600000),
    },
    lockDurationMs: int('WORKER_LOCK_DURATION_MS', 30000, 1000, 3600000),
    stalledIntervalMs: int('WORKER_STALLED_INTERVAL_MS', 30000, 1000, 3600000),
    testWaitMs: int('TEST_WAIT_MS', 10000, 0, 120000),
    shutdownGraceMs: int('SHUTDOWN_GRACE_MS', 20000, 0, 600000),
    reconcileIntervalMs: int('RECONCILE_INTERVAL_MS', 60000, 1000, 86400000),
    retentionDays: int('RETENTION_DAYS', 0, 0, 36500),
    purgeBatchSize: int('PURGE_BATCH_SIZE', 5000, 1, 1000000),
    purgePauseMs: int('PURGE_PAUSE_MS', 50, 0, 60000),
    eventsMaxLen: int('EVENTS_MAXLEN', 100000, 100, 100000000),
    connectTimeoutMs: int('CONNECT_TIMEOUT_MS', 10000, 100, 600000),
    httpRequestMaxMs: int('HTTP_REQUEST_MAX_MS', 300000, 1000, 86400000),
    streamMaxRunRecords: int('STREAM_MAX_RUN_RECORDS', 1000000, 1, 1000000000),
    byteLimits: {
      recordMaxBytes: int('RECORD_MAX_BYTES', 4 * MIB, 1024, 256 * MIB),
      batchMaxBytes: int('BATCH_MAX_BYTES', 8 * MIB, 1024, 1024 * MIB),
      decompressedMaxBytes: int('DECOMPRESSED_MAX_BYTES', 2048 * MIB, 1024, Number.MAX_SAFE_INTEGER),
      maxCompressionRatio: int('MAX_COMPRESSION_RATIO', 100, 2, 100000),
    },
    workerMaxStalled: int('WORKER_MAX_STALLED', 1, 0, 100),
    // Development reads files below the checkout's data/ (`make dev` creates it) unless told otherwise.
    fileRoots: (list('FILE_ROOTS').length || nodeEnv !== 'development'
      ? list('FILE_ROOTS')
      : [resolve('data')]
    ).map((dir) => {
      if (!dir.startsWith('/')) problems.push(`FILE_ROOTS entries must be absolute paths (got "${dir}")`);
      return dir.replace(/\/+$/, '') || '/';
    }),
    outboundAllow: cidrs('OUTBOUND_ALLOW', nodeEnv === 'production' ? [] : ['127.0.0.0/8', '::1/128']),
    outboundDeny: cidrs('OUTBOUND_DENY', []),
    outboundPrivate: outboundPrivate === 'deny' ? 'deny' : 'allow',
    outboundMaxPending: int('OUTBOUND_MAX_PENDING', 4, 0, 10000),
    metricsPort: int('METRICS_PORT', 0, 0, 65535),
    metricsHost: str('METRICS_HOST', '127.0.0.1'),
    apiKeys: apiKeys(list('API_KEYS'), problems),
    rateLimits: {
      all: int('RATE_LIMIT_ALL', 600, 0, 1000000),
      sync: int('RATE_LIMIT_SYNC', 60, 0, 1000000),
      test: int('RATE_LIMIT_TEST', 30, 0, 1000000),
    },
    rateLimitRedisWaitMs: int('RATE_LIMIT_REDIS_WAIT_MS', 250, 10, 60000),
    schemaLimits: {
      maxBytes: int('SCHEMA_MAX_BYTES', DEFAULT_SCHEMA_LIMITS.maxBytes, 1024, 16 * 1024 * 1024),
      maxDepth: int('SCHEMA_MAX_DEPTH', DEFAULT_SCHEMA_LIMITS.maxDepth, 2, 64),
      maxSubschemas: int('SCHEMA_MAX_SUBSCHEMAS', DEFAULT_SCHEMA_LIMITS.maxSubschemas, 1, 100000),
      maxPatterns: int('SCHEMA_MAX_PATTERNS', DEFAULT_SCHEMA_LIMITS.maxPatterns, 0, 100000),
      maxPatternLength: int('SCHEMA_MAX_PATTERN_LENGTH', DEFAULT_SCHEMA_LIMITS.maxPatternLength, 1, 100000),
    },
    corsOrigins: list('CORS_ORIGINS').map((origin) => {
      let ok = false;
      try {
        ok = new URL(origin).origin === origin;
      } catch {
        // reported below
      }
      if (!ok)
        problems.push(`CORS_ORIGINS entries must be origins like https://app.example.com (got "${origin}")`);
      return origin;
    }),
    rateLimitAnonymous: int('RATE_LIMIT_ANONYMOUS', 60, 0, 1000000),
    trustedProxies: cidrs('TRUSTED_PROXIES', []),
    auditRejectedWindowMs: int('AUDIT_REJECTED_WINDOW_MS', 60000, 100, 3600000),
    webhookToleranceSeconds: int('WEBHOOK_TOLERANCE_SECONDS', 300, 1, 86400),
    webhookLegacySignatures: bool('WEBHOOK_LEGACY_SIGNATURES', false),
    eventsMaxClients: int('EVENTS_MAX_CLIENTS', 100, 1, 100000),
    eventsMaxClientsPerKey: int('EVENTS_MAX_CLIENTS_PER_KEY', 5, 1, 100000),
    httpKeepAliveTimeoutMs: int('HTTP_KEEP_ALIVE_TIMEOUT_MS', 65000, 1000, 3600000),
    httpHeadersTimeoutMs: 0,
    notify: {
      attempts: int('NOTIFY_ATTEMPTS', 8, 1, 100),
      backoffMs: int('NOTIFY_BACKOFF_MS', 10000, 10, 3600000),
      timeoutMs: int('NOTIFY_TIMEOUT_MS', 10000, 100, 300000),
      logMax: int('NOTIFY_LOG_MAX', 200, 1, 100000),
      concurrency: int('NOTIFY_CONCURRENCY', 10, 1, 1000),
      freshnessIntervalMs: int('FRESHNESS_CHECK_INTERVAL_MS', 60000, 100, 86400000),
    },
  };
  // Node closes a keep-alive connection whose next request's headers take longer than
  // headersTimeout: it must outlast the idle keep-alive, or the idle socket is cut first.
  config.httpHeadersTimeoutMs = int(
    'HTTP_HEADERS_TIMEOUT_MS',
    config.httpKeepAliveTimeoutMs + 1000,
    1000,
    3601000,
  );
  if (config.httpHeadersTimeoutMs <= config.httpKeepAliveTimeoutMs)
    problems.push(
      `HTTP_HEADERS_TIMEOUT_MS (${config.httpHeadersTimeoutMs}) must be greater than HTTP_KEEP_ALIVE_TIMEOUT_MS (${config.httpKeepAliveTimeoutMs})`,
    );
  config.syncShardsConsume = shardList(env.SYNC_SHARDS_CONSUME, config.syncShards, problems);
  if (config.eventsMaxClientsPerKey > config.eventsMaxClients)
    problems.push('EVENTS_MAX_CLIENTS_PER_KEY must not exceed EVENTS_MAX_CLIENTS');
  if (problems.length) throw new ConfigError(problems);
  return config;
}

/** Most sync shards (SYNC_SHARDS); a schedule reconcile also looks this far for retired shards' schedulers. */
export const SYNC_SHARDS_MAX = 64;

/** `host:port` seeds of REDIS_CLUSTER_NODES (`[v6]:port` for IPv6); problems name the entry. */
function clusterNodes(raw: string | undefined, problems: string[]): Config['redisClusterNodes'] {
  const nodes: Config['redisClusterNodes'] = [];
  const entries = (raw ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  if (raw?.trim() && !entries.length) problems.push('REDIS_CLUSTER_NODES must list host:port seeds');
  for (const [i, entry] of entries.entries()) {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(entry);
    const port = Number(match?.[3]);
    // Named by position, never quoted: a mistyped entry may hold a password (user:pw@host:port).
    if (!match || port < 1 || port > 65535)
      problems.push(
        `REDIS_CLUSTER_NODES entry ${i + 1} must be host:port (a name or address and a port 1-65535)`,
      );
    else nodes.push({ host: match[1] ?? match[2]!, port });
  }
  return nodes;
}

/** SYNC_SHARDS_CONSUME: distinct shard indexes below SYNC_SHARDS; unset or empty = every shard. */
function shardList(raw: string | undefined, shards: number, problems: string[]): number[] {
  const all = Array.from({ length: shards }, (_, i) => i);
  if (!raw?.trim()) return all;
  const picked = new Set<number>();
  for (const entry of raw.split(',').map((v) => v.trim())) {
    if (!/^\d{1,3}$/.test(entry) || Number(entry) >= shards) {
      problems.push(
        `SYNC_SHARDS_CONSUME entries must be shard numbers from 0 to ${shards - 1} (SYNC_SHARDS=${shards}; got "${entry}")`,
      );
      return all;
    }
    picked.add(Number(entry));
  }
  return [...picked].sort((a, b) => a - b);
}

/** `group=limit` entries; a group is often host:port, so the last `=` splits it. */
function groupLimits(entries: string[], problems: string[]): Record<string, number> {
  const limits: Record<string, number> = {};
  for (const entry of entries) {
    const at = entry.lastIndexOf('=');
    const group = entry.slice(0, at).trim();
    const raw = entry.slice(at + 1).trim();
    if (at <= 0 || !group || group.length > 200 || !/^\d{1,5}$/.test(raw) || Number(raw) > 10000)
      problems.push(
        `CONCURRENCY_GROUP_LIMITS entries must be group=limit with limit 0 to 10000 (got "${entry}")`,
      );
    else limits[group] = Number(raw);
  }
  return limits;
}

/** `scope:token` entries; problems name the entry by position, never quote the token. */
function apiKeys(entries: string[], problems: string[]): Config['apiKeys'] {
  const keys: Config['apiKeys'] = [];
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const scope = entry.slice(0, colon);
    const token = entry.slice(colon + 1);
    const where = `API_KEYS entry ${i + 1}`;
    if (colon < 0 || !(API_SCOPES as readonly string[]).includes(scope))
      problems.push(`${where} must be scope:token with scope ${API_SCOPES.join(', ')}`);
    else if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token))
      problems.push(
        `${where} (${scope}) needs a token of at least ${MIN_TOKEN_LENGTH} characters without spaces`,
      );
    else keys.push({ scope: scope as ApiScope, token });
  }
  return keys;
}

/**
 * `id:base64key,...`: ids are short names, each key exactly 32 bytes (AES-256). SecretBox refuses
 * the same keyrings on its own (this module imports no feature); its test keeps the two agreeing.
 */
export function checkEncryptionKeys(value: string): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const [i, entry] of value.split(',').entries()) {
    const [id, key, extra] = entry.trim().split(':');
    const where = `ENCRYPTION_KEYS entry ${i + 1}`;
    if (!id || !key || extra !== undefined || !/^[A-Za-z0-9_-]{1,32}$/.test(id)) {
      problems.push(`${where} must be id:base64key with a short [A-Za-z0-9_-] id`);
      continue;
    }
    if (ids.has(id)) problems.push(`${where} repeats key id "${id}"`);
    ids.add(id);
    // Buffer.from(..., 'base64') skips characters it does not know, so check the alphabet first:
    // a typo must not quietly become a different key.
    if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(key) || Buffer.from(key, 'base64').length !== 32)
      problems.push(`${where} ("${id}") must be base64 of exactly 32 bytes`);
  }
  return problems;
}
