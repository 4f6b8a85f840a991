import { connect as netConnect } from 'node:net';
import mysql, { type Connection, type FieldPacket, type SslOptions, type TypeCast } from 'mysql2';
import { mysqlColumn, type ColumnInfo } from './column-types';
import type { ConnectWatch } from './connect-watch';
import type { DatabaseSession, SessionLimits } from './database-session';
import type { DatabaseUrl } from './database-url';
import { Deadline } from '../kit/deadline';
import type { Row } from './json-row';
import { mysqlDialect } from './sql-dialect';

/**
 * Date/time values as ISO-8601 text: mysql2's Dates would be in the worker's zone and lose
 * microseconds. Sessions run with time_zone +00:00, so TIMESTAMP (an instant) ends in Z; DATETIME
 * has no zone and gets none.
 */
const typeCast: TypeCast = (field, next) => {
  switch (field.type) {
    case 'TIMESTAMP':
    case 'TIMESTAMP2': {
      const text = field.string();
      return text === null ? null : /^0000/.test(text) ? text : `${text.replace(' ', 'T')}Z`;
    }
    case 'DATETIME':
    case 'DATETIME2': {
      const text = field.string();
      return text === null ? null : text.replace(' ', 'T');
    }
    case 'DATE':
    case 'NEWDATE':
    case 'TIME':
    case 'TIME2':
      return field.string();
    default:
      return next();
  }
};

/** Opens a MySQL/MariaDB session on the already-resolved `address`; TLS still names the original host. */
export async function openMysql(
  url: DatabaseUrl,
  address: string,
  watch: ConnectWatch,
  limits: SessionLimits,
): Promise<DatabaseSession> {
  const attempt = async (ssl: SslOptions | undefined): Promise<MysqlSession> => {
    const connection = mysql.createConnection({
      // `host` only names the server for TLS; the socket goes to the address that was checked.
      host: url.host,
      port: url.port,
      stream: () => {
        const socket = netConnect({ host: address, port: url.port });
        socket.setNoDelay(true);
        return watch.attach(socket);
      },
      user: url.user,
      password: url.password,
      database: url.database,
      ...(ssl && { ssl }),
      ...(url.charset && { charset: url.charset }),
      // The watch bounds each phase; this only backs it up.
      connectTimeout: limits.readTimeoutMs * 3,
      supportBigNumbers: true,
      bigNumberStrings: false,
      typeCast,
      multipleStatements: false,
      // A server may answer any query with "send me a local file": never.
      flags: ['-LOCAL_FILES'],
    });
    connection.on('error', () => undefined);
    await watch.run(
      () =>
        new Promise<void>((resolve, reject) => connection.connect((err) => (err ? reject(err) : resolve()))),
      () => connection.destroy(),
    );
    const session = new MysqlSession(connection, ssl !== undefined, watch, limits);
    // Still under the watch: a server that logs in and then stops answering is cut at the bound.
    try {
      await watch.run(
        () => session.exec("SET time_zone = '+00:00'"),
        () => undefined,
      );
    } catch (err) {
      connection.destroy();
      throw err;
    }
    return session;
  };
  if (url.tls === 'disable') return attempt(undefined);
  try {
    return await attempt(sslOptions(url));
  } catch (err) {
    // PREFERRED: TLS when the server offers it, plain TCP when it does not.
    if (url.tls === 'prefer' && (err as { code?: unknown }).code === 'HANDSHAKE_NO_SSL_SUPPORT')
      return attempt(undefined);
    throw err;
  }
}

function sslOptions(url: DatabaseUrl): SslOptions {
  switch (url.tls) {
    case 'verify-full':
      return { rejectUnauthorized: true, verifyIdentity: true };
    case 'verify-ca':
      return { rejectUnauthorized: true, verifyIdentity: false };
    default:
      return { rejectUnauthorized: false };
  }
}

class MysqlSession implements DatabaseSession {
  private broken = false;

  constructor(
    private readonly connection: Connection,
    readonly encrypted: boolean,
    private readonly watch: ConnectWatch,
    private readonly limits: SessionLimits,
  ) {}

  async sample(sql: string): Promise<{ columns: ColumnInfo[]; rows: Row[] }> {
    const deadline = this.deadline('read', new AbortController().signal);
    deadline.arm();
    try {
      return await deadline.race(
        (async () => {
          await this.exec(mysqlDialect.beginReadOnly);
          const { rows, fields } = await this.select(sql);
          await this.exec('COMMIT');
          return { rows, columns: fields.map((f) => mysqlColumn(f.name, typeName(f), binaryCharset(f))) };
        })(),
      );
    } catch (err) {
      this.broken = true;
      throw err;
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
      await deadline.race(this.exec(mysqlDialect.beginReadOnly));
      // The stream pauses the socket when its buffer is full: rows arrive as fast as they are taken.
      const rows = this.connection.query({ sql, values: params }).stream({ highWaterMark: batchSize });
      const iterator = rows[Symbol.asyncIterator]() as AsyncIterator<Row>;
      let batch: Row[] = [];
      for (;;) {
        deadline.arm();
        const next = await deadline.race(iterator.next());
        if (next.done) break;
        batch.push(next.value);
        if (batch.length >= batchSize) {
          deadline.pause();
          yield batch;
          batch = [];
        }
      }
      deadline.pause();
      if (batch.length) yield batch;
      deadline.arm();
      await deadline.race(this.exec('COMMIT'));
      finished = true;
    } finally {
      deadline.dispose();
      if (!finished) this.broken = true;
    }
  }

  async close(): Promise<void> {
    if (this.broken) {
      this.connection.destroy();
      return;
    }
    const deadline = this.deadline('close', new AbortController().signal);
    deadline.arm();
    try {
      await deadline.race(new Promise<void>((resolve) => this.connection.end(() => resolve())));
    } catch {
      // Best effort: the socket is cut either way.
    } finally {
      deadline.dispose();
    }
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.connection.query(sql, (err) => (err ? reject(err) : resolve())),
    );
  }

  private select(sql: string): Promise<{ rows: Row[]; fields: FieldPacket[] }> {
    return new Promise((resolve, reject) =>
      this.connection.query(sql, (err, rows, fields) =>
        err ? reject(err) : resolve({ rows: rows as Row[], fields: fields ?? [] }),
      ),
    );
  }

  private deadline(what: string, signal: AbortSignal): Deadline {
    return new Deadline(
      this.limits.readTimeoutMs,
      what,
      () => {
        this.broken = true;
        this.watch.currentSocket?.destroy();
        this.connection.destroy();
      },
      { signal, peer: 'the database' },
    );
  }
}

/** Charset 63 is `binary`: BLOB/BINARY values (Buffers) rather than TEXT. */
function binaryCharset(field: FieldPacket): boolean {
  return (field.characterSet ?? field.charsetNr) === 63;
}

function typeName(field: FieldPacket): string {
  const code = field.columnType ?? field.type;
  const types = mysql.Types as unknown as Record<number, string>;
  return (code !== undefined && types[code]) || 'unknown';
}
