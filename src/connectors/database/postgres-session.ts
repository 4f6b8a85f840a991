import { Socket } from 'node:net';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { pgColumn, type ColumnInfo } from './column-types';
import type { ConnectWatch } from './connect-watch';
import type { DatabaseSession, SessionLimits } from './database-session';
import type { DatabaseUrl } from './database-url';
import { guardPgStream } from './pg-message-guard';
import { Deadline } from '../kit/deadline';
import type { Row } from './json-row';
import { postgresDialect } from './sql-dialect';

const { types: pgTypes } = pg;

/**
 * Text forms where the default parsers lose information: date/time values become Dates in the
 * worker's local zone with millisecond precision; kept as ISO-8601 text instead (sessions run in UTC,
 * so timestamptz ends in Z). int8 is a number while that is exact.
 */
const PARSERS: Record<number, (text: string) => unknown> = {
  20: (text) => (Number.isSafeInteger(Number(text)) ? Number(text) : text),
  1082: (text) => text,
  1083: (text) => text,
  1114: (text) => text.replace(' ', 'T'),
  1184: timestamptzText,
  1186: (text) => text,
  1266: (text) => text,
};

/**
 * timestamptz text ('2026-12-07 09:00:00.5+00', '…-05:30') as ISO-8601: 'T' for the space, the
 * offset's minutes written out, UTC as 'Z'. By hand, not three regex replaces: it runs for every
 * value of every such column, and the regexes were the largest single cost of reading a row.
 */
function timestamptzText(text: string): string {
  const t = text.replace(' ', 'T');
  const n = t.length;
  // A bare hour offset ends the text: sign at n - 3 ('+00', '-05').
  const sign = t.charCodeAt(n - 3);
  if ((sign === 43 || sign === 45) && isDigit(t.charCodeAt(n - 2)) && isDigit(t.charCodeAt(n - 1)))
    return sign === 43 && t.endsWith('00') ? `${t.slice(0, n - 3)}Z` : `${t}:00`;
  return t.endsWith('+00:00') ? `${t.slice(0, n - 6)}Z` : t;
}

const isDigit = (c: number) => c >= 48 && c <= 57;

const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    (format ?? 'text') === 'text' && PARSERS[oid]
      ? PARSERS[oid]
      : pgTypes.getTypeParser(oid, format ?? 'text')) as typeof pgTypes.getTypeParser,
};

/** Opens a PostgreSQL session on the already-resolved `address`; TLS still names the original host. */
export async function openPostgres(
  url: DatabaseUrl,
  address: string,
  watch: ConnectWatch,
  limits: SessionLimits,
): Promise<DatabaseSession> {
  const attempt = async (ssl: false | ConnectionOptions): Promise<PostgresSession> => {
    const client = new pg.Client({
      host: address,
      port: url.port,
      user: url.user,
      // A function, never the string: pg takes PGPASSWORD for an empty password and .pgpass
      // (PGPASSFILE) for a missing one, which would send the worker's own password to any server.
      password: () => sourcePassword(url),
      database: url.database,
      ssl,
      // Set, so that PGSSLNEGOTIATION and PGCLIENT_ENCODING cannot change how the source is spoken to.
      sslnegotiation: 'postgres',
      client_encoding: 'UTF8',
      application_name: url.applicationName ?? 'sluice',
      stream: () => watch.attach(new Socket()),
      keepAlive: true,
      types: TYPES,
    });
    withoutAmbientSettings(client);
    guardParser(client);
    // Socket errors after login surface through the next query; unobserved they would crash the worker.
    client.on('error', () => undefined);
    await watch.run(
      () => client.connect(),
      () => void client.end().catch(() => undefined),
    );
    return new PostgresSession(client, ssl !== false, watch, limits);
  };
  if (url.tls === 'disable') return attempt(false);
  try {
    return await attempt(tlsOptions(url));
  } catch (err) {
    // libpq's `prefer`: use TLS when the server offers it, plain TCP when it says it does not.
    if (url.tls === 'prefer' && /does not support SSL/i.test(String((err as Error).message)))
      return attempt(false);
    throw err;
  }
}

/** The server asked for a password and the connection string has none (libpq's "no password supplied"). */
export class NoPasswordError extends Error {
  // SQLSTATE invalid_password: classified as auth, like a rejected one.
  readonly code = '28P01';
  constructor() {
    super('the server asks for a password and the connection string has none');
    this.name = 'NoPasswordError';
  }
}

/** The password the connection string gives; nothing else (no environment, no password file). */
function sourcePassword(url: DatabaseUrl): string {
  if (!url.password) throw new NoPasswordError();
  return url.password;
}

/**
 * pg fills every parameter a config leaves falsy from the worker's environment (PGOPTIONS,
 * PGREPLICATION...). Those are the operator's settings for Sluice's own database, never a source's:
 * the ones that reach the startup message are cleared after construction.
 */
