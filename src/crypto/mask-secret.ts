const MASK = '****';
/** Query parameter names that carry credentials (the log scrubber masks these in free text). */
export const SECRET_PARAM = /pass|pwd|token|key|secret|sig|auth|credential|session|code|jwt/i;

/**
 * Parameters whose value is shown: the database connection strings' own settings, which say how to
 * connect and never who. Any other parameter's value is masked, whatever its name.
 */
const SHOWN_PARAMS: ReadonlySet<string> = new Set([
  'sslmode',
  'ssl-mode',
  'ssl',
  'application_name',
  'charset',
  'connect_timeout',
  'connectTimeout',
]);
const SHOWN_VALUE = /^[A-Za-z0-9_.-]{1,32}$/;

/**
 * A path segment that looks like a credential rather than a name: a JWT (eyJ...), anything with a
 * colon (a Telegram-style bot123:AAH... token), a long mix of letters and digits that switches
 * between them often (API keys, base64, UUIDs), hex, random mixed case, or a long unbroken blob.
 * "v1", "items", "getUpdates" and "2024-01-01-orders.csv" stay visible.
 */
export function isTokenLike(segment: string): boolean {
  if (!segment) return false;
  if (/^eyJ/.test(segment) || segment.includes(':')) return true;
  if (segment.length >= 16 && /^[A-Za-z0-9_~+=/-]+$/.test(segment)) {
    const switches = segment.match(/[A-Za-z](?=\d)|\d(?=[A-Za-z])/g)?.length ?? 0;
    if (switches >= 3) return true;
    // Hex (a digest, a key) and random mixed case (base64 without digits) are credentials too.
    if (/^[0-9a-f]+$/i.test(segment) && /\d/.test(segment) && /[a-f]/i.test(segment)) return true;
    const cases = segment.match(/[a-z](?=[A-Z])|[A-Z](?=[a-z])/g)?.length ?? 0;
    if (segment.length >= 20 && cases >= 10) return true;
  }
  return segment.length >= 32 && /^[A-Za-z0-9_~+=/]+$/.test(segment);
}

/**
 * How a sensitive field's shown form is computed. The default masks by URL shape (maskSecret); a
 * resource whose masking depends on other fields of the row (a webhook source's secret is never
 * shown, whatever it looks like) names them in `inputs`, so a change to one recomputes the mask.
 */
export interface SecretMask {
  readonly inputs: readonly string[];
  mask(field: string, secret: string, row: Readonly<Record<string, unknown>>): string;
}

export const MASK_BY_SHAPE: SecretMask = { inputs: [], mask: (_field, secret) => maskSecret(secret) };

export interface MaskOptions {
  /** Never show any part of it (a webhook's shared secret, whatever it looks like). */
  whole?: boolean;
}

/**
 * The shown form of a secret, by allow-list: scheme, host, port and the path segments that do not
 * look like credentials stay visible; user info, every query value (except the database settings
 * in SHOWN_PARAMS), token-like path segments and the fragment become ****. Anything that is not a
 * URL with a host is masked whole. Computed when the secret is written and stored beside it.
 */
export function maskSecret(value: string, options: MaskOptions = {}): string {
  if (options.whole) return MASK;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return MASK;
  }
  if (!url.host && url.protocol !== 'file:') return MASK;
  const userInfo = url.username || url.password ? `${MASK}@` : '';
  const params = [...url.searchParams.entries()].map(
    ([k, v]) =>
      `${encodeURIComponent(k)}=${SHOWN_PARAMS.has(k) && SHOWN_VALUE.test(v) ? encodeURIComponent(v) : MASK}`,
  );
  const query = params.length ? `?${params.join('&')}` : '';
  // The fragment can carry tokens too (OAuth implicit style); it is never needed to identify a source.
  const fragment = url.hash ? `#${MASK}` : '';
  const path = url.pathname
    .split('/')
    .map((segment) => (isTokenLike(safeDecode(segment)) ? MASK : segment))
    .join('/');
  return `${url.protocol}//${userInfo}${url.host}${url.pathname === '/' && !value.includes(`${url.host}/`) ? '' : path}${query}${fragment}`;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
