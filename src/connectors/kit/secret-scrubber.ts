/**
 * Removes every recognisable piece of `secret` from `message`: the whole string, and for a URL
 * its password, user and secret-looking query values, raw and percent-decoded. Driver errors
 * sometimes quote the connection string or the password they were given.
 */
export function scrubSecret(message: string, secret: string | null): string {
  if (!secret) return message;
  const pieces = new Set<string>([secret]);
  try {
    const url = new URL(secret);
    for (const part of [url.password, url.username]) if (part) pieces.add(part).add(safeDecode(part));
    for (const [, value] of url.searchParams) if (value.length >= 6) pieces.add(value);
  } catch {
    // not a URL: the whole string is the secret
  }
  let out = message;
  for (const piece of [...pieces].filter((p) => p.length >= 3).sort((a, b) => b.length - a.length))
    out = out.split(piece).join('****');
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
