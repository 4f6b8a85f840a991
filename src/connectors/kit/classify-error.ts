import { PermanentSyncError } from './connector';

/**
 * Stable codes for the common ways reaching a source fails, shared by every connector so users
 * (and alerts) can rely on them: dns, refused, timeout, tls, auth, not_found, permission,
 * forbidden_address, invalid_config, protocol, unknown.
 */
export type FailureCode =
  | 'dns'
  | 'refused'
  | 'timeout'
  | 'tls'
  | 'auth'
  | 'not_found'
  | 'permission'
  | 'forbidden_address'
  | 'invalid_config'
  | 'protocol'
  | 'unknown';

const BY_ERRNO: Record<string, FailureCode> = {
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EAI_NONAME: 'dns',
  ECONNREFUSED: 'refused',
  ECONNRESET: 'refused',
  EHOSTUNREACH: 'refused',
  ENETUNREACH: 'refused',
  ETIMEDOUT: 'timeout',
  ETIMEOUT: 'timeout',
  ESOCKETTIMEDOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  ABORT_ERR: 'timeout',
  ENOENT: 'not_found',
  EACCES: 'permission',
  EPERM: 'permission',
  forbidden_address: 'forbidden_address',
  // PostgreSQL SQLSTATEs
  '28P01': 'auth',
  '28000': 'auth',
  '3D000': 'not_found',
  '42P01': 'not_found',
  '42501': 'permission',
  '25006': 'permission', // a write inside our read-only transaction
  '42703': 'invalid_config', // unknown column (cursor_column or query)
  // MySQL / MariaDB
  ER_ACCESS_DENIED_ERROR: 'auth',
  ER_DBACCESS_DENIED_ERROR: 'permission',
  ER_BAD_DB_ERROR: 'not_found',
  ER_NO_SUCH_TABLE: 'not_found',
  ER_TABLEACCESS_DENIED_ERROR: 'permission',
  ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION: 'permission',
};

/** Maps a driver or network error (or its `cause`) to a stable code. */
export function classifyError(err: unknown): FailureCode {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = String((e as { code?: unknown }).code ?? '');
    if (BY_ERRNO[code]) return BY_ERRNO[code];
    const name = String((e as { name?: unknown }).name ?? '');
    if (name === 'AbortError' || name === 'TimeoutError') return 'timeout';
    if (/^ERR_TLS|CERT|SSL/i.test(code) || /certificate|ssl|tls/i.test(String((e as Error).message ?? '')))
      return 'tls';
    if (/NOAUTH|WRONGPASS|Authentication|Authorization Violation/i.test(String((e as Error).message ?? '')))
      return 'auth';
  }
  return 'unknown';
}

/** A transient connector failure with its code: the sync is retried with backoff. */
export class ConnectorError extends Error {
  constructor(
    message: string,
    readonly code: FailureCode,
  ) {
    super(message);
    this.name = 'ConnectorError';
  }
}

/** Codes a retry cannot fix. */
export const PERMANENT_CODES: ReadonlySet<FailureCode> = new Set([
  'auth',
  'not_found',
  'permission',
  'forbidden_address',
  'invalid_config',
]);

/**
 * Wraps any error from reaching a source: permanent codes become PermanentSyncError (no retry),
 * the rest ConnectorError (retried). `what` prefixes the message ("connect", "read page 3").
 */
export function toConnectorError(err: unknown, what: string): PermanentSyncError | ConnectorError {
  if (err instanceof PermanentSyncError || err instanceof ConnectorError) return err;
  const code = classifyError(err);
  const message = `${what}: ${(err as Error)?.message ?? String(err)}`;
  return PERMANENT_CODES.has(code)
    ? new PermanentSyncError(message, code)
    : new ConnectorError(message, code);
}
