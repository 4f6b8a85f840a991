import { headers, problemResponse, type ResponseHeader } from './problem-responses';

type Schema = Record<string, unknown>;
type PathItem = Record<string, Schema>;

/** Headers a response of this status always carries, whatever the operation. */
const BY_STATUS: Record<string, ResponseHeader[]> = {
  '401': ['WWW-Authenticate'],
  '405': ['Allow'],
  '429': ['Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'],
  '503': ['Retry-After'],
};
const RATE_LIMIT: ResponseHeader[] = ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'];

function withHeaders(response: Schema, names: ResponseHeader[]): Schema {
  if ('$ref' in response) return response;
  const declared = (response.headers ?? {}) as Schema;
  const missing = names.filter((n) => !(n in declared));
  return missing.length ? { ...response, headers: { ...declared, ...headers(...missing) } } : response;
}

/**
 * What the middleware chain does to every request, said once for every operation instead of in
 * each *.openapi.ts: the error handler can answer 500 and the router 405 anywhere; a non-public
 * operation can answer 401, 403 and 429 and its successes carry the RateLimit-* fields; every
 * response carries X-Request-Id. Whatever an operation declares itself is kept.
 */
export function decorateOperations(
  item: PathItem,
  path: string,
  isPublic?: (method: string, path: string) => boolean,
): PathItem {
  const out: PathItem = {};
  for (const [method, op] of Object.entries(item)) {
    const open = isPublic ? isPublic(method.toUpperCase(), path) : true;
    const responses: Record<string, Schema> = { ...(op.responses as Record<string, Schema>) };
    const statuses = open ? [405, 500] : [401, 403, 405, 429, 500];
    for (const status of statuses) responses[String(status)] ??= problemResponse(status);
    for (const [status, response] of Object.entries(responses)) {
      const names: ResponseHeader[] = ['X-Request-Id', ...(BY_STATUS[status] ?? [])];
      if (!open && status.startsWith('2')) names.push(...RATE_LIMIT);
      responses[status] = withHeaders(response, names);
    }
    out[method] = { ...op, responses, ...(isPublic && open ? { security: [] } : {}) };
  }
  return out;
}
