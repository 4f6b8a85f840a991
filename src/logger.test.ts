import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CENSOR, isSecretKey, scrub, scrubText } from './connectors/kit/secret-scrubber';
import { createLogger } from './logger';

const SECRET = 'Xy7-Redact-Me-Q4';
const CONNECTION = `postgres://loader:${SECRET}@127.0.0.1:5432/warehouse`;

function capture(level = 'trace') {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger(level, sink), lines };
}

describe('logger redaction', () => {
  it('censors connection_string at every depth, in arrays and under camelCase', () => {
    const { logger, lines } = capture();
    const source = { name: 'orders', connection_string: CONNECTION, has_connection_string: true };
    logger.info({ connection_string: CONNECTION }, 'top level');
    logger.info({ source }, 'one deep');
    logger.info({ body: { data: [source] } }, 'inside an array');
    logger.info({ a: { b: { c: { d: { e: { f: source } } } } } }, 'six deep');
    logger.info({ job: { connectionString: SECRET, connection_string_ciphertext: 'v1:k:n:c' } }, 'camel');
    logger.info(
      { req: { headers: { authorization: `Bearer ${SECRET}`, cookie: `s=${SECRET}` } } },
      'headers',
    );
    expect(lines).toHaveLength(6);
    for (const line of lines) expect(line).not.toContain(SECRET);
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed[0].connection_string).toBe(CENSOR);
    expect(parsed[1].source).toEqual({
      name: 'orders',
      connection_string: CENSOR,
      has_connection_string: true,
    });
    expect(parsed[2].body.data[0].connection_string).toBe(CENSOR);
    expect(parsed[3].a.b.c.d.e.f.connection_string).toBe(CENSOR);
    expect(parsed[5].req.headers.authorization).toBe(CENSOR);
  });

  it('censors secrets inside errors: message, stack, own properties and cause', () => {
    const { logger, lines } = capture();
    const cause = new Error(`dial ${CONNECTION}`);
    const err = Object.assign(new Error(`could not connect to ${CONNECTION}`, { cause }), {
      code: 'ECONNREFUSED',
      connection_string: SECRET,
    });
    logger.error({ err }, 'sync failed');
    logger.error(err);
    logger.error({ err: { nested: { error: err } } }, 'wrapped');
    for (const line of lines) expect(line).not.toContain(SECRET);
    const first = JSON.parse(lines[0]!);
    expect(first.err).toMatchObject({ type: 'Error', code: 'ECONNREFUSED', connection_string: CENSOR });
    expect(first.err.message).toBe('could not connect to postgres://****@127.0.0.1:5432/warehouse');
    expect(first.err.stack).toContain('could not connect to postgres://****@');
    expect(JSON.parse(lines[1]!).msg).toBe('could not connect to postgres://****@127.0.0.1:5432/warehouse');
  });

  it('scrubs credentials from messages and interpolated arguments', () => {
    const { logger, lines } = capture();
    logger.warn(`retrying ${CONNECTION}`);
    logger.warn('fetching %s', `https://api.example.com/items?page=2&token=${SECRET}`);
    logger.warn({ url: `https://:${SECRET}@api.example.com/x` }, 'token in user info');
    for (const line of lines) expect(line).not.toContain(SECRET);
    expect(JSON.parse(lines[1]!).msg).toBe('fetching https://api.example.com/items?page=2&token=****');
  });

  it('censors child-logger bindings, which pino does not pass through formatters', () => {
    const { logger, lines } = capture();
    logger.child({ source: { connection_string: SECRET } }).info('child line');
    expect(lines[0]).not.toContain(SECRET);
    expect(JSON.parse(lines[0]!).source.connection_string).toBe(CENSOR);
  });

  it('keeps ordinary fields intact and survives cycles, toJSON and Buffers', () => {
    const { logger, lines } = capture();
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    logger.info({
      requestId: 'r-1',
      status: 201,
      when: new Date('2026-01-01T00:00:00Z'),
      cyclic,
      model: { toJSON: () => ({ password: SECRET, id: 7 }) },
      buf: Buffer.from(SECRET),
      email: 'ops@example.com',
      link: 'https://example.com/a?b=1',
    });
    expect(lines[0]).not.toContain(SECRET);
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({
      requestId: 'r-1',
      status: 201,
      when: '2026-01-01T00:00:00.000Z',
      cyclic: { name: 'loop', self: '[Circular]' },
      model: { password: CENSOR, id: 7 },
      email: 'ops@example.com',
      link: 'https://example.com/a?b=1',
    });
  });

  it('bounds depth instead of walking forever', () => {
    let deep: Record<string, unknown> = { connection_string: SECRET };
    for (let i = 0; i < 100; i++) deep = { next: deep };
    const { logger, lines } = capture();
    logger.info({ deep });
    expect(lines[0]).not.toContain(SECRET);
    expect(lines[0]).toContain('[Truncated]');
  });
});

