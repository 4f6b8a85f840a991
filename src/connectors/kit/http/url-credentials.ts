import { PermanentSyncError } from '../../connector';
import { isSecretKey } from '../secret-scrubber';

/** A source URL split from its credentials, which travel only as headers to the source's origin. */
export interface UrlCredentials {
  /** The URL without user info or fragment. */
  url: URL;
  username: string;
  password: string;
}

export type AuthSetting =
  { type: 'none' } | { type: 'basic' } | { type: 'bearer' } | { type: 'header'; name: string };

const HTTP_PROTOCOLS = new Set(['http:', 'https:']);

/** Parses an http(s) connection string; the error never quotes it (it is the secret). */
export function splitCredentials(connectionString: string | null): UrlCredentials {
  let url: URL;
  try {
    url = new URL(connectionString ?? '');
  } catch {
    throw new PermanentSyncError('connection_string is not a valid URL', 'invalid_config');
  }
  if (!HTTP_PROTOCOLS.has(url.protocol) || !url.hostname)
    throw new PermanentSyncError(
      'connection_string must be an http:// or https:// URL with a host',
      'invalid_config',
    );
  const username = safeDecode(url.username);
  const password = safeDecode(url.password);
  url.username = '';
  url.password = '';
  url.hash = '';
  return { url, username, password };
}

/**
 * The headers that carry the credentials. Without an `auth` setting the form of the user info
 * decides: `user:pass@` is basic, a lone `:token@` (or `token@`) a bearer token.
 */
export function credentialHeaders(creds: UrlCredentials, auth?: AuthSetting): Record<string, string> {
  const { username, password } = creds;
  const token = password || username;
  const type = auth?.type ?? (username && password ? 'basic' : token ? 'bearer' : 'none');
  if (type === 'none') return {};
  if (!token)
    throw new PermanentSyncError(
      `auth type ${type} needs credentials in the connection string's user info`,
      'invalid_config',
    );
  if (type === 'basic')
    return { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
  if (type === 'bearer') return { authorization: `Bearer ${token}` };
  return { [(auth as { name: string }).name.toLowerCase()]: token };
}

/** A URL as messages and logs may show it: origin and path, never user info or query (tokens ride there). */
export function describeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * A request URL as landed records may keep it (their provenance): without user info or fragment,
 * and with the values of secret-bearing query parameters (token, key, sig...) masked; the others
 * (page, cursor, watermark) stay, since they say which request returned the record.
 */
export function publicUrl(url: URL): string {
  const shown = new URL(url.href);
  shown.username = '';
  shown.password = '';
  shown.hash = '';
  for (const key of new Set(shown.searchParams.keys()))
    if (isSecretKey(key)) shown.searchParams.set(key, '****');
  return shown.href;
}
