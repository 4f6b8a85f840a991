import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { PermanentSyncError } from '../../src/connectors/connector';
import { DatabaseConnector } from '../../src/connectors/database/database.connector';
import { readDatabaseSettings } from '../../src/connectors/database/database-settings';
import { parseDatabaseUrl } from '../../src/connectors/database/database-url';
import { toJsonValue } from '../../src/connectors/database/json-row';
import { dbContext, dbSource } from './support/database-peers';

const connector = new DatabaseConnector();
const check = (value: string) => connector.checkConnectionString(value);

describe('database connection strings', () => {
  it('accepts the four schemes and reads user, password, host, port and database', () => {
    expect(parseDatabaseUrl('postgres://loader:s%40cret@db.example.com:6543/warehouse')).toMatchObject({
      dialect: 'postgres',
      user: 'loader',
      password: 's@cret',
      host: 'db.example.com',
      port: 6543,
      database: 'warehouse',
      tls: 'prefer',
    });
    expect(parseDatabaseUrl('postgresql://u@h/d')).toMatchObject({ dialect: 'postgres', port: 5432 });
    expect(parseDatabaseUrl('mysql://u:p@h/d')).toMatchObject({ dialect: 'mysql', port: 3306 });
    expect(parseDatabaseUrl('mariadb://u:p@[::1]:3307/d')).toMatchObject({
      dialect: 'mysql',
      host: '::1',
      port: 3307,
    });
    for (const ok of [
      'postgres://u:p@h/d?sslmode=verify-full&application_name=etl&connect_timeout=5',
      'mysql://u:p@h/d?ssl-mode=VERIFY_IDENTITY&charset=utf8mb4&connectTimeout=3000',
      'mysql://u:p@h/d?ssl=true',
    ])
      expect(check(ok), ok).toBeUndefined();
    expect(parseDatabaseUrl('mysql://u:p@h/d?ssl-mode=REQUIRED').tls).toBe('require');
    expect(parseDatabaseUrl('postgres://u@h/d?connect_timeout=2').connectTimeoutMs).toBe(2000);
  });

  it('refuses parameters that could redirect the connection or read local files, naming them', () => {
    const refused: [string, string][] = [
      ['postgres://u:p@db.example.com/d?host=10.0.0.1', '"host"'],
      ['postgres://u:p@h/d?hostaddr=127.0.0.1', '"hostaddr"'],
      ['postgres://u:p@h/d?sslrootcert=/etc/passwd', '"sslrootcert"'],
      ['postgres://u:p@h/d?sslmode=require&sslkey=/root/.ssh/id_rsa', '"sslkey"'],
      ['postgres://u:p@h/d?sslcert=/etc/ssl/private/x.pem', '"sslcert"'],
      ['postgres://u:p@h/d?passfile=/root/.pgpass', '"passfile"'],
      ['postgres://u:p@h/d?options=-c%20default_transaction_read_only%3Doff', '"options"'],
      ['mysql://u:p@h/d?socketPath=/var/run/mysqld/mysqld.sock', '"socketPath"'],
      ['mysql://u:p@h/d?socket=/tmp/mysql.sock', '"socket"'],
      ['mysql://u:p@h/d?sslmode=require', '"sslmode"'],
      ['mysql://u:p@h/d?multipleStatements=true', '"multipleStatements"'],
      ['mysql://u:p@h/d?localInfile=true', '"localInfile"'],
    ];
    for (const [value, name] of refused) {
      const problem = check(value);
      expect(problem, value).toContain(name);
      expect(problem).toContain('not allowed');
    }
  });

  it('refuses unknown schemes, host lists, socket hosts, bad values, and never echoes the password', () => {
    expect(check('sqlserver://u:p@h/d')).toContain('postgres://');
    expect(check('file:///etc/passwd')).toContain('postgres://');
    expect(check('postgres://u:p@h1,h2/d')).toContain('host');
    expect(check('postgres://u:p@%2Fvar%2Frun%2Fpostgresql/d')).toContain('host');
    expect(check('postgres://u:p@h')).toContain('database');
    expect(check('postgres://:p@h/d')).toContain('user');
    expect(check('postgres://u:p@h/d?sslmode=allow')).toContain('sslmode');
    expect(check('postgres://u:p@h/d?sslmode=disable&sslmode=require')).toContain('more than once');
    expect(check('mysql://u:p@h/d?ssl-mode=sometimes')).toContain('ssl-mode');
    expect(check('mysql://u:p@h/d?connectTimeout=soon')).toContain('connectTimeout');
    expect(check('postgres://u:p@h:0/d')).toContain('port');
    const secret = 'Sup3r%ZZsecret';
    const problem = check(`postgres://u:${secret}@h/d`);
    expect(problem).toContain('percent-encoded password');
    expect(problem).not.toContain('Sup3r');
  });

  it('a test with a refused connection string fails at configuration without connecting', async () => {
    const steps = await connector.test(
      dbSource('postgres://u:p@127.0.0.1:5432/d?sslrootcert=/etc/passwd', { table: 'orders' }),
      dbContext(),
    );
    expect(steps[0]).toMatchObject({ name: 'configuration', status: 'failed', code: 'invalid_config' });
    expect(steps[0]!.message).toContain('"sslrootcert"');
    expect(steps.slice(1).map((s) => s.status)).toEqual([
      'skipped',
      'skipped',
      'skipped',
      'skipped',
      'skipped',
    ]);
  });
});

