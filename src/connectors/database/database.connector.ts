import type {
  Connector,
  ConnectorContext,
  ConnectorSource,
  Provenance,
  SyncBatch,
  TestStep,
} from '../connector';
import { PermanentSyncError } from '../connector';
import { classifyError, SourceFailure, toConnectorError } from '../kit/classify-error';
import { scrubSecret } from '../kit/secret-scrubber';
import { StepRunner, type StepOutcome } from '../kit/step-runner';
import { UNANSWERED, type ReleasePending } from '../outbound';
import { columnsSchema, type ColumnInfo } from './column-types';
import { ConnectWatch, SessionOpenError } from './connect-watch';
import { approxJsonBytes, DEFAULT_BYTE_LIMITS, splitByBytes, type ByteLimits } from '../kit/byte-limits';
import type { DatabaseSession } from './database-session';
import { databaseMetadataSchema, readDatabaseSettings, type DatabaseSettings } from './database-settings';
import {
  databaseUrlProblem,
  InvalidDatabaseUrlError,
  parseDatabaseUrl,
  type DatabaseUrl,
} from './database-url';
import { toRecord, type Row } from './json-row';
import { cursorKind, cursorOrder, effectiveLookback } from './cursor-order';
import { CursorWindow, DEFAULT_WINDOW_KEYS, fingerprintText, type WindowState } from '../kit/cursor-window';
import { CURSOR_KEY, fullSql, incrementalSql, sampleSql } from './read-plan';
import { dialectFor } from './sql-dialect';
import { describeSource, dialectLabel, failure, hostPort, truncate, what } from './step-messages';

/**
 * State of an incremental sync. `cursor` is the largest `cursor_column` value landed, in the
 * database's own text form (exact: microseconds, big numbers). The next read is
 * `cursor_column >= from` and `seen` holds a fingerprint of every landed row at or above `from`, so
 * those rows are not landed again. Without `from` (states from before the window, or after a value
 * overflowed it) the next read is `cursor_column > cursor`.
 */
export interface DatabaseCursorState {
  cursor_column: string;
  cursor: string;
  from?: string;
  seen?: Array<[string, string[]]>;
}

export interface DatabaseConnectorOptions {
  /** Rows per landed batch (default 1000). */
  batchSize?: number;
  /** Batch bounds in bytes (config BATCH_MAX_BYTES). */
  limits?: ByteLimits;
  /** Most row fingerprints an incremental state keeps for its lookback window (default 10,000). */
  maxWindowKeys?: number;
}

const STEPS = ['configuration', 'resolve', 'connect', 'authenticate', 'read_sample', 'schema'];
const SAMPLE_ROWS = 5;

/**
 * PostgreSQL and MySQL/MariaDB sources: a table or one SELECT, read in a READ ONLY transaction and
 * streamed (a server-side portal for PostgreSQL, a paused socket for MySQL), never loaded whole.
 *
 * With `cursor_column` a sync reads `cursor_column >= from ORDER BY cursor_column`, where `from` is
 * the largest landed value minus `cursor_lookback` (see CursorWindow): rows sharing the last value
 * and rows committed late with an earlier value inside the lookback are read again, and the state's
 * fingerprints keep those landed already from landing twice. The state advances with each landed
 * batch, so a batch may end anywhere, even inside a run of equal values. Rows whose cursor is NULL
 * are never read. Without `cursor_column` every sync is a full refresh.
 */
export class DatabaseConnector implements Connector {
  readonly type = 'database';
  readonly metadataSchema = databaseMetadataSchema;
  private readonly batchSize: number;
  private readonly batchMaxBytes: number;
  private readonly maxWindowKeys: number;

  constructor(options: DatabaseConnectorOptions = {}) {
    this.batchMaxBytes = (options.limits ?? DEFAULT_BYTE_LIMITS).batchMaxBytes;
    this.batchSize = Math.max(1, options.batchSize ?? 1000);
    this.maxWindowKeys = Math.max(1, options.maxWindowKeys ?? DEFAULT_WINDOW_KEYS);
  }

  /** Without cursor_column every sync reads the whole table or query. */
  fullRefresh(metadata: Record<string, unknown> | null): boolean {
    return !metadata?.cursor_column;
  }

  checkConnectionString(value: string): string | undefined {
    return databaseUrlProblem(value);
  }