function withoutAmbientSettings(client: pg.Client): void {
  const internal = client as unknown as {
    replication?: unknown;
    connectionParameters: { options?: unknown; replication?: unknown };
  };
  internal.connectionParameters.options = undefined;
  internal.connectionParameters.replication = undefined;
  internal.replication = undefined;
}

/** Every stream pg reads passes the message guard first (see guardPgStream). */
function guardParser(client: pg.Client): void {
  const connection = (client as unknown as { connection: { attachListeners(stream: Duplex): void } })
    .connection;
  const attach = connection.attachListeners.bind(connection);
  connection.attachListeners = (stream) => attach(guardPgStream(stream));
}

function tlsOptions(url: DatabaseUrl): ConnectionOptions {
  // SNI and the certificate check use the name that was written, not the address it resolved to.
  const name = isIP(url.host) ? {} : { servername: url.host };
  switch (url.tls) {
    case 'verify-full':
      return { rejectUnauthorized: true, ...name };
    case 'verify-ca':
      return { rejectUnauthorized: true, checkServerIdentity: () => undefined, ...name };
    default:
      return { rejectUnauthorized: false, ...name };
  }
}

class PostgresSession implements DatabaseSession {
  private broken = false;
  private readonly typeNames = new Map<number, string>();

  constructor(
    private readonly client: pg.Client,
    readonly encrypted: boolean,
    private readonly watch: ConnectWatch,
    private readonly limits: SessionLimits,
  ) {}

  async sample(sql: string): Promise<{ columns: ColumnInfo[]; rows: Row[] }> {
    const deadline = this.deadline('read', new AbortController().signal);
    try {
      deadline.arm();
      return await deadline.race(
        (async () => {
          await this.begin();
          const cursor = this.client.query(new Cursor<Row>(sql, [], { types: TYPES }));
          const { rows, fields } = await read(cursor, 10_000);
          await cursor.close();
          const columns = await this.columns(fields);
          await this.client.query('COMMIT');
          return { columns, rows };
        })(),
      );
    } finally {
      deadline.dispose();
    }
  }

  async *stream(
    sql: string,
    params: string[],
    batchSize: number,
    signal: AbortSignal,
  ): AsyncGenerator<Row[]> {
    const deadline = this.deadline('read rows', signal);
    let finished = false;
    try {
      deadline.arm();
      await deadline.race(this.begin());
      // A portal read n rows at a time (extended protocol: also one statement only).
      const cursor = this.client.query(new Cursor<Row>(sql, params, { types: TYPES }));
      for (;;) {
        deadline.arm();
        const { rows } = await deadline.race(read(cursor, batchSize));
        deadline.pause();
        if (rows.length) yield rows;
        if (rows.length < batchSize) break;
      }
      deadline.arm();
      await deadline.race(cursor.close().then(() => this.client.query('COMMIT')));
      finished = true;
    } finally {
      deadline.dispose();
      // Stopped early (consumer returned, error, abort): the transaction is mid-read; drop the connection.
      if (!finished) this.broken = true;
    }
  }

  async close(): Promise<void> {
    if (this.broken) {
      this.watch.currentSocket?.destroy();
      return;
    }
    const deadline = this.deadline('close', new AbortController().signal);
    deadline.arm();
    try {
      await deadline.race(this.client.end());
    } catch {
      // Closing is best effort: the socket is gone either way.
    } finally {
      deadline.dispose();
    }
  }

  private async begin(): Promise<void> {
    await this.client.query(postgresDialect.beginReadOnly);
    // LOCAL: only this transaction (also right behind a transaction-mode pooler).
    await this.client.query("SET LOCAL TIME ZONE 'UTC'");
  }

  private deadline(what: string, signal: AbortSignal): Deadline {
    return new Deadline(
      this.limits.readTimeoutMs,
      what,
      () => {
        this.broken = true;
        this.watch.currentSocket?.destroy();
      },
      { signal, peer: 'the database' },
    );
  }

  /** Column names with their type names (format_type), looked up once per type. */
  private async columns(fields: pg.FieldDef[]): Promise<ColumnInfo[]> {
    const missing = [...new Set(fields.map((f) => f.dataTypeID))].filter((oid) => !this.typeNames.has(oid));
    if (missing.length) {
      const { rows } = await this.client.query<{ oid: number; name: string }>(
        'SELECT oid::int AS oid, format_type(oid, NULL) AS name FROM pg_type WHERE oid = ANY($1::oid[])',
        [missing],
      );
      for (const r of rows) this.typeNames.set(r.oid, r.name);
    }
    return fields.map((f) => pgColumn(f.name, this.typeNames.get(f.dataTypeID) ?? 'unknown'));
  }
}

function read(cursor: Cursor<Row>, n: number): Promise<{ rows: Row[]; fields: pg.FieldDef[] }> {
  return new Promise((resolve, reject) => {
    cursor.read(n, (err, rows, result) => {
      if (err) reject(err);
      else resolve({ rows, fields: result?.fields ?? [] });
    });
  });
}
