import { compileErrors, validate } from '@readme/openapi-parser';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_QUEUES_PATH } from '../../src/admin/admin-board';
import { startTestApi, type TestApi } from '../helpers/api-harness';

/** /openapi.json against a real OpenAPI 3.1 validator, ajv, the routes the app serves and its real answers. */
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** Base URI under which ajv holds the document, so `#/components/schemas/...` refs resolve as written. */
const DOC_ID = 'https://sluice.invalid/openapi.json';

interface Operation {
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}
interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation | unknown[]> & { parameters?: unknown[] }>;
  components: { schemas: Record<string, object> };
}

function operations(doc: OpenApiDoc): { key: string; op: Operation; pathParams: unknown[] }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.includes(method))
      .map(([method, op]) => ({
        key: `${method.toUpperCase()} ${path}`,
        op: op as Operation,
        pathParams: item.parameters ?? [],
      })),
  );
}

/** Every method + path the app's routers answer, in OpenAPI's spelling (`:id` → `{id}`). */
function servedRoutes(api: TestApi): string[] {
  const routes = new Set<string>();
  for (const router of api.container.routers)
    for (const layer of router.stack) {
      if (typeof layer.path !== 'string')
        throw new Error(`a RegExp route cannot be documented: ${layer.path}`);
      const path = layer.path.replace(/:(\w+)/g, '{$1}');
      for (const method of layer.methods) {
        // The router answers HEAD wherever it answers GET; OpenAPI leaves that implicit.
        if (method === 'HEAD' && layer.methods.includes('GET')) continue;
        routes.add(`${method} ${path}`);
      }
    }
  // The job dashboard is Bull Board's middleware, not a router: its entry page is documented.
  routes.add(`GET ${ADMIN_QUEUES_PATH}`);
  return [...routes].sort();
}

describe('OpenAPI document at /openapi.json', () => {
  let api: TestApi;
  let doc: OpenApiDoc;
  let ajv: Ajv2020;
  const schema = (name: string): ValidateFunction => {
    const validateFn = ajv.getSchema(`${DOC_ID}#/components/schemas/${name}`);
    if (!validateFn) throw new Error(`no component schema ${name}`);
    return validateFn;
  };

  beforeAll(async () => {
    api = await startTestApi();
    const res = await api.get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    doc = res.body as OpenApiDoc;

    ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true, allErrors: true });
    addFormats.default(ajv);
    // Annotation here: the API's own validator enforces it (src/http/validation.ts).
    ajv.addKeyword('x-jsonb');
    // Only the components go in, under the document's own pointer, so refs resolve exactly as written.
    ajv.addKeyword('components');
    ajv.addSchema({ $id: DOC_ID, components: doc.components });
  });
  afterAll(() => api?.close());

  it('is OpenAPI 3.1.0 and is the document the container built', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBe('Sluice');
    expect(doc).toEqual(JSON.parse(JSON.stringify(api.container.openapi)));
  });

  it('passes the OpenAPI 3.1 validator of @readme/openapi-parser', async () => {
    // validate() dereferences in place: give it a copy.
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
    expect(result.specification).toBe('OpenAPI');
  });

  it('the validator does reject a broken document (so the check above can fail)', async () => {
    const broken = structuredClone(doc) as unknown as { paths: Record<string, Record<string, unknown>> };
    broken.paths['/raw-data-sources']!.get = { responses: { '200': { content: 'nope' } } };
    expect((await validate(broken as never)).valid).toBe(false);
  });

  it('documents every route the app serves, with its method, and no route it does not serve', () => {
    const served = servedRoutes(api);
    const documented = operations(doc)
      .map((o) => o.key)
      .sort();
    expect(served.length).toBeGreaterThanOrEqual(8);
    expect(documented).toEqual(served);
  });

  it('documents 500 on every operation and a 4xx on every operation that takes input', () => {
    const missing: string[] = [];
    for (const { key, op, pathParams } of operations(doc)) {
      const statuses = Object.keys(op.responses);
      if (!statuses.includes('500')) missing.push(`${key}: 500`);
      // An operation without parameters or body (GET /healthz) has no client error to document.
      const takesInput = (op.parameters?.length ?? 0) + pathParams.length > 0 || op.requestBody;
      if (takesInput && !statuses.some((s) => /^4\d\d$/.test(s))) missing.push(`${key}: any 4xx`);
    }
    expect(missing).toEqual([]);
  });

  it('documents every error response as problem+json with the Problem schema', () => {
    const wrong: string[] = [];
    for (const { key, op } of operations(doc))
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        const ref = response.content?.['application/problem+json']?.schema?.$ref;
        if (ref !== '#/components/schemas/Problem') wrong.push(`${key} ${status}`);
      }
    expect(wrong).toEqual([]);
  });

  it('compiles every component schema in ajv (JSON Schema 2020-12, strict)', () => {
    const names = Object.keys(doc.components.schemas);
    expect(names).toEqual(expect.arrayContaining(['Problem', 'Pagination', 'RawDataSource']));
    for (const name of names) expect(() => schema(name), name).not.toThrow();
  });

  it("describes the API's real answers: a created source, a page, and problems", async () => {
    const created = await api.post('/raw-data-sources', {
      name: 'openapi-check',
      source_type: 'database',
      connection_string: 'postgres://reader:OpenApi-S3cret@127.0.0.1:5432/warehouse',
      schema_definition: { type: 'object' },
      metadata: { table: 'events' },
    });
    expect(created.status, created.text).toBe(201);
    const asSource = schema('RawDataSource');
    expect(asSource(created.body), ajv.errorsText(asSource.errors)).toBe(true);
    // The schema is strict enough to notice a wrong answer.
    expect(asSource({ ...created.body, surprise: 1 })).toBe(false);
    expect(asSource({ ...created.body, sync_status: 'lost' })).toBe(false);

    const page = await api.get('/raw-data-sources?limit=5');
    const asList = schema('RawDataSourceList');
    expect(asList(page.body), ajv.errorsText(asList.errors)).toBe(true);

    const asProblem = schema('Problem');
    for (const res of [
      await api.get('/raw-data-sources/00000000-0000-4000-8000-000000000000'),
      await api.get('/raw-data-sources/not-a-uuid'),
      await api.post('/raw-data-sources', { name: '' }),
      await api.get('/docs/assets/constructor'),
    ]) {
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(asProblem(res.body), `${res.text}: ${ajv.errorsText(asProblem.errors)}`).toBe(true);
    }
  });
});