describe('isSecretKey / scrubText / scrub', () => {
  it('knows which keys hold secrets', () => {
    for (const key of [
      'connection_string',
      'connectionString',
      'password',
      'api_key',
      'Authorization',
      'x_token',
    ])
      expect(isSecretKey(key), key).toBe(true);
    for (const key of ['has_connection_string', 'connection_string_masked', 'name', 'keyId', 'status'])
      expect(isSecretKey(key), key).toBe(false);
  });

  it('masks user info and secret query parameters in free text, and nothing else', () => {
    expect(scrubText(`a ${CONNECTION} b`)).toBe('a postgres://****@127.0.0.1:5432/warehouse b');
    expect(scrubText(`x https://h/p?sig=${SECRET}&page=2#f`)).toBe('x https://h/p?sig=****&page=2#f');
    expect(scrubText('plain text, a@b.c and https://h/p?page=2')).toBe(
      'plain text, a@b.c and https://h/p?page=2',
    );
    // A password holding a raw "@" is still masked up to the host.
    expect(scrubText('redis://u:p@ss@127.0.0.1:6379')).toBe('redis://****@127.0.0.1:6379');
  });

  it('returns a copy where something changed and leaves the logged object alone', () => {
    const input = { connection_string: SECRET };
    expect(scrub(input)).toEqual({ connection_string: CENSOR });
    expect(input.connection_string).toBe(SECRET);
    const deep = { a: 1, list: [{ ok: true }, { url: `postgres://u:${SECRET}@h/d` }], after: 'x' };
    const cleaned = scrub(deep) as typeof deep;
    expect(cleaned).toEqual({ a: 1, list: [{ ok: true }, { url: 'postgres://****@h/d' }], after: 'x' });
    expect(deep.list[1]!.url).toContain(SECRET);
    // Untouched parts are shared, not copied.
    expect(cleaned.list[0]).toBe(deep.list[0]);
  });

  it('returns the object itself when it holds nothing to hide (no copy per log line)', () => {
    const line = { requestId: 'r1', method: 'GET', path: '/raw-data-sources/1', status: 200, ms: 3 };
    expect(scrub(line)).toBe(line);
    const nested = { a: [1, 'two', { b: null }], c: { d: new Date(0) } };
    expect(scrub(nested)).toBe(nested);
  });
});

/** Runs test/support/log-lines.ts; resolves with its stdout lines and when each arrived, relative to its `done`. */
function logLines(env: Record<string, string>) {
  return new Promise<{ lines: { i: number; msg: string }[]; msAfterDone: number[] }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/log-lines.ts'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let doneAt: number | undefined;
    const msAfterDone: number[] = [];
    child.stdout.on('data', (chunk: Buffer) => {
      out += String(chunk);
      msAfterDone.push(doneAt === undefined ? -1 : performance.now() - doneAt);
      // SIGKILL skips the flush at exit: whatever arrived before it was written while running.
      if (env.KILL_ON_OUTPUT) child.kill('SIGKILL');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (String(chunk).includes('done')) doneAt = performance.now();
    });
    // A bound against a hang only: starting tsx on a loaded 2-core machine can take tens of seconds.
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    // 'close', not 'exit': the lines written as the process exits may still be in the pipe at 'exit'.
    child.once('close', () => {
      clearTimeout(timer);
      resolve({
        lines: out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
        msAfterDone,
      });
    });
  });
}

describe('standard output, written in batches', () => {
  it('writes every line, in order, when the process exits with process.exit()', async () => {
    const { lines } = await logLines({ LINES: '2000', EXIT: 'now' });
    expect(lines.map((l) => l.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  }, 180_000);

  it('writes every line when the process crashes on an uncaught exception', async () => {
    const { lines } = await logLines({ LINES: '300', EXIT: 'crash' });
    expect(lines).toHaveLength(300);
  }, 180_000);

  it('writes a lone line within the flush interval while the process keeps running', async () => {
    // The process would stay STAY_MS; it is SIGKILLed (no flush at exit) as soon as the line arrives.
    const stayMs = 20_000;
    const { lines, msAfterDone } = await logLines({
      LINES: '1',
      STAY_MS: String(stayMs),
      KILL_ON_OUTPUT: '1',
    });
    expect(lines).toMatchObject([{ i: 0, msg: 'line' }]);
    // Logged before `done`, written by the periodic flush (200 ms), not held until the process ends:
    // it arrived while the process was still staying. Not a speed bound: held until exit, it would
    // arrive stayMs after `done`; flushed, it arrives about 200 ms after, however loaded the machine.
    expect(msAfterDone).toHaveLength(1);
    expect(msAfterDone[0]).toBeLessThan(stayMs);
  }, 180_000);
});
