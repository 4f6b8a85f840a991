import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate, type GenerateResult } from '../../src/codegen/generator';
import { HEADER } from '../../src/codegen/header';
import { loadSpec, validateSpec, type SpecFile } from '../../src/codegen/spec';
import type { AnyResource } from '../../src/http/crud/resource';
import { expectInvalid, startTestApi, type TestApi } from '../helpers/api-harness';
import { ADMIN_DATABASE_URL } from '../helpers/test-env';

/**
 * Adding an entity to the spec gives it working CRUD with no hand-written code: a spec with
 * RawDataSource plus Widget is generated into a temporary folder inside the project (so the
 * generated code resolves node_modules and the runtime like src/generated does), imported, served,
 * and exercised; then the contract tests generated for Widget run in a vitest of their own.
 */
const ROOT = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
const TMP = join(ROOT, '.tmp', `gen-${process.pid}-${randomBytes(4).toString('hex')}`);
// The child vitest builds its own template database, so it never rebuilds the one this run uses.
const CHILD_TEMPLATE = `sluice_test_tpl_gen_${process.pid}_${randomBytes(3).toString('hex')}`;

const widget = {
  name: 'Widget',
  layer: 'domain',
  fields: [
    { name: 'id', type: 'uuid', primary_key: true },
    { name: 'name', type: 'string', required: true, max_length: 40, unique: true },
    { name: 'colour', type: 'enum', values: ['red', 'green', 'blue'] },
    { name: 'size', type: 'integer', min: 1, max: 10, default: 5 },
    { name: 'in_stock', type: 'boolean', default: true },
    { name: 'api_token', type: 'string', sensitive: true },
    { name: 'attributes', type: 'json' },
    { name: 'created_at', type: 'datetime', auto_now_add: true },
    { name: 'updated_at', type: 'datetime', auto_now: true },
  ],
  indexes: [{ fields: ['colour'] }],
  api: { filters: { colour: 'colour', name: 'name' } },
};

const TOKEN = 'Widget-T0ken-Secret';
const W = '/widgets';

