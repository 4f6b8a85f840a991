import { describe, expect, it } from 'vitest';
import { checkEncryptionKeys, ConfigError, loadConfig } from './config';
import { DEFAULT_SCHEMA_LIMITS } from './schema/schema-limits';

const KEY = Buffer.alloc(32, 7).toString('base64');
const minimal = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/sluice',
  REDIS_URL: 'redis://127.0.0.1:6379/0',
  ENCRYPTION_KEYS: `k1:${KEY}`,
};

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('needs only the three connection settings; everything else has a default', () => {
    const config = loadConfig(minimal);
    expect(config).toMatchObject({
      env: 'development',
      host: '127.0.0.1',
      port: 3000,
      databaseUrl: minimal.DATABASE_URL,
      databasePoolMax: 10,
      redisUrl: minimal.REDIS_URL,
      encryptionKeys: minimal.ENCRYPTION_KEYS,
      logLevel: 'info',
      workerConcurrency: 10,
      bodyLimit: '1mb',
      readyTimeoutMs: 1000,
    });
  });

  it('in development logs pretty and reads files below ./data unless told otherwise; elsewhere JSON and no files', () => {
    expect(loadConfig(minimal)).toMatchObject({ logFormat: 'pretty', fileRoots: [`${process.cwd()}/data`] });
    expect(loadConfig({ ...minimal, FILE_ROOTS: '', LOG_FORMAT: 'json' })).toMatchObject({
      logFormat: 'json',
      fileRoots: [`${process.cwd()}/data`],
    });
    expect(loadConfig({ ...minimal, FILE_ROOTS: '/srv/in/' })).toMatchObject({ fileRoots: ['/srv/in'] });
    for (const NODE_ENV of ['test', 'production'])
      expect(loadConfig({ ...minimal, NODE_ENV, API_KEYS: `admin:${'t'.repeat(40)}` })).toMatchObject({
        logFormat: 'json',
        fileRoots: [],
      });
    expect(problemsOf({ ...minimal, LOG_FORMAT: 'fancy' })).toContain('LOG_FORMAT must be pretty or json');
  });

  it('reads and trims every value it is given', () => {
    const config = loadConfig({
      ...minimal,
      NODE_ENV: 'production',
      HOST: ' 0.0.0.0 ',
      PORT: '8080',
      DATABASE_POOL_MAX: '25',
      LOG_LEVEL: 'warn',
      WORKER_CONCURRENCY: '4',
      BODY_LIMIT: '512KB',
      READY_TIMEOUT_MS: '250',
    });
    expect(config).toMatchObject({
      env: 'production',
      host: '0.0.0.0',
      port: 8080,
      databasePoolMax: 25,
      logLevel: 'warn',
      workerConcurrency: 4,
      bodyLimit: '512kb',
      readyTimeoutMs: 250,
    });
  });

  it('DATABASE_PREPARED_STATEMENTS is auto by default, on or off when set, and anything else a problem', () => {
    expect(loadConfig(minimal).databasePreparedStatements).toBe('auto');
    expect(loadConfig({ ...minimal, DATABASE_PREPARED_STATEMENTS: ' off ' }).databasePreparedStatements).toBe(
      'off',
    );
    expect(loadConfig({ ...minimal, DATABASE_PREPARED_STATEMENTS: 'on' }).databasePreparedStatements).toBe(
      'on',
    );
    expect(problemsOf({ ...minimal, DATABASE_PREPARED_STATEMENTS: 'yes' })).toEqual([
      'DATABASE_PREPARED_STATEMENTS must be auto, on or off (got "yes")',
    ]);
  });

  it('caps on schema_definition default to DEFAULT_SCHEMA_LIMITS and are read from SCHEMA_MAX_*', () => {
    expect(loadConfig(minimal).schemaLimits).toEqual(DEFAULT_SCHEMA_LIMITS);
    expect(
      loadConfig({ ...minimal, SCHEMA_MAX_BYTES: '65536', SCHEMA_MAX_PATTERNS: '0', SCHEMA_MAX_DEPTH: '8' })
        .schemaLimits,
    ).toMatchObject({ maxBytes: 65536, maxPatterns: 0, maxDepth: 8 });
    expect(problemsOf({ ...minimal, SCHEMA_MAX_BYTES: '10', SCHEMA_MAX_SUBSCHEMAS: 'many' })).toEqual([
      'SCHEMA_MAX_BYTES must be an integer from 1024 to 16777216 (got "10")',
      'SCHEMA_MAX_SUBSCHEMAS must be an integer from 1 to 100000 (got "many")',
    ]);
  });

  it('lists every problem at once, not just the first', () => {
    const problems = problemsOf({
      NODE_ENV: 'staging',
      PORT: '70000',
      DATABASE_POOL_MAX: 'ten',
      REDIS_URL: 'http://127.0.0.1:6379',
      LOG_LEVEL: 'loud',
      WORKER_CONCURRENCY: '-1',
      BODY_LIMIT: 'lots',
      READY_TIMEOUT_MS: '1.5',
      ENCRYPTION_KEYS: 'k1:short',
    });
    const expected = [
      /^NODE_ENV must be development, test or production/,
      /^PORT must be an integer from 0 to 65535 \(got "70000"\)/,
      /^DATABASE_URL is required$/,
      /^DATABASE_POOL_MAX must be an integer/,
      /^REDIS_URL must be a redis: or rediss: URL/,
      /^LOG_LEVEL must be one of/,
      /^WORKER_CONCURRENCY must be an integer/,
      /^BODY_LIMIT must look like/,
      /^READY_TIMEOUT_MS must be an integer/,
      /^ENCRYPTION_KEYS entry 1 \("k1"\) must be base64 of exactly 32 bytes/,
    ];
    for (const pattern of expected)
      expect(
        problems.some((p) => pattern.test(p)),
        String(pattern),
      ).toBe(true);
    expect(problems.length).toBeGreaterThanOrEqual(expected.length);
  });

  it('says what is missing when nothing is set', () => {
    const problems = problemsOf({});
    expect(problems).toEqual(
      expect.arrayContaining([
        'DATABASE_URL is required',
        'REDIS_URL is required',
        'ENCRYPTION_KEYS is required',
      ]),
    );
  });

  it('puts every problem, one per line, into the error message an operator sees', () => {
    expect(() => loadConfig({ ...minimal, PORT: 'x', LOG_LEVEL: 'x' })).toThrow(
      /^invalid configuration:\n {2}- LOG_LEVEL [^\n]+\n {2}- PORT [^\n]+$/,
    );
  });

  it('refuses URLs it cannot parse and URLs of the wrong scheme', () => {
    expect(problemsOf({ ...minimal, DATABASE_URL: 'not a url' })).toEqual([
      'DATABASE_URL is not a valid URL',
    ]);
    expect(problemsOf({ ...minimal, DATABASE_URL: 'mysql://127.0.0.1/x' })[0]).toMatch(
      /postgres: or postgresql:/,
    );
  });

  it('never echoes a URL or key it refuses, since either may hold a secret', () => {
    const problems = problemsOf({
      DATABASE_URL: 'mysql://admin:Hunter2-Db@127.0.0.1/x',
      REDIS_URL: 'http://:Hunter2-Redis@127.0.0.1',
      ENCRYPTION_KEYS: `k1:Hunter2-Key${'A'.repeat(30)}`,
    });
    expect(problems.join('\n')).not.toMatch(/Hunter2/);
  });

  it.each([
    ['integers', { PORT: '80.5' }],
    ['signs', { PORT: '+80' }],
    ['exponents', { DATABASE_POOL_MAX: '1e2' }],
    ['below the minimum', { READY_TIMEOUT_MS: '10' }],
    ['above the maximum', { WORKER_CONCURRENCY: '1001' }],
  ])('refuses numbers that are not plain in-range %s', (_what, env) => {
    expect(problemsOf({ ...minimal, ...env })).toHaveLength(1);
  });
});

