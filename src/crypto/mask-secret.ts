const MASK = '****';
/** Query parameter names that carry credentials. */
export const SECRET_PARAM = /pass|pwd|token|key|secret|sig|auth|credential|session|code/i;

/**
 * The shown form of a secret: scheme, host, port and path kept; user info and secret-bearing query
 * parameters replaced by ****. Anything that is not a URL with a host is masked whole.
 */
export function maskSecret(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return MASK;
  }
  if (!url.host && url.protocol !== 'file:') return MASK;
  const userInfo = url.username || url.password ? `${MASK}@` : '';
  const params = [...url.searchParams.entries()].map(
    ([k, v]) => `${encodeURIComponent(k)}=${SECRET_PARAM.test(k) ? MASK : encodeURIComponent(v)}`,
  );
  const query = params.length ? `?${params.join('&')}` : '';
  // The fragment can carry tokens too (OAuth implicit style); it is never needed to identify a source.
  const fragment = url.hash ? `#${MASK}` : '';
  return `${url.protocol}//${userInfo}${url.host}${url.pathname === '/' && !value.includes(`${url.host}/`) ? '' : url.pathname}${query}${fragment}`;
}