  async test(source: ConnectorSource, ctx: ConnectorContext): Promise<TestStep[]> {
    const steps = new StepRunner(ctx, STEPS);
    // The resolver, the session's watch and its reads bound themselves with messages that say which
    // phase hung; the runner's bound is a backstop behind them (opening may take two phases).
    const backstop = { timeoutMs: 3 * ctx.timeoutMs };
    const config = await steps.run('configuration', async () => {
      try {
        const url = parseDatabaseUrl(source.connection_string ?? '');
        // Short ones are masked only as whole tokens (hideSecrets), so every length can be hidden.
        if (url.password) steps.hide([url.password]);
        const settings = readDatabaseSettings(source.metadata);
        return { value: { url, settings }, message: describeSource(url, settings) };
      } catch (err) {
        const problem =
          err instanceof InvalidDatabaseUrlError
            ? `connection string ${err.message}`
            : (err as Error).message;
        throw new SourceFailure(problem, 'invalid_config');
      }
    });
    if (!config) return steps.finish();
    const { url, settings } = config;

    const address = await steps.run(
      'resolve',
      async () => {
        try {
          const { address } = await ctx.outbound.resolve(url.host, 'service', ctx.timeoutMs, url.port);
          const how = address === url.host ? 'is an address: no lookup needed' : `resolved to ${address}`;
          return { value: address, message: `${url.host} ${how}` };
        } catch (err) {
          throw stepFailure('resolve', err, url);
        }
      },
      backstop,
    );
    if (address === undefined) return steps.finish();

    // One handshake answers two steps: reaching the server (connect) and TLS + login (authenticate).
    let loginFailure: StepOutcome<undefined> | undefined;
    const opened = await steps.run(
      'connect',
      async () => {
        const started = performance.now();
        try {
          const { session, connectMs, authenticateMs } = await this.open(url, address, ctx);
          const message = `reached ${hostPort(address, url.port)}; the ${dialectLabel(url)} server answered`;
          return { value: { session, authenticateMs }, message, durationMs: connectMs };
        } catch (err) {
          if (!(err instanceof SessionOpenError && err.phase === 'authenticate'))
            throw stepFailure('connect', err, url, address, ctx.timeoutMs);
          const connectMs = err.connectMs ?? 0;
          const code = classifyError(err);
          loginFailure = {
            value: undefined,
            status: 'failed',
            code,
            message: failure('authenticate', code, url, err, address, ctx.timeoutMs),
            durationMs: performance.now() - started - connectMs,
          };
          const message = `reached ${hostPort(address, url.port)}; the server answered`;
          return { value: undefined, message, durationMs: connectMs };
        }
      },
      backstop,
    );
    const session = await steps.run('authenticate', async () => {
      if (loginFailure || !opened) return loginFailure ?? { value: undefined, message: '' };
      const tls = opened.session.encrypted ? 'over TLS' : 'without TLS (not encrypted)';
      return {
        value: opened.session,
        message: `logged in to database "${url.database}" ${tls}`,
        durationMs: opened.authenticateMs,
      };
    });
    if (!session) return steps.finish();

    try {
      const columns = await steps.run(
        'read_sample',
        async () => {
          try {
            const sample = await session.sample(sampleSql(settings, dialectFor(url.dialect), SAMPLE_ROWS));
            const rows = sample.rows.length;
            return {
              value: sample.columns,
              message: rows
                ? `read ${rows} row${rows === 1 ? '' : 's'} from ${what(settings)}`
                : `${what(settings)} has no rows yet`,
            };
          } catch (err) {
            throw stepFailure('read_sample', err, url, address, ctx.timeoutMs);
          }
        },
        backstop,
      );
      await steps.run('schema', async () => {
        const found = columns ?? [];
        const listed = found.map((c) => `${c.name} ${c.dbType}`).join(', ');
        const summary = `${found.length} column${found.length === 1 ? '' : 's'}: ${truncate(listed, 400)}`;
        const cursor = settings.cursorColumn && findColumn(found, settings.cursorColumn, url);
        if (settings.cursorColumn && !cursor)
          throw new SourceFailure(
            `cursor_column "${settings.cursorColumn}" is not a column of ${what(settings)} (${summary})`,
            'invalid_config',
          );
        return {
          value: true,
          message: cursor
            ? `${summary}; incremental by ${cursor.name} (${cursor.dbType})`
            : `${summary}; full refresh each sync`,
        };
      });
      return steps.finish();
    } finally {
      await session.close();
    }
  }

