import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectInvalid, startTestApi, type TestApi } from '../helpers/api-harness';

/**
 * Connection strings are checked per type at create and update: unknown schemes and dangerous
 * parameters are a 400 at /connection_string that names the parameter; nothing is connected to.
 */
const REFUSED: [type: string, value: string, named: string][] = [
  ['database', 'postgres://u:p@db.example/x?host=/var/run/postgresql', '"host"'],
  ['database', 'postgres://u:p@db.example/x?sslrootcert=/etc/passwd', '"sslrootcert"'],
  ['database', 'postgres://u:p@db.example/x?sslkey=/etc/ssl/private/k.pem', '"sslkey"'],
  ['database', 'postgres://u:p@db.example/x?sslcert=/tmp/c.pem', '"sslcert"'],
  ['database', 'postgres://u:p@db.example/x?SSLROOTCERT=/etc/passwd', '"SSLROOTCERT"'],
  ['database', 'postgres://u:p@db.example/x?passfile=/etc/shadow', '"passfile"'],
  ['database', 'postgres://u:p@db.example/x?hostaddr=169.254.169.254', '"hostaddr"'],
  ['database', 'postgres://u:p@db.example/x?options=-c%20log_statement%3Dall', '"options"'],
  ['database', 'postgres://u:p@db.example/x?sslmode=no-verify', '"sslmode"'],
  ['database', 'postgresql://u:p@db1.example,db2.example/x', 'one host'],
  ['database', 'mysql://u:p@db.example/x?socketPath=/tmp/mysql.sock', '"socketPath"'],
  ['database', 'mysql://u:p@db.example/x?localInfile=true', '"localInfile"'],
  ['database', 'mysql://u:p@db.example/x?multipleStatements=true', '"multipleStatements"'],
  ['database', 'sqlite:///etc/passwd', 'postgres://'],
  ['database', 'file:///etc/passwd', 'postgres://'],
  ['api', 'file:///etc/passwd', 'http://'],
  ['api', 'gopher://api.example/x', 'http://'],
  ['api', 'http+unix://%2Fvar%2Frun%2Fdocker.sock/x', 'http://'],
  ['file', 'ftp://files.example/x.csv', 'file:///'],
  ['file', 'file://fileserver/share/x.csv', 'local path'],
  ['file', '/etc/passwd', 'file:///'],
  // Below FILE_ROOTS as written ('..' resolved), checked without looking at the path on disk.
  ['file', 'file:///etc/passwd', 'FILE_ROOTS'],
  ['file', `file://${tmpdir()}/../etc/passwd`, 'FILE_ROOTS'],
  ['stream', 'nats://nats.example?creds=/etc/passwd', '"creds"'],
  ['stream', 'redis://cache.example/0?sentinel=evil', '"sentinel"'],
  ['stream', 'nats://nats.example,10.0.0.1:4222', 'one host'],
  ['stream', 'redis+unix:///tmp/redis.sock', 'redis://'],
  ['stream', 'amqp://mq.example', 'redis://'],
  ['webhook', 'short', 'at least'],
];

describe('connection-string hardening', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ env: { FILE_ROOTS: tmpdir() } });
  });
  afterAll(() => api?.close());

  it('refuses unknown schemes and dangerous parameters at create, naming them', async () => {
    for (const [type, value, named] of REFUSED) {
      const res = await api.post('/raw-data-sources', {
        name: `cs-${type}`,
        source_type: type,
        connection_string: value,
      });
      expectInvalid(res, '/connection_string');
      expect(res.body.errors[0].message, `${type} ${value}`).toContain(named);
      // The refused string is not echoed (it may hold a password).
      expect(res.text).not.toContain(':p@');
    }
    expect(Number((await api.knex('raw_data_sources').count({ n: '*' }))[0]?.n)).toBe(0);
  });

  it('refuses them at update too', async () => {
    const created = await api.post('/raw-data-sources', {
      name: 'cs-update',
      source_type: 'database',
      // Inactive: no schedule, so the worker a later test starts never resolves db.example.
      is_active: false,
      connection_string: 'postgres://u:p@db.example:5432/x?sslmode=require',
    });
    expect(created.status, created.text).toBe(201);
    const res = await api.put(`/raw-data-sources/${created.body.id}`, {
      connection_string: 'postgres://u:p@db.example/x?host=/tmp',
    });
    expectInvalid(res, '/connection_string', '"host"');
  });

  it('answers a file outside FILE_ROOTS the same whether or not it exists (no probing)', async () => {
    const answers: string[] = [];
    for (const path of ['/etc/passwd', '/etc/no-such-file-h1']) {
      const body = { name: 'probe', source_type: 'file', connection_string: `file://${path}` };
      for (const res of [
        await api.post('/raw-data-sources', body),
        await api.post('/raw-data-sources/test', body),
      ]) {
        expectInvalid(res, '/connection_string', 'FILE_ROOTS');
        answers.push(JSON.stringify(res.body).replace(path, '<path>'));
      }
    }
    expect(new Set(answers).size).toBe(1);
  });
});