describe('database metadata', () => {
  const ajv = new Ajv({ strict: false });
  const valid = ajv.compile(connector.metadataSchema);

  it('takes a table or a query, and an optional cursor_column', () => {
    expect(readDatabaseSettings({ table: 'public.orders', cursor_column: 'id' })).toEqual({
      table: 'public.orders',
      cursorColumn: 'id',
    });
    expect(readDatabaseSettings({ query: '  select * from t;  ' })).toEqual({ query: 'select * from t' });
    for (const ok of [
      { table: 'orders' },
      { table: 's.t$1', cursor_column: '_x' },
      { query: 'WITH a AS (SELECT 1) SELECT * FROM a;' },
    ])
      expect(valid(ok), JSON.stringify(ok)).toBe(true);
  });

  it('refuses unsafe names, several statements, non-SELECT queries and ambiguous settings', () => {
    const bad: Record<string, unknown>[] = [
      {},
      { table: 'orders', query: 'SELECT 1' },
      { table: 'orders; DROP TABLE x' },
      { table: 'a.b.c' },
      { table: '"orders"' },
      { table: 'orders', cursor_column: 'id desc' },
      { query: 'DELETE FROM orders' },
      { query: 'SELECT 1; SELECT 2' },
      { query: 'select 1; drop table orders;' },
    ];
    for (const metadata of bad) {
      expect(() => readDatabaseSettings(metadata), JSON.stringify(metadata)).toThrow(PermanentSyncError);
      expect(valid(metadata), JSON.stringify(metadata)).toBe(false);
    }
    expect(() => readDatabaseSettings({ query: "SELECT 1 INTO OUTFILE '/tmp/x'" })).toThrow(/OUTFILE/);
  });

  it('the single-statement check stays linear on long runs of whitespace (20,000 spaces)', () => {
    // `^[^;]*;?\s*$` took 0.39 s here: a backtracking engine retried every split of the spaces.
    // Within maxLength (20,000), so the pattern is what decides.
    const spaces = ' '.repeat(19_980);
    const half = ' '.repeat(9_980);
    const hostile = [`SELECT 1${spaces};x`, `SELECT 1;${spaces}x`, `SELECT 1${half};${half};`];
    const started = performance.now();
    for (const query of hostile) {
      // The plain (backtracking) engine, as any client reading the published schema would use it.
      expect(valid({ query }), query.slice(0, 12)).toBe(false);
      expect(() => readDatabaseSettings({ query })).toThrow(PermanentSyncError);
    }
    expect(valid({ query: `SELECT 1${half};${half}` })).toBe(true);
    expect(valid({ query: `SELECT 1${spaces}` })).toBe(true);
    expect(performance.now() - started).toBeLessThan(50);
  });
});

describe('driver values', () => {
  it('converts driver values to plain JSON', () => {
    expect(toJsonValue(new Date('2024-01-02T03:04:05.678Z'))).toBe('2024-01-02T03:04:05.678Z');
    expect(toJsonValue(2n ** 60n)).toBe('1152921504606846976');
    expect(toJsonValue(42n)).toBe(42);
    expect(toJsonValue(Buffer.from([0, 255]))).toBe('AP8=');
    expect(toJsonValue(Number.POSITIVE_INFINITY)).toBe('Infinity');
    expect(toJsonValue({ a: [new Date(0), null] })).toEqual({ a: ['1970-01-01T00:00:00.000Z', null] });
  });
});
