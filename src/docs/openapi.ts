import type { CrudDocs, ResourceDescriptor } from '../http/crud/resource';
import { PROBLEM_TYPE_BASE } from '../http/problem';
import { SWAGGER_ASSETS } from './swagger-assets';

type Schema = Record<string, unknown>;
export type Operation = Schema;
export type PathItem = Record<string, Operation>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** Schemas are written once, with `$id` and bare `$ref`s for ajv; OpenAPI wants component references. */
export function toComponent(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toComponent);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Schema = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$id') continue;
    if (k === '$ref' && typeof v === 'string' && !v.startsWith('#')) out.$ref = `#/components/schemas/${v}`;
    else out[k] = toComponent(v);
  }
  return out;
}

export const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details.',
  required: ['type', 'title', 'status'],
  properties: {
    type: { type: 'string', examples: [`${PROBLEM_TYPE_BASE}validation-error`] },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    errors: {
      type: 'array',
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

export const paginationSchema = {
  type: 'object',
  required: ['total', 'limit', 'offset'],
  properties: { total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } },
};

const PROBLEM_DESCRIPTIONS: Record<string, string> = {
  '400': 'Invalid field, parameter or malformed JSON',
  '401': 'No API key, or not a valid one',
  '403': "The key's scope does not cover this request",
  '404': 'Not found',
  '406': 'None of the media types in Accept is served here',
  '409': 'Conflict',
  '413': 'Body too large',
  '415': 'Body is not JSON',
  '429': 'Rate limited',
  '500': 'Internal error (no details exposed)',
  '503': 'A dependency is unavailable',
};

/** Problem responses for the given statuses, plus 500 which any operation can answer. */
export function problems(...statuses: number[]): Record<string, Schema> {
  const out: Record<string, Schema> = {};
  for (const s of [...statuses, 500])
    out[String(s)] = {
      description: PROBLEM_DESCRIPTIONS[String(s)] ?? 'Error',
      content: { 'application/problem+json': { schema: ref('Problem') } },
    };
  return out;
}

const json = (schema: Schema) => ({ 'application/json': { schema } });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };

function crudPaths(r: ResourceDescriptor, docs: CrudDocs = {}): Record<string, PathItem> {
  const tag = r.entity;
  const query = r.schemas.listQuery as { properties: Record<string, Schema> };
  const parameters = [
    ...Object.entries(query.properties).map(([name, schema]) => ({
      name,
      in: 'query',
      required: false,
      schema: toComponent(schema),
    })),
    ...(docs.list?.parameters ?? []),
  ];
  return {
    [r.path]: {
      get: {
        tags: [tag],
        operationId: `list${r.entity}`,
        summary: `List ${r.entity} items, newest first`,
        ...(docs.list?.description && { description: docs.list.description }),
        parameters,
        responses: {
          '200': { description: 'A page', content: json(ref(`${r.entity}List`)) },
          ...problems(400),
        },
      },
      post: {
        tags: [tag],
        operationId: `create${r.entity}`,
        summary: `Create a ${r.entity}`,
        requestBody: { required: true, content: json(ref(`${r.entity}Create`)) },
        responses: {
          '201': {
            description: 'Created',
            headers: { Location: { schema: { type: 'string' } } },
            content: json(ref(r.entity)),
          },
          ...problems(400, 409, 413, 415),
        },
      },
    },
    [`${r.path}/{id}`]: {
      get: {
        tags: [tag],
        operationId: `get${r.entity}`,
        summary: `Get one ${r.entity}`,
        parameters: [idParam],
        responses: { '200': { description: 'Found', content: json(ref(r.entity)) }, ...problems(400, 404) },
      },
      put: {
        tags: [tag],
        operationId: `update${r.entity}`,
        summary: `Update a ${r.entity}; omitted fields keep their value`,
        parameters: [idParam],
        requestBody: { required: true, content: json(ref(`${r.entity}Update`)) },
        responses: {
          '200': { description: 'Updated', content: json(ref(r.entity)) },
          ...problems(400, 404, 409, 413, 415),
        },
      },
      delete: {
        tags: [tag],
        operationId: `delete${r.entity}`,
        summary: `Delete a ${r.entity}`,
        ...(docs.delete?.description && { description: docs.delete.description }),
        parameters: [idParam, ...(docs.delete?.parameters ?? [])],
        responses: {
          '204': { description: 'Deleted' },
          ...problems(400, 404),
          ...docs.delete?.responses,
        },
      },
    },
  };
}

