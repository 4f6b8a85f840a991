import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import openapiTS, { astToString } from 'openapi-typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');

/**
 * A user's TypeScript client, end to end: openapi-typescript (default options) turns the served
 * /openapi.json into types, test/typed-client/client.ts uses them through openapi-fetch (default
 * options) and must compile under `tsc --strict`, then it runs against the real API and an
 * in-process worker: create a source with metadata, update one field, test, sync, poll the job,
 * read the runs.
 */
describe('a typed client generated from /openapi.json', () => {
  let api: TestApi;
  let work: string;
  let files: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'sluice-typed-client-'));
    files = join(work, 'files');
    await mkdir(files);
    await writeFile(join(files, 'orders.csv'), 'id,amount\n1,10\n2,20\n3,30\n');
    api = await startTestApi({ env: { FILE_ROOTS: files } });
    await api.startWorker();
  });
  afterAll(async () => {
    await api?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  // tsc on the generated types takes a few seconds, more on a loaded machine: a bound, not a measure.
  it(
    'compiles under tsc --strict and creates, updates, tests, syncs, polls and reads runs',
    { timeout: 120_000 },
    async () => {
      const doc = await api.get('/openapi.json');
      expect(doc.status).toBe(200);
      const project = join(work, 'client');
      await mkdir(project);
      await writeFile(join(project, 'schema.ts'), astToString(await openapiTS(doc.body)));
      await copyFile(join(ROOT, 'test/typed-client/client.ts'), join(project, 'client.ts'));
      await symlink(join(ROOT, 'node_modules'), join(project, 'node_modules'), 'dir');
      await writeFile(join(project, 'package.json'), JSON.stringify({ type: 'module' }));
      await writeFile(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            target: 'ES2022',
            lib: ['ES2022', 'DOM'],
            module: 'ESNext',
            moduleResolution: 'Bundler',
            // Only the libraries' own .d.ts are skipped; the generated schema.ts is checked.
            skipLibCheck: true,
            outDir: 'out',
          },
          files: ['client.ts', 'schema.ts'],
        }),
      );
      const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
      const compiled = await run(process.execPath, [tsc, '-p', project]).then(
        () => '',
        (err: { stdout?: string; stderr?: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}`,
      );
      expect(compiled, 'tsc --strict on the client').toBe('');

      // Typed loosely here: client.ts is compiled only in its own project, against the generated types.
      const client = (await import(pathToFileURL(join(project, 'out/client.js')).href)) as {
        run(baseUrl: string, token: string, fileUrl: string): Promise<Record<string, unknown>>;
      };
      const outcome = await client.run(
        api.baseUrl,
        api.adminToken,
        pathToFileURL(join(files, 'orders.csv')).href,
      );

      expect(outcome.createdStatus).toBe(201);
      expect(outcome.metadata).toEqual({
        format: 'csv',
        delimiter: ',',
        header: true,
        owner: 'typed-client',
      });
      // The update sent one field; the rest kept their stored value.
      expect(outcome.afterUpdate).toEqual({ refresh_interval: 120, is_active: true, sync_mode: 'append' });
      expect(outcome.test).toMatchObject({ ok: true });
      expect(outcome.jobState).toBe('completed');
      expect(outcome.syncResult).toMatchObject({ status: 'success', records: 3 });
      expect(outcome.runs).toEqual([{ status: 'success', records: 3 }]);
    },
  );
});
