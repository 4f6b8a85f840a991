import { isIP } from 'node:net';

export type Dialect = 'postgres' | 'mysql';

/** One vocabulary for both drivers (libpq's sslmode names); MySQL's ssl-mode values map onto it. */
export type TlsMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

export interface DatabaseUrl {
  dialect: Dialect;
  /** As written (no brackets around IPv6): resolved once through Outbound, kept for TLS identity. */
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  tls: TlsMode;
  applicationName?: string;
  charset?: string;
  /** Only ever shortens the connector's own bound (ctx.timeoutMs), never lengthens it. */
  connectTimeoutMs?: number;
}

/** A connection string that cannot be used; the message never contains the password. */
export class InvalidDatabaseUrlError extends Error {
  readonly code = 'invalid_config';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidDatabaseUrlError';
  }
}

const SCHEMES: Record<string, Dialect> = {
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
};

const DEFAULT_PORT: Record<Dialect, number> = { postgres: 5432, mysql: 3306 };

const PG_SSLMODES: readonly TlsMode[] = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'];
const MYSQL_SSLMODES: Record<string, TlsMode> = {
  disabled: 'disable',
  preferred: 'prefer',
  required: 'require',
  verify_ca: 'verify-ca',
  verify_identity: 'verify-full',
};

/**
 * Parameters are allow-listed per scheme: everything else (host= overrides, sslrootcert/sslkey
 * file paths, socket paths, passfiles, options=...) could point the driver at a local file or
 * another host than the one that was resolved and checked, so it is refused by name.
 */
const ALLOWED: Record<Dialect, readonly string[]> = {
  postgres: ['sslmode', 'application_name', 'connect_timeout'],
  mysql: ['ssl-mode', 'ssl', 'charset', 'connectTimeout'],
};

const MAX_TIMEOUT_MS = 600_000;

/** Parses and checks a database connection string (postgres://, postgresql://, mysql://, mariadb://). */
export function parseDatabaseUrl(value: string): DatabaseUrl {
  const schemeMatch = /^([a-z][a-z0-9+.-]*:)\/\//i.exec(value);
  const dialect = schemeMatch ? SCHEMES[schemeMatch[1]!.toLowerCase()] : undefined;
  if (!dialect)
    throw new InvalidDatabaseUrlError(
      'must start with postgres://, postgresql://, mysql:// or mariadb:// (e.g. postgres://user:password@host:5432/dbname)',
    );
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidDatabaseUrlError(
      `is not a valid ${dialect} URL (expected ${schemeMatch![1]}//user:password@host:port/dbname)`,
    );
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw new InvalidDatabaseUrlError('must name a host (…//user:password@host:port/dbname)');
  if (
    !isIP(host) &&
    !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(host)
  )
    throw new InvalidDatabaseUrlError('has an invalid host name (one host only; no lists, no socket paths)');
  const port = url.port ? Number(url.port) : DEFAULT_PORT[dialect];
  if (port < 1 || port > 65535) throw new InvalidDatabaseUrlError('has a port outside 1-65535');
  const user = decode(url.username, 'user name');
  if (!user) throw new InvalidDatabaseUrlError('must name a user (…//user:password@host/dbname)');
  const password = decode(url.password, 'password');
  const path = url.pathname.replace(/^\//, '');
  if (!path || path.includes('/'))
    throw new InvalidDatabaseUrlError('must name exactly one database in its path (…@host:port/dbname)');
  const database = decode(path, 'database name');
  if (url.hash) throw new InvalidDatabaseUrlError('must not have a #fragment');

  const parsed: DatabaseUrl = { dialect, host, port, user, password, database, tls: 'prefer' };
  const seen = new Set<string>();
  for (const [name, raw] of url.searchParams) {
    if (!ALLOWED[dialect].includes(name))
      throw new InvalidDatabaseUrlError(
        `parameter "${name}" is not allowed in a ${dialect} connection string (allowed: ${ALLOWED[dialect].join(', ')})`,
      );
    if (seen.has(name)) throw new InvalidDatabaseUrlError(`parameter "${name}" is given more than once`);
    seen.add(name);
    applyParameter(parsed, name, raw);
  }
  return parsed;
}

/** The problem with a connection string, or undefined when it is usable. */
export function databaseUrlProblem(value: string): string | undefined {
  try {
    parseDatabaseUrl(value);
    return undefined;
  } catch (err) {
    if (err instanceof InvalidDatabaseUrlError) return err.message;
    throw err;
  }
}

function applyParameter(parsed: DatabaseUrl, name: string, raw: string): void {
  const value = raw.trim();
  switch (name) {
    case 'sslmode':
      if (!PG_SSLMODES.includes(value as TlsMode))
        throw new InvalidDatabaseUrlError(`parameter "sslmode" must be one of ${PG_SSLMODES.join(', ')}`);
      parsed.tls = value as TlsMode;
      return;
    case 'ssl-mode': {
      const mode = MYSQL_SSLMODES[value.toLowerCase()];
      if (!mode)
        throw new InvalidDatabaseUrlError(
          `parameter "ssl-mode" must be one of ${Object.keys(MYSQL_SSLMODES)
            .map((m) => m.toUpperCase())
            .join(', ')}`,
        );
      parsed.tls = mode;
      return;
    }
    case 'ssl':
      // Asking for TLS means a verified one; ssl-mode=REQUIRED is there for self-signed servers.
      if (/^(true|1)$/i.test(value)) parsed.tls = 'verify-full';
      else if (/^(false|0)$/i.test(value)) parsed.tls = 'disable';
      else throw new InvalidDatabaseUrlError('parameter "ssl" must be true or false');
      return;
    case 'application_name':
      if (!/^[\x20-\x7e]{1,63}$/.test(value))
        throw new InvalidDatabaseUrlError(
          'parameter "application_name" must be 1-63 printable ASCII characters',
        );
      parsed.applicationName = value;
      return;
    case 'charset':
      if (!/^[A-Za-z0-9_]{1,32}$/.test(value))
        throw new InvalidDatabaseUrlError('parameter "charset" must be a character set name such as utf8mb4');
      parsed.charset = value;
      return;
    case 'connect_timeout':
      parsed.connectTimeoutMs = timeout(name, value, 1000);
      return;
    case 'connectTimeout':
      parsed.connectTimeoutMs = timeout(name, value, 1);
      return;
  }
}

/** libpq's connect_timeout is in seconds, mysql2's connectTimeout in milliseconds. */
function timeout(name: string, value: string, unitMs: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n <= 0 || n * unitMs > MAX_TIMEOUT_MS)
    throw new InvalidDatabaseUrlError(
      `parameter "${name}" must be a positive whole number (${unitMs === 1 ? 'milliseconds' : 'seconds'}, at most ${MAX_TIMEOUT_MS / unitMs})`,
    );
  return n * unitMs;
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    // Never echo the part: it may be the password.
    throw new InvalidDatabaseUrlError(`has a badly percent-encoded ${what}`);
  }
}
