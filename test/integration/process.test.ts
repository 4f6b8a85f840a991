import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { TEST_ENCRYPTION_KEYS, TEST_REDIS_URL, uniqueSuffix } from '../helpers/test-env';
import { deletePrefix } from '../process/process-kit';

/**
 * `src/main.ts` as a real child process, the way an operator starts it: configuration errors, start,
 * serve, SIGTERM. Every wait is bounded and every child is killed in afterAll, pass or fail.
 */
const ROOT = new URL('../../', import.meta.url).pathname;
/**
 * Hang detectors, not speed checks: loading the app through tsx takes a few seconds, and many more
 * on a loaded 2-core machine, so the bounds are generous.
 */
const READY_WITHIN_MS = 45_000;
const EXIT_WITHIN_MS = 45_000;
const STOP_WITHIN_MS = 20_000;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}
interface Child {
  proc: ChildProcess;
  output: { stdout: string; stderr: string };
  exited: Promise<Exit>;
}

const children: Child[] = [];

/**
 * A clean environment, not a copy of ours: a DATABASE_URL or QUEUE_PREFIX that the test runner
 * happens to have must not leak into the child and hide a missing variable.
 */
function start(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  proc.stdout?.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  proc.stderr?.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  // 'close', not 'exit': the process writes its batched log lines as it exits (src/logger.ts), and
  // 'exit' can come before the last of its output has been read; the tests read it once it is gone.
  const exited = new Promise<Exit>((resolve) =>
    proc.once('close', (code, signal) => resolve({ code, signal })),
  );
  const child = { proc, output, exited };
  children.push(child);
  return child;
}

/** The exit, or undefined when the child is still running after `ms`. */
async function exitWithin(child: Child, ms: number): Promise<Exit | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A port nothing listens on right now: bind to 0, read the port, let it go. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A runnable environment on loopback: its own database, queue prefix and port. */
const serviceEnv = (nodeEnv: string, port: number, databaseUrl: string, queuePrefix: string) => ({
  NODE_ENV: nodeEnv,
  HOST: '127.0.0.1',
  PORT: String(port),
  DATABASE_URL: databaseUrl,
  DATABASE_POOL_MAX: '3',
  REDIS_URL: TEST_REDIS_URL,
  ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
  QUEUE_PREFIX: queuePrefix,
});

afterAll(async () => {
  for (const child of children)
    if (child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await exitWithin(child, 5_000);
    }
});

describe('main.ts with an invalid environment', () => {
  it('exits 78 and lists every problem on stderr at once', async () => {
    const child = start({
      NODE_ENV: 'test',
      // DATABASE_URL missing
      PORT: 'abc',
      ENCRYPTION_KEYS: `k1:${Buffer.from('too-short').toString('base64')}`,
      LOG_LEVEL: 'loud',
      REDIS_URL: TEST_REDIS_URL,
    });
    const exit = await exitWithin(child, EXIT_WITHIN_MS);
    const { stderr, stdout } = child.output;
    expect(exit, `still running after ${EXIT_WITHIN_MS} ms; stderr: ${stderr}`).toEqual({
      code: 78,
      signal: null,
    });
    expect(stderr).toContain('invalid configuration');
    expect(stderr).toContain('DATABASE_URL is required');
    expect(stderr).toContain('PORT must be an integer');
    expect(stderr).toMatch(/ENCRYPTION_KEYS entry 1 .*32 bytes/);
    expect(stderr).toContain('LOG_LEVEL must be one of');
    // Exactly these four: one line each, and no stack trace or other noise.
    expect(stderr.split('\n').filter((line) => line.startsWith('  - '))).toHaveLength(4);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stdout).toBe('');
  }, 60_000);
});