describe('loadConfig: edge limits (issue 13)', () => {
  it('defaults: 60 keyless requests per address, no trusted proxy, 5 min webhook window, legacy off, 5/100 streams, 65 s keep-alive', () => {
    expect(loadConfig(minimal)).toMatchObject({
      rateLimitAnonymous: 60,
      trustedProxies: [],
      auditRejectedWindowMs: 60000,
      webhookToleranceSeconds: 300,
      webhookLegacySignatures: false,
      eventsMaxClients: 100,
      eventsMaxClientsPerKey: 5,
      httpKeepAliveTimeoutMs: 65000,
      httpHeadersTimeoutMs: 66000,
    });
    expect(
      loadConfig({ ...minimal, WEBHOOK_LEGACY_SIGNATURES: 'true', HTTP_KEEP_ALIVE_TIMEOUT_MS: '120000' }),
    ).toMatchObject({ webhookLegacySignatures: true, httpHeadersTimeoutMs: 121000 });
  });

  it('refuses a headers timeout not above keep-alive, bad proxies, a per-key cap above the total, a non-boolean', () => {
    const problems = problemsOf({
      ...minimal,
      HTTP_KEEP_ALIVE_TIMEOUT_MS: '65000',
      HTTP_HEADERS_TIMEOUT_MS: '60000',
      TRUSTED_PROXIES: '10.0.0.1',
      EVENTS_MAX_CLIENTS: '10',
      EVENTS_MAX_CLIENTS_PER_KEY: '11',
      WEBHOOK_LEGACY_SIGNATURES: 'yes',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining(
          'HTTP_HEADERS_TIMEOUT_MS (60000) must be greater than HTTP_KEEP_ALIVE_TIMEOUT_MS',
        ),
        expect.stringContaining('TRUSTED_PROXIES'),
        'EVENTS_MAX_CLIENTS_PER_KEY must not exceed EVENTS_MAX_CLIENTS',
        'WEBHOOK_LEGACY_SIGNATURES must be true or false (got "yes")',
      ]),
    );
  });
});