  async *sync(source: ConnectorSource, state: unknown, ctx: ConnectorContext): AsyncIterable<SyncBatch> {
    const { url, settings } = configure(source);
    const address = await ctx.outbound
      .resolve(url.host, 'service', ctx.timeoutMs, url.port)
      .then((t) => t.address)
      .catch((err: unknown) => {
        throw toConnectorError(err, 'resolve');
      });
    const { session } = await this.open(url, address, ctx).catch((err: unknown) => {
      throw toConnectorError(scrubError(err, url.password), 'connect', [], hostPort(address, url.port));
    });
    try {
      const d = dialectFor(url.dialect);
      // Provenance: the table (or "query"); with cursor_column, each row's cursor value too.
      const provenance: Provenance = settings.table ? { table: settings.table } : { query: true };
      if (!settings.cursorColumn) {
        // Full refresh: no state; a retry of the run starts over (landing drops its earlier rows).
        for await (const rows of session.stream(fullSql(settings, d), [], this.batchSize, ctx.signal))
          for (const piece of splitByBytes(rows.map(toRecord), this.batchSize, this.batchMaxBytes))
            yield { records: piece, provenance };
        return;
      }
      const { columns } = await session.sample(sampleSql(settings, d, 0));
      const column = findColumn(columns, settings.cursorColumn, url);
      if (!column)
        throw new PermanentSyncError(
          `cursor_column "${settings.cursorColumn}" is not a column of ${what(settings)}`,
          'invalid_config',
        );
      const stored = storedWindow(state, settings.cursorColumn, ctx);
      const kind = cursorKind(column);
      const order = cursorOrder(kind, effectiveLookback(kind, settings.cursorLookback), stored);
      const window = new CursorWindow(order, this.maxWindowKeys, stored);
      const bound = window.readFrom;
      const sql = incrementalSql({ ...settings, cursorColumn: settings.cursorColumn }, d, {
        bound: bound === undefined ? undefined : 'from' in bound ? 'from' : 'after',
        numeric: column.numeric,
      });
      const params = bound === undefined ? [] : ['from' in bound ? bound.from : bound.after];
      let warned = false;
      const toBatch = (records: Row[], final: boolean): SyncBatch => {
        const next = window.state(final);
        if (!warned && window.overflowed) {
          warned = true;
          ctx.logger.warn(
            { sourceId: source.id, maxKeys: this.maxWindowKeys },
            'more rows share one cursor_column value than the state remembers: a retry may land some of them twice, and later rows with that value are not read',
          );
        }
        return {
          records,
          provenance,
          recordProvenance: { cursor: records.map((r) => cursorValue(r[column.name])) },
          ...(next && { state: toCursorState(settings.cursorColumn!, next) }),
        };
      };
      let pending: Row[] = [];
      let pendingBytes = 0;
      for await (const rows of session.stream(sql, params, this.batchSize, ctx.signal)) {
        for (const row of rows) {
          const cursor = String(row[CURSOR_KEY]);
          const record = toRecord(row);
          // Columns come in the query's order every time: the JSON text needs no key sorting.
          if (!window.admit(cursor, () => fingerprintText(JSON.stringify(record)))) continue;
          pending.push(record);
          pendingBytes += approxJsonBytes(record);
          // Cut by count or bytes, row by row: the window's state then covers exactly what was yielded.
          if (pending.length >= this.batchSize || pendingBytes >= this.batchMaxBytes) {
            yield toBatch(pending, false);
            pending = [];
            pendingBytes = 0;
          }
        }
      }
      // Rows that had all landed already leave the state as it was; an overflowed value still has
      // to be left behind in the final state.
      if (pending.length || window.overflowed) yield toBatch(pending, true);
    } catch (err) {
      throw toConnectorError(scrubError(err, url.password), 'read', [], hostPort(address, url.port));
    } finally {
      await session.close();
    }
  }