describe('main.ts with a valid environment', () => {
  const secret = `Pr0cess-S3cret-${randomBytes(6).toString('hex')}`;
  const token = `slc_${randomBytes(20).toString('hex')}`;
  const auth = { authorization: `Bearer ${token}` };
  const queuePrefix = `sluice_test_${uniqueSuffix()}`;
  let database: TestDatabase;
  let child: Child;
  let baseUrl: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    child = start({
      ...serviceEnv('test', port, database.url, queuePrefix),
      API_KEYS: `admin:${token}`,
      // debug: the most the process ever logs, so the secret check below sees everything.
      LOG_LEVEL: 'debug',
      TEST_WAIT_MS: '5000',
      SHUTDOWN_GRACE_MS: '5000',
    });
  });

  afterAll(async () => {
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await exitWithin(child, 5_000);
    }
    await database?.drop();
    // Whatever the child left in Redis lives under its own prefix.
    await deletePrefix(TEST_REDIS_URL, queuePrefix);
  });

  it('answers /healthz, keeps a posted secret out of its logs, and stops cleanly on SIGTERM', async () => {
    // Ready = /healthz answers 200, polled until a bound; an early exit ends the wait at once.
    const deadline = Date.now() + READY_WITHIN_MS;
    let health: Response | undefined;
    while (!health && Date.now() < deadline && child.proc.exitCode === null) {
      health = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2_000) }).catch(
        () => undefined,
      );
      if (!health) await sleep(100);
    }
    expect(health?.status, `not healthy within ${READY_WITHIN_MS} ms: ${child.output.stderr}`).toBe(200);
    expect(await health?.json()).toEqual({ status: 'ok' });

    const connectionString = `postgres://loader:${secret}@127.0.0.1:${await freePort()}/warehouse`;
    expect((await fetch(`${baseUrl}/raw-data-sources`)).status).toBe(401);
    const created = await fetch(`${baseUrl}/raw-data-sources`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({
        name: 'process-check',
        source_type: 'database',
        connection_string: connectionString,
      }),
    });
    const source = (await created.json()) as { id: string; connection_string: string };
    expect(created.status, JSON.stringify(source)).toBe(201);
    expect(source.connection_string).not.toContain(secret);
    // Paths where a secret could slip into a log line: a failing write, a connection test, a read.
    const rejected = await fetch(`${baseUrl}/raw-data-sources`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ name: 'process-check', connection_string: connectionString, surprise: true }),
    });
    expect(rejected.status).toBe(400);
    expect(await rejected.text()).not.toContain(secret);
    const tested = await fetch(`${baseUrl}/raw-data-sources/${source.id}/test`, {
      method: 'POST',
      headers: auth,
    });
    expect([200, 202]).toContain(tested.status);
    const testAnswer = await tested.text();
    expect(testAnswer).not.toContain(secret);
    expect((await fetch(`${baseUrl}/raw-data-sources/${source.id}`, { headers: auth })).status).toBe(200);

    child.proc.kill('SIGTERM');
    const exit = await exitWithin(child, STOP_WITHIN_MS);
    const { stdout, stderr } = child.output;
    expect(exit, `did not exit within ${STOP_WITHIN_MS} ms of SIGTERM; stderr: ${stderr}`).toEqual({
      code: 0,
      signal: null,
    });
    const messages = stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toContain('shutting down');
    expect(messages.at(-1)).toBe('stopped');
    // The logs did see the requests (so the check below means something), never the secret.
    expect(stdout).toContain(source.id);
    expect(stdout + stderr).not.toContain(secret);
    expect(stdout + stderr).not.toContain(encodeURIComponent(secret));
    expect(stdout + stderr).not.toContain(token);
  }, 90_000);
});

describe('main.ts without any API key', () => {
  let database: TestDatabase;
  const queuePrefix = `sluice_test_${uniqueSuffix()}`;
  const env = (nodeEnv: string, port: number) => serviceEnv(nodeEnv, port, database.url, queuePrefix);
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    for (const child of children)
      if (child.proc.exitCode === null && child.proc.signalCode === null) {
        child.proc.kill('SIGKILL');
        await exitWithin(child, 5_000);
      }
    await database?.drop();
    await deletePrefix(TEST_REDIS_URL, queuePrefix);
  });

  it('refuses to start in production, saying how to configure a key', async () => {
    const child = start(env('production', await freePort()));
    const exit = await exitWithin(child, EXIT_WITHIN_MS);
    expect(exit, child.output.stderr).toEqual({ code: 78, signal: null });
    expect(child.output.stderr).toContain('no API key is configured');
    expect(child.output.stderr).toContain('API_KEYS=admin:<token>');
    expect(child.output.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('in development creates an admin key, prints its token once to stderr and stores only its hash', async () => {
    const port = await freePort();
    const child = start(env('development', port));
    const deadline = Date.now() + READY_WITHIN_MS;
    let token: string | undefined;
    while (!token && Date.now() < deadline && child.proc.exitCode === null) {
      token = /\n {2}(slc_[A-Za-z0-9_-]{43})\n/.exec(child.output.stderr)?.[1];
      if (!token) await sleep(100);
    }
    expect(token, child.output.stderr).toBeDefined();
    let status: number | undefined;
    while (status === undefined && Date.now() < deadline) {
      status = await fetch(`http://127.0.0.1:${port}/raw-data-sources`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(2_000),
      }).then(
        (r) => r.status,
        () => undefined,
      );
      if (status === undefined) await sleep(100);
    }
    expect(status).toBe(200);
    const rows = await database.knex('api_keys').select('name', 'scope', 'token_hash', 'prefix');
    expect(rows).toEqual([
      {
        name: 'dev-bootstrap',
        scope: 'admin',
        token_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
        prefix: token!.slice(0, 8),
      },
    ]);
    expect(child.output.stdout).not.toContain(token);
    child.proc.kill('SIGTERM');
    expect(await exitWithin(child, STOP_WITHIN_MS)).toEqual({ code: 0, signal: null });
    // Printed once: exactly one occurrence in everything the process wrote.
    expect((child.output.stdout + child.output.stderr).split(token!).length).toBe(2);
  }, 90_000);
});