/** The documentation's own endpoints: every app serves them, so the document lists them too. */
function docsPaths(): Record<string, PathItem> {
  const tags = ['Docs'];
  const binary = { schema: { type: 'string' } };
  return {
    '/openapi.json': {
      get: {
        tags,
        operationId: 'getOpenApi',
        summary: 'This OpenAPI 3.1 document',
        responses: {
          '200': { description: 'The document', content: json({ type: 'object' }) },
          ...problems(),
        },
      },
    },
    '/docs': {
      get: {
        tags,
        operationId: 'getDocs',
        summary: 'Swagger UI for this document; needs no internet',
        responses: { '200': { description: 'The page', content: { 'text/html': binary } }, ...problems() },
      },
    },
    '/docs/assets/{name}': {
      get: {
        tags,
        operationId: 'getDocsAsset',
        summary: 'A script, stylesheet or icon of the Swagger UI page',
        parameters: [
          { name: 'name', in: 'path', required: true, schema: { enum: Object.keys(SWAGGER_ASSETS) } },
        ],
        responses: {
          '200': {
            description: 'The asset',
            content: Object.fromEntries(Object.values(SWAGGER_ASSETS).map((a) => [a.type, binary])),
          },
          ...problems(404),
        },
      },
    },
  };
}

/** The error handler can answer 500 on any route, so every operation documents it. */
function withInternalError(item: PathItem): PathItem {
  const out: PathItem = {};
  for (const [method, op] of Object.entries(item)) {
    const responses = (op.responses ?? {}) as Schema;
    out[method] = { ...op, responses: { ...responses, ...(responses['500'] ? {} : problems()) } };
  }
  return out;
}

export interface OpenApiInput {
  resources: readonly ResourceDescriptor[];
  /** Hand-written operations (health, custom actions), merged into the generated CRUD paths. */
  paths?: Record<string, PathItem>;
  /** Hand-written component schemas the extra paths refer to. */
  schemas?: Record<string, unknown>;
  version: string;
  /**
   * When given, the API needs a key: operations it calls public get `security: []`, every other
   * one documents 401, 403 and 429.
   */
  isPublic?: (method: string, path: string) => boolean;
  /** What an entity's hooks add to its CRUD operations (ResourceHooks.docs), by entity name. */
  crudDocs?: Record<string, CrudDocs | undefined>;
}

const SECURITY_SCHEMES = {
  bearer: {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API key (slc_...) with scope read (GET), write (changes, sync, test) or admin (everything).',
  },
  basic: {
    type: 'http',
    scheme: 'basic',
    description: 'Any user name, the API key as password (for browsers).',
  },
};

/** Marks public operations and adds the auth and rate-limit problems to every other one. */
function withSecurity(
  item: PathItem,
  path: string,
  isPublic: (method: string, path: string) => boolean,
): PathItem {
  const out: PathItem = {};
  for (const [method, op] of Object.entries(item)) {
    if (isPublic(method.toUpperCase(), path)) out[method] = { ...op, security: [] };
    else {
      const responses = { ...(op.responses as Schema) };
      for (const [status, response] of Object.entries(problems(401, 403, 429)))
        responses[status] ??= response;
      out[method] = { ...op, responses };
    }
  }
  return out;
}

export function buildOpenApi({
  resources,
  paths = {},
  schemas: extraSchemas = {},
  version,
  isPublic,
  crudDocs = {},
}: OpenApiInput): Schema {
  const schemas: Record<string, unknown> = { Problem: problemSchema, Pagination: paginationSchema };
  for (const [name, schema] of Object.entries(extraSchemas)) schemas[name] = toComponent(schema);
  const allPaths: Record<string, PathItem> = {};
  for (const r of resources) {
    schemas[r.entity] = toComponent(r.schemas.response);
    schemas[`${r.entity}Create`] = toComponent(r.schemas.create);
    schemas[`${r.entity}Update`] = toComponent(r.schemas.update);
    schemas[`${r.entity}List`] = toComponent(r.schemas.list);
    for (const [p, item] of Object.entries(crudPaths(r, crudDocs[r.entity])))
      allPaths[p] = { ...allPaths[p], ...item };
  }
  for (const [p, item] of Object.entries({ ...paths, ...docsPaths() }))
    allPaths[p] = { ...allPaths[p], ...withInternalError(item) };
  if (isPublic)
    for (const [p, item] of Object.entries(allPaths)) allPaths[p] = withSecurity(item, p, isPublic);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sluice',
      version,
      description:
        'Register data sources, test them, and sync their data into a raw landing zone. Errors are RFC 9457 problem+json.',
    },
    ...(isPublic ? { security: [{ bearer: [] }, { basic: [] }] } : {}),
    paths: allPaths,
    components: { schemas, ...(isPublic ? { securitySchemes: SECURITY_SCHEMES } : {}) },
  };
}
