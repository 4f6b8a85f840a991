import { SECRET_PARAM } from '../../crypto/mask-secret';

// Every way Sluice keeps a secret out of what it shows: log lines (objects and free text), test
// step messages and sync errors. One module, so a new way a secret leaks is fixed once for all.

/** What a known secret is replaced with in a message. */
const MASK = '****';

export const CENSOR = '[REDACTED]';

/** Keys whose values never reach a log line, at any depth: secrets, their ciphertexts, credentials. */
const SECRET_KEY =
  /connection_?string|ciphertext|password|passwd|secret|token|api_?key|authorization|cookie|signature|credential/i;

/**
 * Verdicts of isSecretKey by key. Log objects reuse a small set of keys (every request line has
 * the same five), and the regular expression was a visible share of a request's CPU in the
 * api-read bench; bounded so that objects with unbounded keys cannot grow it.
 */
const secretKeyCache = new Map<string, boolean>();
const MAX_CACHED_KEYS = 1_000;

/** A key that names a secret; `has_*` flags and `*_masked` values are safe to show. */
export function isSecretKey(key: string): boolean {
  const cached = secretKeyCache.get(key);
  if (cached !== undefined) return cached;
  const lower = key.toLowerCase();
  const secret = !(lower.startsWith('has_') || lower.endsWith('_masked')) && SECRET_KEY.test(lower);
  if (secretKeyCache.size >= MAX_CACHED_KEYS) secretKeyCache.clear();
  secretKeyCache.set(key, secret);
  return secret;
}

// Stops at quotes and backslashes too, so the final pass over a JSON line never spans two values.
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"\\]*@/gi;
const QUERY_PARAM = /([?&;])([^=&;\s#"\\]*)=([^&;\s#"\\]*)/g;

/**
 * Masks credentials inside free text (error messages, stacks): URL user info and secret-bearing
 * query parameters. A second line of defence: secrets should only ever sit under secret keys.
 */
export function scrubText(text: string): string {
  // Each pattern needs its marker character ('@' for user info, '=' for a parameter): most lines
  // (every request line) hold neither and skip the regular expressions, which cost per byte.
  let out = text;
  if (out.includes('@')) out = out.replace(URL_USERINFO, '$1****@');
  if (out.includes('='))
    out = out.replace(QUERY_PARAM, (whole, sep: string, name: string) =>
      SECRET_PARAM.test(name) ? `${sep}${name}=****` : whole,
    );
  return out;
}

const MAX_DEPTH = 12;

function scrubError(err: Error, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: err.constructor?.name ?? err.name,
    message: scrubText(err.message),
  };
  if (err.stack) out.stack = scrubText(err.stack);
  for (const [k, v] of Object.entries(err)) out[k] = isSecretKey(k) ? CENSOR : scrub(v, depth + 1, seen);
  if (err.cause !== undefined) out.cause = scrub(err.cause, depth + 1, seen);
  return out;
}

/**
 * `value` fit for a log line: secret keys censored, text scrubbed, depth and cycles bounded. Copied
 * only where something changes: most lines (every request line) have nothing to hide, and a copy
 * of each was allocation a busy API paid for in garbage collection.
 */
export function scrub(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value;
  if (Buffer.isBuffer(value)) return `[Buffer ${value.length} bytes]`;
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Truncated]';
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < value.length; i += 1) {
        const item: unknown = value[i];
        const clean = scrub(item, depth + 1, seen);
        if (out) out.push(clean);
        else if (clean !== item) out = [...value.slice(0, i), clean];
      }
      return out ?? value;
    }
    if (value instanceof Error) return scrubError(value, depth, seen);
    let source: unknown = value;
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      try {
        source = toJSON.call(value);
      } catch {
        return '[Unserializable]';
      }
      if (source === null || typeof source !== 'object') return scrub(source, depth + 1, seen);
    }
    const fields = source as Record<string, unknown>;
    const keys = Object.keys(fields);
    let out: Record<string, unknown> | undefined;
    for (let i = 0; i < keys.length; i += 1) {
      const key = keys[i]!;
      const item = fields[key];
      const clean = isSecretKey(key) ? CENSOR : scrub(item, depth + 1, seen);
      if (out) out[key] = clean;
      else if (clean !== item) {
        out = {};
        for (const before of keys.slice(0, i)) out[before] = fields[before];
        out[key] = clean;
      }
    }
    return out ?? fields;
  } finally {
    // Only cycles are cut: the same object logged twice side by side is shown twice.
    seen.delete(value);
  }
}

/**
 * The last look at a finished line. Child bindings (`logger.child({...})`) skip pino's formatters,
 * so a line that mentions a secret-looking key anywhere is parsed and walked again.
 */
export function scrubLine(line: string): string {
  const text = scrubText(line);
  if (!SECRET_KEY.test(text)) return text;
  try {
    return `${JSON.stringify(scrub(JSON.parse(text)))}\n`;
  } catch {
    return text;
  }
}

/**
 * Secrets shorter than this are masked only where they stand as a whole token (not inside a
 * longer word): a one-letter password must not turn "Unknown RESP type" into "Unknown RESP ty****e".
 * A longer secret is masked wherever it occurs, even glued to other text.
 */
const WHOLE_TOKEN_BELOW = 8;

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Replaces each of `secrets` in `text` (any non-empty one, longest first so a secret that contains
 * another is masked whole): drivers sometimes echo what they were given. Short ones only where they
 * stand as a whole token (WHOLE_TOKEN_BELOW).
 */
export function hideSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of [...new Set(secrets)].sort((a, b) => b.length - a.length)) {
    if (!secret || !out.includes(secret)) continue;
    out =
      secret.length >= WHOLE_TOKEN_BELOW
        ? out.split(secret).join(MASK)
        : out.replace(
            new RegExp(`(?<![\\p{L}\\p{N}_])${escapeRegExp(secret)}(?![\\p{L}\\p{N}_])`, 'gu'),
            MASK,
          );
  }
  return out;
}

/**
 * Removes every recognisable piece of `secret` from `message`: the whole string, and for a URL
 * its password, user and secret-looking query values, raw and percent-decoded. Driver errors sometimes quote
 * the connection string or the password they were given.
 */
export function scrubSecret(message: string, secret: string | null): string {
  if (!secret) return message;
  const pieces = new Set<string>([secret]);
  try {
    const url = new URL(secret);
    for (const part of [url.password, url.username]) if (part) pieces.add(part).add(safeDecode(part));
    // A short value under an ordinary name (sslmode=require, page=1) is not worth masking "1" for.
    for (const [name, value] of url.searchParams)
      if (value && (value.length >= 6 || SECRET_PARAM.test(name))) pieces.add(value);
  } catch {
    // not a URL: the whole string is the secret
  }
  return hideSecrets(message, [...pieces]);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
