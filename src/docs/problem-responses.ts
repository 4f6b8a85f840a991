import { PROBLEM_TYPE_BASE } from '../http/problem';

type Schema = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const header = (name: string) => ({ $ref: `#/components/headers/${name}` });

export const problemSchema = {
  type: 'object',
  description:
    'RFC 9457 problem details. `type` is a stable, searchable code under /problems/; some problems add members of their own (the counts behind a 409, the checks behind a not-ready 503).',
  required: ['type', 'title', 'status'],
  additionalProperties: true,
  properties: {
    type: { type: 'string', description: 'Stable code, e.g. /problems/not-found.' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    errors: {
      type: 'array',
      description: 'Every invalid field or parameter (400 validation-error, some 409s).',
      items: {
        type: 'object',
        required: ['pointer', 'message'],
        properties: {
          pointer: { type: 'string', description: 'JSON Pointer into the body, or the parameter name.' },
          in: { enum: ['body', 'query', 'path'] },
          message: { type: 'string' },
        },
      },
    },
  },
};

/** The headers the API sends, declared once and referenced by the responses that carry them. */
export const RESPONSE_HEADERS = {
  'X-Request-Id': {
    description:
      "This request's id (the caller's own X-Request-Id when it is sane, otherwise a new one): in the logs, the audit log and every job it queued.",
    schema: { type: 'string' },
  },
  'RateLimit-Limit': {
    description: "Requests the key's tightest limit allows per window.",
    schema: { type: 'integer' },
  },
  'RateLimit-Remaining': {
    description: 'Requests left in the current window.',
    schema: { type: 'integer' },
  },
  'RateLimit-Reset': {
    description: 'Seconds until the window resets.',
    schema: { type: 'integer' },
  },
  'Retry-After': {
    description: 'Seconds to wait before trying again.',
    schema: { type: 'integer' },
  },
  'WWW-Authenticate': {
    description: 'The scheme to authenticate with: Bearer (Basic for the job dashboard).',
    schema: { type: 'string' },
  },
  Allow: {
    description: 'The methods this path takes.',
    schema: { type: 'string' },
  },
  Location: {
    description: 'Where the created (or queued) thing can be read.',
    schema: { type: 'string' },
  },
} as const;

export type ResponseHeader = keyof typeof RESPONSE_HEADERS;

/** Headers of a response, as references to the shared declarations. */
export const headers = (...names: ResponseHeader[]): Record<string, unknown> =>
  Object.fromEntries(names.map((n) => [n, header(n)]));

interface ProblemDoc {
  description: string;
  code: string;
  title: string;
  detail: string;
  /** Headers the error sends besides X-Request-Id. */
  headers?: ResponseHeader[];
  extra?: Schema;
}

/** Each status with what it means here and an example of its own (not the validation error's). */
const PROBLEM_DOCS: Record<string, ProblemDoc> = {
  '400': {
    description: 'Invalid field, parameter or malformed JSON; `errors` names each field',
    code: 'validation-error',
    title: 'Invalid request',
    detail: 'The request has invalid fields or parameters.',
    extra: { errors: [{ pointer: '/refresh_interval', in: 'body', message: 'must be >= 60' }] },
  },
  '401': {
    description: 'No API key, or not a valid one',
    code: 'unauthorized',
    title: 'Unauthorized',
    detail: 'Send an API key: Authorization: Bearer slc_...',
    headers: ['WWW-Authenticate'],
  },
  '403': {
    description: "The key's scope does not cover this request",
    code: 'forbidden',
    title: 'Forbidden',
    detail: 'This key has scope read; this request needs write.',
  },
  '404': {
    description: 'Not found',
    code: 'not-found',
    title: 'Not found',
    detail: 'No such resource.',
  },
  '405': {
    description: 'This path does not take that method; Allow lists the methods it does',
    code: 'method-not-allowed',
    title: 'Method not allowed',
    detail: 'Allowed: GET, PUT, DELETE.',
    headers: ['Allow'],
  },
  '406': {
    description: 'None of the media types in Accept is served here',
    code: 'not-acceptable',
    title: 'Not acceptable',
    detail: 'This resource is served as: application/json, application/x-ndjson, text/csv.',
  },
  '409': {
    description: 'Conflict',
    code: 'conflict',
    title: 'Conflict',
    detail: 'name is already taken.',
    extra: { errors: [{ pointer: '/name', in: 'body', message: 'is already taken' }] },
  },
  '413': {
    description: 'Body too large',
    code: 'payload-too-large',
    title: 'Payload too large',
    detail: 'The request body exceeds 1mb.',
  },
  '415': {
    description: 'Body is not JSON',
    code: 'unsupported-media-type',
    title: 'Unsupported media type',
    detail: 'Send the body as application/json.',
  },
  '429': {
    description: 'Rate limited: wait Retry-After seconds',
    code: 'too-many-requests',
    title: 'Too many requests',
    detail: 'Rate limit of 600 requests per minute reached.',
    headers: ['Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'],
  },
  '500': {
    description: 'Internal error (no details exposed)',
    code: 'internal',
    title: 'Internal server error',
    detail: 'Something went wrong; quote request id 3f0c6d1e-5b7a-4c1e-9f5e-2a4b8c6d0e1f when reporting it.',
  },
  '503': {
    description: 'A dependency (Postgres or Redis) is unavailable: retry after Retry-After seconds',
    code: 'service-unavailable',
    title: 'Service unavailable',
    detail: 'The database is unavailable.',
    headers: ['Retry-After'],
  },
};

/** The problem+json response of one status, with its own example (`example` overrides members of it). */
export function problemResponse(status: number, description?: string, example: Schema = {}): Schema {
  const doc = PROBLEM_DOCS[String(status)];
  if (!doc) throw new Error(`no problem documentation for status ${status}`);
  return {
    description: description ?? doc.description,
    headers: headers('X-Request-Id', ...(doc.headers ?? [])),
    content: {
      'application/problem+json': {
        schema: ref('Problem'),
        example: {
          type: `${PROBLEM_TYPE_BASE}${doc.code}`,
          title: doc.title,
          status,
          detail: doc.detail,
          ...(Object.keys(example).length ? {} : doc.extra),
          ...example,
        },
      },
    },
  };
}

/** Problem responses for the given statuses, plus 500 which any operation can answer. */
export function problems(...statuses: number[]): Record<string, Schema> {
  const out: Record<string, Schema> = {};
  for (const s of [...statuses, 500]) out[String(s)] = problemResponse(s);
  return out;
}
