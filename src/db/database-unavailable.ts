/**
 * Whether `err` says the database cannot be reached right now (down, restarting, refusing
 * connections, pool exhausted past its acquire timeout) rather than that a query is wrong. The API
 * answers those with 503 and Retry-After, like a Redis outage, instead of a 500: the client did
 * nothing wrong and should simply try again.
 */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/** SQLSTATE classes: 08 connection exception, 57P01-57P03 shutdown/crash/cannot connect now, 53300 too many connections. */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;

const UNAVAILABLE_MESSAGE =
  /Connection terminated|Connection ended unexpectedly|timeout exceeded when trying to connect|Client has encountered a connection error/i;

export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; depth += 1) {
    const { name, code, message } = e as { name?: unknown; code?: unknown; message?: unknown };
    // Knex: no pool connection within acquireConnectionTimeout.
    if (name === 'KnexTimeoutError') return true;
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