describe('checkEncryptionKeys', () => {
  it('accepts a keyring of distinct ids with 32-byte keys, standard or url-safe base64', () => {
    const urlSafe = Buffer.alloc(32, 0xfb).toString('base64url');
    expect(checkEncryptionKeys(`new:${KEY}, old:${urlSafe}`)).toEqual([]);
  });

  it('names each bad entry', () => {
    const problems = checkEncryptionKeys(
      [
        `a:${KEY}`,
        `a:${KEY}`,
        'no-key',
        `b:${Buffer.alloc(16).toString('base64')}`,
        `c:${KEY}:x`,
        `bad id:${KEY}`,
      ].join(','),
    );
    expect(problems).toEqual([
      'ENCRYPTION_KEYS entry 2 repeats key id "a"',
      'ENCRYPTION_KEYS entry 3 must be id:base64key with a short [A-Za-z0-9_-] id',
      'ENCRYPTION_KEYS entry 4 ("b") must be base64 of exactly 32 bytes',
      'ENCRYPTION_KEYS entry 5 must be id:base64key with a short [A-Za-z0-9_-] id',
      'ENCRYPTION_KEYS entry 6 must be id:base64key with a short [A-Za-z0-9_-] id',
    ]);
  });

  it('refuses a key with characters outside base64, even when the rest decodes to 32 bytes', () => {
    // Node's decoder would skip the "#" and "!" and hand back some other 32-byte key.
    const typo = `${KEY.slice(0, 10)}#!${KEY.slice(10)}`;
    expect(Buffer.from(typo, 'base64')).toHaveLength(32);
    expect(checkEncryptionKeys(`k:${typo}`)).toHaveLength(1);
  });
});

describe('loadConfig: API keys, rate limits, CORS', () => {
  const token = `slc_${'k'.repeat(43)}`;

  it('reads API_KEYS as scope:token entries and the limits with their defaults', () => {
    const config = loadConfig({ ...minimal, API_KEYS: ` admin:${token}, read:${'r'.repeat(32)} ` });
    expect(config.apiKeys).toEqual([
      { scope: 'admin', token },
      { scope: 'read', token: 'r'.repeat(32) },
    ]);
    expect(config.rateLimits).toEqual({ all: 600, sync: 60, test: 30 });
    expect(config.corsOrigins).toEqual([]);
    expect(loadConfig({ ...minimal, RATE_LIMIT_ALL: '0' }).rateLimits.all).toBe(0);
  });

  it('names bad API_KEYS entries by position without ever quoting the token', () => {
    const short = 'tooShort-butSecret';
    const problems = problemsOf({ ...minimal, API_KEYS: `root:${token},read:${short},${token}` });
    expect(problems).toEqual([
      'API_KEYS entry 1 must be scope:token with scope read, write, admin',
      `API_KEYS entry 2 (read) needs a token of at least 32 characters without spaces`,
      'API_KEYS entry 3 must be scope:token with scope read, write, admin',
    ]);
    expect(problems.join('\n')).not.toContain(short);
    expect(problems.join('\n')).not.toContain(token);
  });

  it('checks rate limits and CORS origins', () => {
    expect(
      problemsOf({
        ...minimal,
        RATE_LIMIT_SYNC: '-1',
        CORS_ORIGINS: 'https://ok.example,https://bad.example/path,*',
      }),
    ).toEqual([
      'RATE_LIMIT_SYNC must be an integer from 0 to 1000000 (got "-1")',
      'CORS_ORIGINS entries must be origins like https://app.example.com (got "https://bad.example/path")',
      'CORS_ORIGINS entries must be origins like https://app.example.com (got "*")',
    ]);
  });
});

