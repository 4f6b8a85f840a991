/** One invalid field or parameter: `pointer` is a JSON Pointer into the body, or the parameter's name. */
export interface FieldError {
  pointer: string;
  message: string;
  in?: 'body' | 'query' | 'path';
}

/** Base of every error the API answers with; `code` is stable and searchable in logs and docs. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    detail?: string,
    readonly errors?: FieldError[],
    readonly headers?: Record<string, string>,
    /** Extra members of the problem body (RFC 9457 extensions), e.g. the counts behind a 409. */
    readonly extensions?: Record<string, unknown>,
  ) {
    super(detail ?? title);
    this.name = new.target.name;
  }
}

export class ValidationError extends HttpError {
  constructor(errors: FieldError[], detail = 'The request has invalid fields or parameters.') {
    super(400, 'validation-error', 'Invalid request', detail, errors);
  }
}

export class MalformedBodyError extends HttpError {
  constructor(detail = 'The request body is not valid JSON.') {
    super(400, 'malformed-body', 'Malformed request body', detail);
  }
}

export class NotFoundError extends HttpError {
  constructor(detail = 'No such resource.') {
    super(404, 'not-found', 'Not found', detail);
  }
}

export class MethodNotAllowedError extends HttpError {
  constructor(allowed: string) {
    super(405, 'method-not-allowed', 'Method not allowed', `Allowed: ${allowed}.`, undefined, {
      Allow: allowed,
    });
  }
}

export class UnauthorizedError extends HttpError {
  /** `challenge` is the WWW-Authenticate scheme: Basic where a browser should prompt (/admin/queues). */
  constructor(detail: string, challenge: 'Bearer' | 'Basic' = 'Bearer') {
    super(401, 'unauthorized', 'Unauthorized', detail, undefined, {
      'WWW-Authenticate': `${challenge} realm="sluice"`,
    });
  }
}

export class ForbiddenError extends HttpError {
  constructor(detail: string) {
    super(403, 'forbidden', 'Forbidden', detail);
  }
}

export class TooManyRequestsError extends HttpError {
  constructor(detail: string, retryAfterSeconds: number, headers: Record<string, string> = {}) {
    super(429, 'too-many-requests', 'Too many requests', detail, undefined, {
      ...headers,
      'Retry-After': String(retryAfterSeconds),
    });
  }
}

export class ConflictError extends HttpError {
  constructor(detail: string, errors?: FieldError[], extensions?: Record<string, unknown>) {
    super(409, 'conflict', 'Conflict', detail, errors, undefined, extensions);
  }
}

export class PayloadTooLargeError extends HttpError {
  constructor(limit: string) {
    super(413, 'payload-too-large', 'Payload too large', `The request body exceeds ${limit}.`);
  }
}

export class UnsupportedMediaTypeError extends HttpError {
  constructor() {
    super(415, 'unsupported-media-type', 'Unsupported media type', 'Send the body as application/json.');
  }
}

export class NotAcceptableError extends HttpError {
  constructor(offered: readonly string[]) {
    super(406, 'not-acceptable', 'Not acceptable', `This resource is served as: ${offered.join(', ')}.`);
  }
}

export class ServiceUnavailableError extends HttpError {
  constructor(detail: string) {
    super(503, 'service-unavailable', 'Service unavailable', detail, undefined, { 'Retry-After': '5' });
  }
}

export class InternalError extends HttpError {
  constructor(requestId: string) {
    super(
      500,
      'internal',
      'Internal server error',
      `Something went wrong; quote request id ${requestId} when reporting it.`,
    );
  }
}
