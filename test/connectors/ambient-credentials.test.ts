import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorSource, TestStep } from '../../src/connectors/connector';
import { DatabaseConnector } from '../../src/connectors/database/database.connector';
import { StreamConnector } from '../../src/connectors/stream/stream.connector';
import { dbContext, dbSource } from './support/database-peers';
import {
  startRecordingMysql,
  startRecordingNats,
  startRecordingPostgres,
  startRecordingRedis,
  type MysqlLogin,
  type PgLogin,
  type RecordingPeer,
} from './support/recording-peers';

// Issue 13 row 3: the worker's own credentials (PGPASSWORD, a .pgpass, MYSQL_PWD, NATS_*,
// REDISCLI_AUTH...) must never reach a source's server. Each peer below asks for a password and
// records what it gets; the worker's environment holds the operator's secrets meanwhile.
const AMBIENT = 'operator-ambient-secret';
let dir: string;
const saved = new Map<string, string | undefined>();

function setEnv(values: Record<string, string>): void {
  for (const [name, value] of Object.entries(values)) {
    if (!saved.has(name)) saved.set(name, process.env[name]);
    process.env[name] = value;
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-ambient-'));
  const passfile = join(dir, 'pgpass');
  await writeFile(passfile, `*:*:*:*:${AMBIENT}-pgpass\n`, { mode: 0o600 });
  setEnv({
    PGPASSWORD: AMBIENT,
    PGPASSFILE: passfile,
    HOME: dir,
    PGSERVICE: 'operator',
    PGUSER: 'operator',
    PGDATABASE: 'operator_db',
    PGHOST: '127.0.0.9',
    PGPORT: '1',
    PGOPTIONS: '-c search_path=operator',
    PGREPLICATION: 'database',
    PGAPPNAME: 'operator-app',
    PGSSLNEGOTIATION: 'direct',
    PGCLIENT_ENCODING: 'LATIN1',
    MYSQL_PWD: AMBIENT,
    MYSQL_HOST: '127.0.0.9',
    NATS_USER: 'operator',
    NATS_PASSWORD: AMBIENT,
    NATS_TOKEN: AMBIENT,
    NATS_CREDS: join(dir, 'operator.creds'),
    REDISCLI_AUTH: AMBIENT,
  });
  await writeFile(join(dir, '.pgpass'), `*:*:*:*:${AMBIENT}-home\n`, { mode: 0o600 });
});

afterAll(async () => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await rm(dir, { recursive: true, force: true });
});

const step = (steps: TestStep[], name: string) => steps.find((s) => s.name === name);

describe('source connections never use the worker’s own credentials', () => {
  describe('PostgreSQL', () => {
    let peer: RecordingPeer<PgLogin>;
    beforeAll(async () => {
      peer = await startRecordingPostgres();
    });
    afterAll(() => peer.close());

    it('a source without a password sends none: not PGPASSWORD, not a .pgpass line (row 3)', async () => {
      const connector = new DatabaseConnector();
      const url = `postgres://victim@127.0.0.1:${peer.port}/db?sslmode=disable`;
      const steps = await connector.test(dbSource(url, { table: 't' }), dbContext());
      const auth = step(steps, 'authenticate');
      expect(auth?.status).toBe('failed');
      expect(auth?.code).toBe('auth');
      expect(auth?.message).toMatch(/asks for a password and the connection string has none/);
      const login = peer.seen.at(-1)!;
      expect(login.password).toBeUndefined();
      expect(JSON.stringify(peer.seen)).not.toContain(AMBIENT);
      // Only what the connection string says reaches the startup message: no PGOPTIONS, PGREPLICATION.
      expect(login.startup).toEqual({
        user: 'victim',
        database: 'db',
        application_name: 'sluice',
        client_encoding: 'UTF8',
      });
    });

    it('sync and describe send no ambient password either', async () => {
      const connector = new DatabaseConnector();
      const source = dbSource(`postgres://victim@127.0.0.1:${peer.port}/db?sslmode=disable`, { table: 't' });
      await expect(connector.describe(source, dbContext())).rejects.toMatchObject({ code: 'auth' });
      const it = connector.sync(source, undefined, dbContext())[Symbol.asyncIterator]();
      await expect(it.next()).rejects.toMatchObject({ code: 'auth' });
      expect(peer.seen.every((l) => l.password === undefined)).toBe(true);
      expect(JSON.stringify(peer.seen)).not.toContain(AMBIENT);
    });

    it('a source with a password sends exactly that one (the recorder works)', async () => {
      const connector = new DatabaseConnector();
      const url = `postgres://victim:source-pw@127.0.0.1:${peer.port}/db?sslmode=disable`;
      const steps = await connector.test(dbSource(url, { table: 't' }), dbContext());
      expect(step(steps, 'authenticate')?.code).toBe('auth');
      expect(peer.seen.at(-1)?.password).toBe('source-pw');
    });
  });

  describe('MySQL', () => {
    let peer: RecordingPeer<MysqlLogin>;
    beforeAll(async () => {
      peer = await startRecordingMysql();
    });
    afterAll(() => peer.close());

    it('a source without a password sends an empty auth response (MYSQL_PWD is not read)', async () => {
      const connector = new DatabaseConnector();
      const url = `mysql://victim@127.0.0.1:${peer.port}/db?ssl-mode=DISABLED`;
      const steps = await connector.test(dbSource(url, { table: 't' }), dbContext());
      expect(step(steps, 'authenticate')?.code).toBe('auth');
      expect(peer.seen).toEqual([{ user: 'victim', authLength: 0 }]);
    });

    it('a source with a password sends its scramble (the recorder works)', async () => {
      const connector = new DatabaseConnector();
      const url = `mysql://victim:pw@127.0.0.1:${peer.port}/db?ssl-mode=DISABLED`;
      await connector.test(dbSource(url, { table: 't' }), dbContext());
      expect(peer.seen.at(-1)).toEqual({ user: 'victim', authLength: 20 });
    });
  });

  const streamSource = (connection_string: string): ConnectorSource => ({
    id: '00000000-0000-4000-8000-000000000001',
    name: 'stream under test',
    source_type: 'stream',
    connection_string,
    metadata: { stream: 'orders' },
    schema_definition: null,
  });

  it('NATS: CONNECT carries no user, password, token or credentials from NATS_* variables', async () => {
    const peer = await startRecordingNats();
    try {
      const steps = await new StreamConnector().test(
        streamSource(`nats://127.0.0.1:${peer.port}`),
        dbContext(),
      );
      expect(step(steps, 'authenticate')?.status).toBe('failed');
      expect(peer.seen.length).toBeGreaterThan(0);
      for (const connect of peer.seen) {
        for (const field of ['user', 'pass', 'auth_token', 'jwt', 'nkey', 'sig'])
          expect(connect[field], field).toBeUndefined();
      }
      expect(JSON.stringify(peer.seen)).not.toContain(AMBIENT);
    } finally {
      await peer.close();
    }
  });

  it('Redis: no AUTH is sent without a password in the connection string (REDISCLI_AUTH is not read)', async () => {
    const peer = await startRecordingRedis();
    try {
      const steps = await new StreamConnector().test(
        streamSource(`redis://127.0.0.1:${peer.port}/0`),
        dbContext(),
      );
      expect(step(steps, 'authenticate')?.code).toBe('auth');
      const sent = peer.seen.join('');
      expect(sent).toMatch(/PING/i);
      expect(sent).not.toMatch(/AUTH/i);
      expect(sent).not.toContain(AMBIENT);
    } finally {
      await peer.close();
    }
  });
});