describe('run policy defaults', () => {
  it('reads the global run policy and per-group concurrency limits (host:port=limit)', () => {
    const config = loadConfig({
      ...minimal,
      SYNC_MAX_RUN_SECONDS: '600',
      SYNC_BACKOFF_MS: '500',
      SYNC_DEACTIVATE_AFTER_FAILURES: '5',
      CONCURRENCY_LIMIT: '4',
      CONCURRENCY_GROUP_LIMITS: 'db.internal:5432=2, warehouse=1',
    });
    expect(config).toMatchObject({
      syncMaxRunSeconds: 600,
      syncBackoffMs: 500,
      deactivateAfterFailures: 5,
      concurrency: { defaultLimit: 4, groupLimits: { 'db.internal:5432': 2, warehouse: 1 }, leaseMs: 30000 },
    });
    expect(loadConfig(minimal)).toMatchObject({
      syncMaxRunSeconds: 86400,
      deactivateAfterFailures: 0,
      concurrency: { defaultLimit: 0, groupLimits: {} },
    });
  });

  it('REDIS_CLUSTER_NODES: unset is one Redis with one sync shard; set, REDIS_URL is optional and the seeds are read', () => {
    expect(loadConfig(minimal)).toMatchObject({
      redisClusterNodes: [],
      syncShards: 1,
      syncShardsConsume: [0],
    });
    const { REDIS_URL: _unused, ...withoutUrl } = minimal;
    const config = loadConfig({
      ...withoutUrl,
      REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-b.internal:7001 ,[::1]:7002',
      SYNC_SHARDS: '4',
      SYNC_SHARDS_CONSUME: '3,1,3',
    });
    expect(config.redisClusterNodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-b.internal', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(config).toMatchObject({ syncShards: 4, syncShardsConsume: [1, 3] });
    expect(loadConfig({ ...minimal, SYNC_SHARDS: '3' }).syncShardsConsume).toEqual([0, 1, 2]);
  });

  it('names bad cluster seeds by position (never quoting them) and bad shard settings', () => {
    const problems = problemsOf({
      ...minimal,
      REDIS_CLUSTER_NODES: 'ok.host:7000,user:s3cret@host:7001,host-without-port',
      SYNC_SHARDS: '65',
      SYNC_SHARDS_CONSUME: '0,x',
    });
    expect(problems).toContain(
      'REDIS_CLUSTER_NODES entry 2 must be host:port (a name or address and a port 1-65535)',
    );
    expect(problems.some((p) => p.startsWith('REDIS_CLUSTER_NODES entry 3 '))).toBe(true);
    expect(problems).toContain('SYNC_SHARDS must be an integer from 1 to 64 (got "65")');
    expect(problems.join('\n')).not.toContain('s3cret');
    expect(problemsOf({ ...minimal, SYNC_SHARDS: '2', SYNC_SHARDS_CONSUME: '0,2' })).toEqual([
      'SYNC_SHARDS_CONSUME entries must be shard numbers from 0 to 1 (SYNC_SHARDS=2; got "2")',
    ]);
    expect(problemsOf({ ...minimal, REDIS_CLUSTER_NODES: ' , ' })).toEqual([
      'REDIS_CLUSTER_NODES must list host:port seeds',
    ]);
    const { REDIS_URL: _unused, ...withoutUrl } = minimal;
    expect(problemsOf(withoutUrl)).toContain('REDIS_URL is required');
  });

  it('names each bad policy variable', () => {
    const problems = problemsOf({
      ...minimal,
      SYNC_MAX_RUN_SECONDS: '0',
      CONCURRENCY_LIMIT: '-1',
      CONCURRENCY_GROUP_LIMITS: 'db:5432=two,=3',
    });
    expect(problems.some((p) => p.startsWith('SYNC_MAX_RUN_SECONDS'))).toBe(true);
    expect(problems.some((p) => p.startsWith('CONCURRENCY_LIMIT'))).toBe(true);
    expect(problems.filter((p) => p.startsWith('CONCURRENCY_GROUP_LIMITS'))).toHaveLength(2);
  });
});