describe('a second entity in the spec gets working CRUD with no hand-written code', () => {
  let spec: SpecFile;
  let written: string[];
  let secondRun: GenerateResult;
  let api: TestApi;

  beforeAll(async () => {
    const project = await loadSpec(join(ROOT, 'specs/entities.json'));
    spec = validateSpec({ entities: [...project.entities, widget] });
    // RawDataSource already has its migrations in the project, and the record of what they built
    // (the shape snapshot): the generator must not write another for it.
    await mkdir(join(TMP, 'migrations'), { recursive: true });
    await mkdir(join(TMP, 'specs'), { recursive: true });
    const snapshot = join('specs', 'entities.snapshot.json');
    await copyFile(join(ROOT, snapshot), join(TMP, snapshot));
    const recorded = JSON.parse(await readFile(join(ROOT, snapshot), 'utf8')) as {
      tables: Record<string, { migrations: string[] }>;
    };
    const landed = recorded.tables.raw_data_sources!.migrations;
    for (const name of landed) await copyFile(join(ROOT, 'migrations', name), join(TMP, 'migrations', name));
    written = (await generate(spec, { outDir: TMP, projectRoot: ROOT })).written;
    secondRun = await generate(spec, { outDir: TMP, projectRoot: ROOT });
    // The copies only stood in for the landed migrations, which the test database already has.
    for (const name of landed) await rm(join(TMP, 'migrations', name));

    const generated = (await import(pathToFileURL(join(TMP, 'src/generated/index.ts')).href)) as {
      resources: AnyResource[];
    };
    api = await startTestApi({ resources: generated.resources, migrationsDir: join(TMP, 'migrations') });
  }, 120_000);

  afterAll(async () => {
    await api?.close();
    await rm(TMP, { recursive: true, force: true });
    const admin = knexFactory({ client: 'pg', connection: ADMIN_DATABASE_URL, pool: { min: 0, max: 1 } });
    try {
      await admin.raw(`DROP DATABASE IF EXISTS ${CHILD_TEMPLATE} WITH (FORCE)`);
    } finally {
      await admin.destroy();
    }
  });

  it('generates the Widget files, one new migration, each marked generated; a second run writes nothing', async () => {
    const widgetFiles = written.filter((p) => /widget/.test(p)).sort();
    expect(widgetFiles).toEqual([
      expect.stringMatching(/^migrations\/\d{14}_create_widgets\.ts$/),
      'src/generated/widget.model.ts',
      'src/generated/widget.resource.ts',
      'src/generated/widget.schemas.ts',
      'src/generated/widget.types.ts',
      'test/contract/widget.contract.test.ts',
    ]);
    expect(written.filter((p) => p.startsWith('migrations/'))).toHaveLength(1);
    // The shape snapshot is JSON (no comments); every other generated file starts with the header.
    for (const path of written.filter((p) => p.endsWith('.ts')))
      expect((await readFile(join(TMP, path), 'utf8')).split('\n')[0], path).toBe(HEADER);
    expect(secondRun.written).toEqual([]);
    expect(secondRun.removed).toEqual([]);
    expect(secondRun.unchanged).toEqual(
      expect.arrayContaining(written.filter((p) => !p.startsWith('migrations/'))),
    );
  });

  it('creates (201, Location, defaults, masked secret), gets, lists, updates and deletes a Widget', async () => {
    const created = await api.post(W, {
      name: 'sprocket',
      colour: 'red',
      api_token: TOKEN,
      attributes: { teeth: 12 },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.headers.get('location')).toBe(`${W}/${created.body.id}`);
    expect(created.body).toMatchObject({
      name: 'sprocket',
      colour: 'red',
      size: 5,
      in_stock: true,
      api_token: '****',
      has_api_token: true,
      attributes: { teeth: 12 },
    });
    expect(created.text).not.toContain(TOKEN);
    const id = created.body.id as string;

    expect((await api.get(`${W}/${id}`)).body).toEqual(created.body);
    expect((await api.get(`${W}/${id.toUpperCase()}`)).status).toBe(200);

    const updated = await api.put(`${W}/${id}`, { size: 10, in_stock: false, attributes: null });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.body).toMatchObject({
      name: 'sprocket',
      size: 10,
      in_stock: false,
      attributes: null,
      has_api_token: true,
    });

    const stored = await api.knex.raw('select row_to_json(t)::text as row from widgets t where id = ?', [id]);
    expect(stored.rows[0].row).not.toContain(TOKEN);

    expect((await api.del(`${W}/${id}`)).status).toBe(204);
    expect((await api.get(`${W}/${id}`)).status).toBe(404);
    expect((await api.del(`${W}/${id}`)).status).toBe(404);
  });

  it('filters the list by the spec filters and paginates', async () => {
    await Promise.all(
      ['g1', 'g2', 'b1'].map((name) =>
        api.post(W, { name, colour: name.startsWith('g') ? 'green' : 'blue' }),
      ),
    );
    const green = await api.get(`${W}?colour=green&limit=100`);
    expect(green.status).toBe(200);
    expect(green.body.data.map((w: { name: string }) => w.name).sort()).toEqual(['g1', 'g2']);
    expect(green.body.pagination).toEqual({ total: 2, limit: 100, offset: 0 });
    const byName = await api.get(`${W}?name=b1`);
    expect(byName.body.data).toHaveLength(1);
    const page = await api.get(`${W}?colour=green&limit=1&offset=1`);
    expect(page.body.data).toHaveLength(1);
    expect(page.body.pagination.total).toBe(2);
    expectInvalid(await api.get(`${W}?colour=purple`), 'colour');
    expectInvalid(await api.get(`${W}?name=%00`), 'name');
    expectInvalid(await api.get(`${W}?in_stock=true`), 'in_stock');
    expectInvalid(await api.get(`${W}?limit=101`), 'limit');
  });

  it('answers a duplicate name with a 409 naming the field, on POST and PUT', async () => {
    expect((await api.post(W, { name: 'unique-one' })).status).toBe(201);
    const dup = await api.post(W, { name: 'unique-one' });
    expect(dup.status).toBe(409);
    expect(dup.body.errors).toEqual([{ pointer: '/name', in: 'body', message: 'is already taken' }]);
    const other = (await api.post(W, { name: 'unique-two' })).body;
    expect((await api.put(`${W}/${other.id}`, { name: 'unique-one' })).status).toBe(409);
  });

  it('validates every constraint of the spec with a 400 naming the field', async () => {
    expectInvalid(await api.post(W, {}), '/name', 'is required');
    expectInvalid(await api.post(W, { name: '' }), '/name');
    expect((await api.post(W, { name: 'n'.repeat(40) })).status).toBe(201);
    expectInvalid(await api.post(W, { name: 'n'.repeat(41) }), '/name');
    expectInvalid(
      await api.post(W, { name: 'c', colour: 'purple' }),
      '/colour',
      'must be one of: red, green, blue',
    );
    expectInvalid(await api.post(W, { name: 's0', size: 0 }), '/size');
    expectInvalid(await api.post(W, { name: 's11', size: 11 }), '/size');
    expectInvalid(await api.post(W, { name: 's', size: '5' }), '/size', 'must be integer');
    expectInvalid(await api.post(W, { name: 'b', in_stock: 'yes' }), '/in_stock', 'must be boolean');
    expectInvalid(await api.post(W, { name: 'j', attributes: [1] }), '/attributes');
    expectInvalid(
      await api.post(W, { name: 'r', created_at: '2026-01-01T00:00:00Z' }),
      '/created_at',
      'is read-only',
    );
    expectInvalid(await api.post(W, { name: 'u', weight: 3 }), '/weight', 'is not a known field');
    const many = await api.post(W, { name: 7, colour: 'x', size: 99 });
    expect(many.body.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual([
      '/colour',
      '/name',
      '/size',
    ]);
    expectInvalid(await api.get(`${W}/not-a-uuid`), 'id');
  });

  it('is in the OpenAPI document next to RawDataSource', async () => {
    const doc = (await api.get('/openapi.json')).body;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([W, `${W}/{id}`, '/raw-data-sources']));
    expect(doc.components.schemas.Widget.properties).toHaveProperty('has_api_token');
  });

  it('passes its own generated contract tests, run by a separate vitest', async () => {
    const report = join(TMP, 'contract-report.json');
    // A config of its own, rooted in the temporary folder: the project's config splits its files into
    // named projects whose include patterns are relative to the repository root.
    const config = join(TMP, 'vitest.config.mjs');
    await writeFile(
      config,
      `export default ${JSON.stringify({
        test: {
          root: TMP,
          include: ['test/contract/widget.contract.test.ts'],
          globalSetup: [join(ROOT, 'test/global-setup.ts')],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      })};\n`,
    );
    const run = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          join(ROOT, 'node_modules/vitest/vitest.mjs'),
          'run',
          '--config',
          config,
          '--root',
          TMP,
          '--coverage.enabled=false',
          '--reporter=json',
          `--outputFile=${report}`,
        ],
        { cwd: ROOT, timeout: 240_000, env: { ...process.env, TEST_TEMPLATE_DATABASE: CHILD_TEMPLATE } },
        (error, stdout, stderr) =>
          resolve({ code: error ? (error.code as number | null) : 0, output: stdout + stderr }),
      );
    });
    const result = JSON.parse(await readFile(report, 'utf8')) as {
      numTotalTests: number;
      numPassedTests: number;
      numFailedTests: number;
      testResults: { name: string }[];
    };
    expect(result.testResults.map((r) => r.name)).toEqual([
      join(TMP, 'test/contract/widget.contract.test.ts'),
    ]);
    const generatedTests = (await readFile(join(TMP, 'test/contract/widget.contract.test.ts'), 'utf8')).match(
      /\bit\(/g,
    )!;
    expect(result.numTotalTests).toBe(generatedTests.length);
    expect(result.numTotalTests).toBeGreaterThanOrEqual(20);
    expect(result.numFailedTests, run.output.slice(-3000)).toBe(0);
    expect(result.numPassedTests).toBe(result.numTotalTests);
    expect(run.code, run.output.slice(-3000)).toBe(0);
  }, 300_000);
});