  /** The columns of the table or query, as a JSON-Schema-like object (for schema drift). */
  async describe(source: ConnectorSource, ctx: ConnectorContext): Promise<Record<string, unknown>> {
    const { url, settings } = configure(source);
    const { address } = await ctx.outbound
      .resolve(url.host, 'service', ctx.timeoutMs, url.port)
      .catch((err: unknown) => {
        throw toConnectorError(err, 'resolve');
      });
    const { session } = await this.open(url, address, ctx).catch((err: unknown) => {
      throw toConnectorError(scrubError(err, url.password), 'connect', [], hostPort(address, url.port));
    });
    try {
      const { columns } = await session.sample(sampleSql(settings, dialectFor(url.dialect), 0));
      return columnsSchema(columns);
    } catch (err) {
      throw toConnectorError(scrubError(err, url.password), 'describe', [], hostPort(address, url.port));
    } finally {
      await session.close();
    }
  }

  private async open(
    url: DatabaseUrl,
    address: string,
    ctx: ConnectorContext,
  ): Promise<{ session: DatabaseSession; connectMs: number; authenticateMs: number }> {
    const connectMs = Math.min(ctx.timeoutMs, url.connectTimeoutMs ?? Infinity);
    const watch = new ConnectWatch(connectMs, ctx.signal);
    const limits = { readTimeoutMs: ctx.timeoutMs };
    // Pending until the server answered the handshake (see Outbound.claim).
    let release: ReleasePending;
    try {
      release = await ctx.outbound.claim(address, url.port);
    } catch (err) {
      watch.dispose();
      throw err;
    }
    try {
      // The drivers are imported on the first session: the API process builds this connector for
      // its rules and metadata only, and mysql2 alone is megabytes of code it would never run.
      const session = await (url.dialect === 'postgres'
        ? (await import('./postgres-session')).openPostgres(url, address, watch, limits)
        : (await import('./mysql-session')).openMysql(url, address, watch, limits));
      release(true);
      return { session, ...watch.finish() };
    } catch (err) {
      // An auth or permission error is an answer too: the server is there.
      release(!UNANSWERED.has(classifyError(err)));
      watch.dispose();
      throw err;
    }
  }
}

function configure(source: ConnectorSource): { url: DatabaseUrl; settings: DatabaseSettings } {
  try {
    return {
      url: parseDatabaseUrl(source.connection_string ?? ''),
      settings: readDatabaseSettings(source.metadata),
    };
  } catch (err) {
    if (err instanceof InvalidDatabaseUrlError)
      throw new PermanentSyncError(`connection string ${err.message}`, 'invalid_config');
    throw err;
  }
}

/** The stored window, unless it belongs to another cursor_column (then the read starts over). */
function storedWindow(
  state: unknown,
  column: string,
  ctx: ConnectorContext,
): WindowState<string> | undefined {
  if (state === undefined || state === null) return undefined;
  const s = state as Partial<DatabaseCursorState>;
  if (s.cursor_column === column && typeof s.cursor === 'string') {
    if (typeof s.from !== 'string' || !Array.isArray(s.seen)) return { max: s.cursor };
    return { max: s.cursor, from: s.from, seen: s.seen };
  }
  ctx.logger.warn(
    { stored: s.cursor_column, column },
    'stored state does not match cursor_column: reading from the start',
  );
  return undefined;
}

function toCursorState(column: string, window: WindowState<string>): DatabaseCursorState {
  return {
    cursor_column: column,
    cursor: window.max,
    ...(window.from !== undefined && { from: window.from, seen: window.seen ?? [] }),
  };
}

function findColumn(columns: ColumnInfo[], name: string, url: DatabaseUrl): ColumnInfo | undefined {
  // MySQL column names are case-insensitive; PostgreSQL's (quoted) are not.
  return url.dialect === 'mysql'
    ? columns.find((c) => c.name.toLowerCase() === name.toLowerCase())
    : columns.find((c) => c.name === name);
}

/** Drivers rarely quote the password, but an error message must never carry it. */
function scrubError(err: unknown, password: string): unknown {
  if (err instanceof Error && password && err.message.includes(password))
    err.message = scrubSecret(err.message, password);
  return err;
}

/** A failed step in the words of its step: what the code means there, then the driver's own. */
function stepFailure(
  step: string,
  err: unknown,
  url: DatabaseUrl,
  address?: string,
  timeoutMs?: number,
): SourceFailure {
  const code = classifyError(err);
  return new SourceFailure(failure(step, code, url, err, address, timeoutMs), code);
}

/** A cursor value as provenance keeps it: a scalar as it is, anything else as JSON text. */
function cursorValue(value: unknown): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return JSON.stringify(value);
}
