import {
  Document,
  Spectral,
  type ISpectralDiagnostic,
  type RulesetDefinition,
} from '@stoplight/spectral-core';
import { Json } from '@stoplight/spectral-parsers';
import { oas } from '@stoplight/spectral-rulesets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';

/**
 * The served /openapi.json under Spectral's `spectral:oas` ruleset (recommended rules, as the CLI's
 * `extends: spectral:oas`), run in-process from pinned packages so it works offline: no errors, no
 * warnings. Each finding names the operation it is about, so whoever added that operation knows
 * what to declare (see "OpenAPI" in docs/ARCHITECTURE.md).
 */
const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
const SEVERITY = ['error', 'warning', 'info', 'hint'];

/** "GET /raw-data-sources (listRawDataSource)" for a finding under an operation, else its JSON path. */
function where(
  d: ISpectralDiagnostic,
  doc: { paths: Record<string, Record<string, { operationId?: string }>> },
) {
  const [root, path, method] = d.path.map(String);
  if (root === 'paths' && path && method && HTTP_METHODS.has(method)) {
    const id = doc.paths[path]?.[method]?.operationId;
    return `${method.toUpperCase()} ${path}${id ? ` (${id})` : ''}`;
  }
  return d.path.join('.') || '(document)';
}

export async function lintOpenApi(doc: object): Promise<ISpectralDiagnostic[]> {
  const spectral = new Spectral();
  spectral.setRuleset({ extends: [[oas as RulesetDefinition, 'recommended']] });
  return spectral.run(new Document(JSON.stringify(doc, null, 2), Json, '/openapi.json'));
}

describe('Spectral spectral:oas on /openapi.json', () => {
  let api: TestApi;
  let doc: { paths: Record<string, Record<string, { operationId?: string }>> };

  beforeAll(async () => {
    // The file example names a file under /srv/exports: that root must be allowed to create it.
    api = await startTestApi({ env: { FILE_ROOTS: '/srv/exports' } });
    const res = await api.get('/openapi.json');
    expect(res.status).toBe(200);
    doc = res.body;
  });
  afterAll(() => api?.close());

  it('finds no error and no warning (each finding names its operation)', async () => {
    const findings = (await lintOpenApi(doc))
      .filter((d) => d.severity <= 1)
      .map(
        (d) => `${SEVERITY[d.severity]} ${d.code} at ${where(d, doc)}: ${d.message} [${d.path.join('.')}]`,
      );
    expect(findings, findings.join('\n')).toEqual([]);
  });

  it('does report an operation that declares too little (so the check above can fail)', async () => {
    const broken = structuredClone(doc);
    broken.paths['/raw-data-sources/{id}/notes'] = {
      post: {
        operationId: 'addNote',
        tags: ['Notes'],
        responses: { '200': { description: 'ok' } },
      } as never,
    };
    const findings = (await lintOpenApi(broken)).filter((d) => d.severity <= 1);
    const about = findings.map((d) => `${d.code} ${where(d, broken)}`);
    expect(about).toEqual(
      expect.arrayContaining([
        'operation-description POST /raw-data-sources/{id}/notes (addNote)',
        'operation-tag-defined POST /raw-data-sources/{id}/notes (addNote)',
      ]),
    );
  });

  it('shows a create example per source type, each accepted by the API as it stands', async () => {
    const op = (doc.paths['/raw-data-sources'] as unknown as { post: CreateOperation }).post;
    const examples = op.requestBody.content['application/json']?.examples ?? {};
    expect(Object.keys(examples).sort()).toEqual(['api', 'database', 'file', 'stream', 'webhook']);
    for (const [type, example] of Object.entries(examples)) {
      const res = await api.post('/raw-data-sources', example.value);
      expect(res.status, `${type}: ${res.text}`).toBe(201);
      expect(res.body.metadata).toEqual((example.value as { metadata: unknown }).metadata);
    }
  });
});

interface CreateOperation {
  requestBody: { content: Record<string, { examples: Record<string, { value: object }> }> };
}
