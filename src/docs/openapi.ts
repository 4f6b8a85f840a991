import type { CrudDocs, ResourceDescriptor } from '../http/crud/resource';
import { decorateOperations } from './operation-conventions';
import { API_TAGS, type TagDoc } from './openapi-tags';
import { headers, problemResponse, problemSchema, problems, RESPONSE_HEADERS } from './problem-responses';
import { SWAGGER_ASSETS } from './swagger-assets';

export { problemResponse, problems, problemSchema };

type Schema = Record<string, unknown>;
export type Operation = Schema;
export type PathItem = Record<string, Operation>;

/** A reference to a component schema. */
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

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

export const paginationSchema = {
  type: 'object',
  required: ['total', 'limit', 'offset'],
  properties: { total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } },
};

export const json = (schema: object) => ({ 'application/json': { schema } });
/** The `{id}` path parameter of every resource path. */
export const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
/** A contract's query schema as OpenAPI query parameters, each optional. */
export const queryParams = (schema: { properties: Record<string, unknown> }) =>
  Object.entries(schema.properties).map(([name, s]) => ({
    name,
    in: 'query',
    required: false,
    schema: toComponent(s),
  }));
/** A `{data, pagination}` page of a component. */
export const pageOf = (item: string) => ({
  type: 'object',
  additionalProperties: false,
  required: ['data', 'pagination'],
  properties: { data: { type: 'array', items: ref(item) }, pagination: ref('Pagination') },
});

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
  const filters = Object.entries(r.filters).map(([param, field]) => `${param} (${field})`);
  const prefixes = Object.entries(r.prefixFilters ?? {}).map(([param, field]) => `${param} (${field})`);
  const examples = docs.createExamples;
  return {
    [r.path]: {
      get: {
        tags: [tag],
        operationId: `list${r.entity}`,
        summary: `List ${r.entity} items, newest first`,
        description:
          docs.list?.description ??
          `A page of ${r.entity} items, newest first: \`limit\` (at most 100) from \`offset\`; ` +
            `\`pagination.total\` counts every match.` +
            (filters.length ? ` Filters, each an exact match: ${filters.join(', ')}.` : '') +
            (prefixes.length ? ` Prefix search, case-insensitive: ${prefixes.join(', ')}.` : ''),
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
        description:
          `Creates a ${r.entity} from the fields given; fields left out take their default. ` +
          'Secrets are stored encrypted and only ever returned masked. A taken unique field is 409.',
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: ref(`${r.entity}Create`), ...(examples ? { examples } : {}) },
          },
        },
        responses: {
          '201': {
            description: 'Created',
            headers: headers('Location'),
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
        description: `The ${r.entity} with this id, secrets masked.`,
        parameters: [idParam],
        responses: { '200': { description: 'Found', content: json(ref(r.entity)) }, ...problems(400, 404) },
      },
      put: {
        tags: [tag],
        operationId: `update${r.entity}`,
        summary: `Update a ${r.entity}; omitted fields keep their value`,
        description:
          'A partial update: send only the fields to change. A field left out keeps its stored value ' +
          '(it is not reset to its default); null clears a nullable field.',
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
        description: docs.delete?.description ?? `Deletes the ${r.entity}.`,
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

const anyJson = { type: 'object', additionalProperties: true };

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
        description: 'The document this page describes; generate clients from it.',
        responses: {
          '200': { description: 'The document', content: json(anyJson) },
          ...problems(),
        },
      },
    },
    '/docs': {
      get: {
        tags,
        operationId: 'getDocs',
        summary: 'Swagger UI for this document; needs no internet',
        description: 'Its scripts and styles are served from this process (/docs/assets).',
        responses: { '200': { description: 'The page', content: { 'text/html': binary } }, ...problems() },
      },
    },
    '/docs/assets/{name}': {
      get: {
        tags,
        operationId: 'getDocsAsset',
        summary: 'A script, stylesheet or icon of the Swagger UI page',
        description: 'Cached for a day; any other name is 404.',
        parameters: [
          {
            name: 'name',
            in: 'path',
            required: true,
            schema: { type: 'string', enum: Object.keys(SWAGGER_ASSETS) },
          },
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

export interface OpenApiInput {
  resources: readonly ResourceDescriptor[];
  /** Hand-written operations (health, custom actions), merged into the generated CRUD paths. */
  paths?: Record<string, PathItem>;
  /** Hand-written component schemas the extra paths refer to. */
  schemas?: Record<string, unknown>;
  /** Tags of hand-written operations beyond API_TAGS, each with its description. */
  tags?: readonly TagDoc[];
  version: string;
  /**
   * When given, the API needs a key: operations it calls public get `security: []`, every other
   * one documents 401, 403 and 429.
   */
  isPublic?: (method: string, path: string) => boolean;
  /** What an entity's hooks add to its CRUD operations (ResourceHooks.docs), by entity name. */
  crudDocs?: Record<string, CrudDocs | undefined>;
  /** info.contact: who answers questions about this API. */
  contact?: { name: string; url?: string; email?: string };
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

/** `schema` with its properties replaced where `fields` documents them (null kept where allowed). */
function withFieldDocs(schema: unknown, fields: CrudDocs['fields']): unknown {
  const s = schema as { properties?: Record<string, { type?: unknown }> };
  if (!fields || !s.properties) return schema;
  const properties = { ...s.properties };
  for (const [name, doc] of Object.entries(fields)) {
    const current = properties[name];
    if (!current) continue;
    const nullable = Array.isArray(current.type) && current.type.includes('null');
    properties[name] = (nullable ? { anyOf: [doc, { type: 'null' }] } : doc) as { type?: unknown };
  }
  return { ...s, properties };
}

export function buildOpenApi({
  resources,
  paths = {},
  schemas: extraSchemas = {},
  tags = [],
  version,
  isPublic,
  crudDocs = {},
  contact = { name: 'Sluice maintainers' },
}: OpenApiInput): Schema {
  const schemas: Record<string, unknown> = { Problem: problemSchema, Pagination: paginationSchema };
  for (const [name, schema] of Object.entries(extraSchemas)) schemas[name] = toComponent(schema);
  const allPaths: Record<string, PathItem> = {};
  for (const r of resources) {
    const docs = crudDocs[r.entity];
    for (const [name, schema] of Object.entries(docs?.schemas ?? {})) schemas[name] = toComponent(schema);
    schemas[r.entity] = withFieldDocs(toComponent(r.schemas.response), docs?.fields);
    schemas[`${r.entity}Create`] = withFieldDocs(toComponent(r.schemas.create), docs?.fields);
    schemas[`${r.entity}Update`] = withFieldDocs(toComponent(r.schemas.update), docs?.fields);
    schemas[`${r.entity}List`] = toComponent(r.schemas.list);
    for (const [p, item] of Object.entries(crudPaths(r, docs))) allPaths[p] = { ...allPaths[p], ...item };
  }
  for (const [p, item] of Object.entries({ ...paths, ...docsPaths() }))
    allPaths[p] = { ...allPaths[p], ...item };
  for (const [p, item] of Object.entries(allPaths)) allPaths[p] = decorateOperations(item, p, isPublic);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sluice',
      version,
      description:
        'Register data sources, test them, and sync their data into a raw landing zone. Errors are ' +
        'RFC 9457 problem+json, each with a stable `type`. Every response carries X-Request-Id; ' +
        'authenticated ones carry RateLimit-Limit, -Remaining and -Reset, and a 429 says Retry-After. ' +
        'A method a path does not take is 405 with Allow.',
      // The project by default; a deployment can name its own operators (OpenApiInput.contact).
      contact,
    },
    servers: [{ url: '/', description: 'This Sluice API: the origin that served this document' }],
    tags: [...API_TAGS, ...tags],
    ...(isPublic ? { security: [{ bearer: [] }, { basic: [] }] } : {}),
    paths: allPaths,
    components: {
      schemas,
      headers: RESPONSE_HEADERS,
      ...(isPublic ? { securitySchemes: SECURITY_SCHEMES } : {}),
    },
  };
}
