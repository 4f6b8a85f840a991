import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { exitWithin, killAll, logTailsOnFailure, sleep, track, type Child } from './process-kit';

/**
 * The `sluice` command line (clients/typescript) run as a child process, the way a person or a
 * script runs it, against the real API and a worker: exit codes, --json shapes, tables, profiles.
 */
const ROOT = new URL('../../', import.meta.url).pathname;
// A tsx start is slow on a loaded 2-core machine: a bound, not a measure.
const CLI_MS = 60_000;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let api: TestApi;
let work: string;
let files: string;
let home: string;

function start(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'clients/typescript/src/cli/sluice.ts', ...args], {
    cwd: ROOT,
    // A clean environment: only what the command is meant to read.
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      SLUICE_URL: api.baseUrl,
      SLUICE_TOKEN: api.adminToken,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(`sluice ${args.slice(0, 2).join(' ')}`, proc);
}

async function sluice(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const child = start(args, env);
  const exit = await exitWithin(child, CLI_MS);
  if (!exit) throw new Error(`sluice ${args.join(' ')} still running after ${CLI_MS} ms: ${child.stderr()}`);
  return { code: exit.code, stdout: child.stdout(), stderr: child.stderr() };
}

const json = (r: Result) => JSON.parse(r.stdout) as Record<string, unknown>;
const jsonError = (r: Result) =>
  (JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { error: Record<string, unknown> }).error;

describe('the sluice command line against a running API and worker', () => {
  logTailsOnFailure();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'sluice-cli-'));
    files = join(work, 'files');
    home = join(work, 'home');
    await mkdir(files);
    await mkdir(home);
    await writeFile(join(files, 'orders.csv'), 'id,amount\n1,10\n2,20\n3,30\n');
    await writeFile(join(files, 'gone.csv'), 'id\n1\n');
    // One attempt: a sync that fails is failed at once, not retried with backoff.
    api = await startTestApi({ env: { FILE_ROOTS: files, SYNC_ATTEMPTS: '1' } });
    await api.startWorker();
  });
  afterAll(async () => {
    await killAll();
    await api?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the committed client document is the one the API serves', async () => {
    const served = await api.get('/openapi.json');
    const committed = JSON.parse(await readFile(join(ROOT, 'clients/typescript/src/openapi.json'), 'utf8'));
    expect(committed).toEqual(served.body);
  });

  it(
    'create → update → get → test → sync --wait → runs → export → delete, with --json shapes',
    { timeout: 300_000 },
    async () => {
      const fileUrl = `file://${join(files, 'orders.csv')}`;
      const created = await sluice([
        'sources',
        'create',
        '--json',
        '--name',
        'cli-orders',
        '--type',
        'file',
        '--connection',
        fileUrl,
        '--metadata',
        '{"format":"csv","header":true}',
      ]);
      expect(created.code, created.stderr).toBe(0);
      const source = json(created);
      expect(source).toMatchObject({
        name: 'cli-orders',
        source_type: 'file',
        refresh_interval: 3600,
        is_active: true,
      });
      const id = source.id as string;

      const updated = await sluice(['sources', 'update', id, '--interval', '120', '--json']);
      expect(updated.code, updated.stderr).toBe(0);
      expect(json(updated)).toMatchObject({ id, refresh_interval: 120, name: 'cli-orders', is_active: true });

      // For people: a FIELD/VALUE table.
      const shown = await sluice(['sources', 'get', id]);
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout).toMatch(/^FIELD\s+VALUE$/m);
      expect(shown.stdout).toMatch(/^refresh_interval\s+120$/m);

      const listed = await sluice(['sources', 'list', '--json']);
      expect(listed.code, listed.stderr).toBe(0);
      expect(json(listed)).toMatchObject({
        data: [{ id, name: 'cli-orders' }],
        pagination: { total: 1, offset: 0 },
      });

      const tested = await sluice(['test', id]);
      expect(tested.code, tested.stdout + tested.stderr).toBe(0);
      expect(tested.stdout).toMatch(/^STEP\s+STATUS\s+TOOK\s+CODE\s+MESSAGE$/m);
      expect(tested.stdout).toMatch(/^ok in \d+ ms$/m);

      const synced = await sluice(['sync', id, '--wait']);
      expect(synced.code, synced.stderr).toBe(0);
      // Progress on stderr, from queued to the end; the finished run on stdout.
      expect(synced.stderr).toMatch(/^queued run [0-9a-f-]{36} \(job \S+\)$/m);
      expect(synced.stderr).toMatch(/^run [0-9a-f-]{36} success, 3 records/m);
      expect(synced.stdout).toMatch(/^ID\s+STATUS\s+TRIGGER/m);
      expect(synced.stdout).toMatch(/ success\s+manual\s+1\s+3\s+0 /);

      const runs = await sluice(['runs', id, '--json']);
      expect(runs.code, runs.stderr).toBe(0);
      const runPage = json(runs) as { data: Record<string, unknown>[]; pagination: { total: number } };
      expect(runPage.pagination.total).toBe(1);
      expect(runPage.data[0]).toMatchObject({
        source_id: id,
        status: 'success',
        trigger: 'manual',
        records: 3,
      });

      const csvFile = join(work, 'orders-export.csv');
      const exported = await sluice(['records', 'export', id, '--format', 'csv', '--out', csvFile, '--json']);
      expect(exported.code, exported.stderr).toBe(0);
      const csv = (await readFile(csvFile, 'utf8')).trim().split('\n');
      expect(json(exported)).toEqual({
        file: csvFile,
        format: 'csv',
        bytes: Buffer.byteLength(csv.join('\n')) + 1,
      });
      expect(csv[0]).toBe('id,run_id,ingested_at,payload');
      expect(csv).toHaveLength(4);

      const ndjson = await sluice(['records', 'export', id]);
      expect(ndjson.code, ndjson.stderr).toBe(0);
      const lines = ndjson.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { payload: unknown });
      expect(lines.map((l) => l.payload)).toEqual([
        { id: '1', amount: '10' },
        { id: '2', amount: '20' },
        { id: '3', amount: '30' },
      ]);

      // Landed records: a plain delete is refused (409, exit 1) and says why; --purge deletes.
      const refused = await sluice(['sources', 'delete', id, '--json']);
      expect(refused.code).toBe(1);
      expect(jsonError(refused)).toMatchObject({ kind: 'api', exit_code: 1, status: 409 });
      const deleted = await sluice(['sources', 'delete', id, '--purge', '--json']);
      expect(deleted.code, deleted.stderr).toBe(0);
      expect(json(deleted)).toEqual({ id, deleted: true });
      const gone = await sluice(['sources', 'get', id]);
      expect(gone.code).toBe(3);
      expect(gone.stderr).toMatch(/^error: 404 /);
    },
  );

  it('a sync that fails exits 1 with the run’s error', { timeout: 120_000 }, async () => {
    const res = await api.post('/raw-data-sources', {
      name: 'cli-gone',
      source_type: 'file',
      connection_string: `file://${join(files, 'gone.csv')}`,
      metadata: { format: 'csv' },
    });
    expect(res.status, res.text).toBe(201);
    await unlink(join(files, 'gone.csv'));
    const synced = await sluice(['sync', res.body.id, '--wait', '--json']);
    expect(synced.code, synced.stderr).toBe(1);
    expect(json(synced)).toMatchObject({ id: expect.any(String), status: 'failed' });
    expect(jsonError(synced)).toMatchObject({ kind: 'failed', exit_code: 1 });
  });

  it(
    'exit codes: 3 not found, 4 bad token, 2 usage and invalid input, 5 unreachable',
    { timeout: 120_000 },
    async () => {
      const missing = await sluice(['sources', 'get', randomUUID(), '--json']);
      expect(missing.code).toBe(3);
      expect(jsonError(missing)).toMatchObject({ kind: 'api', status: 404, title: expect.any(String) });

      const badToken = await sluice(['sources', 'list'], { SLUICE_TOKEN: `slc_nope_${'b'.repeat(40)}` });
      expect(badToken.code).toBe(4);
      expect(badToken.stderr).toMatch(/^error: 401 /);

      const unknownOption = await sluice(['sources', 'list', '--bogus']);
      expect(unknownOption.code).toBe(2);
      const missingId = await sluice(['runs']);
      expect(missingId.code).toBe(2);
      expect(missingId.stderr).toContain('missing <id>');
      const wrongOption = await sluice(['sources', 'get', randomUUID(), '--purge']);
      expect(wrongOption.code).toBe(2);
      expect(wrongOption.stderr).toContain('sources get takes no --purge');

      // Invalid input refused by the API: 400 → 2, naming the field.
      const invalid = await sluice([
        'sources',
        'create',
        '--json',
        '--name',
        'x',
        '--type',
        'file',
        '--body',
        '{"refresh_interval":-5}',
      ]);
      expect(invalid.code).toBe(2);
      const problem = jsonError(invalid) as { status: number; errors: { pointer: string }[] };
      expect(problem.status).toBe(400);
      expect(problem.errors.map((e) => e.pointer)).toContain('/refresh_interval');

      // Nothing listens on a port just released: unreachable → 5.
      const { freePort } = await import('./process-kit');
      const down = await sluice(['sources', 'list'], { SLUICE_URL: `http://127.0.0.1:${await freePort()}` });
      expect(down.code).toBe(5);
      expect(down.stderr).toMatch(/^error: cannot reach http:\/\/127\.0\.0\.1:\d+/);
    },
  );

  it(
    'reads a named profile from the config file; keys create, list and revoke',
    { timeout: 120_000 },
    async () => {
      const config = join(work, 'config.json');
      await writeFile(
        config,
        JSON.stringify({ profiles: { ci: { url: api.baseUrl, token: api.adminToken } } }),
      );
      const env = { SLUICE_URL: '', SLUICE_TOKEN: '', SLUICE_CONFIG: config };
      const created = await sluice(
        ['keys', 'create', '--name', 'cli-reader', '--scope', 'read', '--profile', 'ci', '--json'],
        env,
      );
      expect(created.code, created.stderr).toBe(0);
      const key = json(created) as { id: string; token: string; scope: string };
      expect(key).toMatchObject({ name: 'cli-reader', scope: 'read', token: expect.stringMatching(/^slc_/) });

      const listed = await sluice(['keys', 'list', '--profile', 'ci'], env);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toMatch(/^ID\s+NAME\s+SCOPE\s+PREFIX/m);
      expect(listed.stdout).toContain('cli-reader');
      expect(listed.stdout).not.toContain(key.token);

      // The read key may read, and may not manage keys (403 → 4).
      const asReader = { SLUICE_CONFIG: config, SLUICE_TOKEN: key.token };
      expect(
        (await sluice(['sources', 'list', '--profile', 'ci', '--token', key.token], asReader)).code,
      ).toBe(0);
      expect((await sluice(['keys', 'list', '--profile', 'ci', '--token', key.token], asReader)).code).toBe(
        4,
      );

      const revoked = await sluice(['keys', 'revoke', key.id, '--profile', 'ci'], env);
      expect(revoked.code, revoked.stderr).toBe(0);
      expect(revoked.stdout).toBe(`revoked ${key.id}\n`);

      const noProfile = await sluice(['sources', 'list', '--profile', 'nope'], env);
      expect(noProfile.code).toBe(2);
      expect(noProfile.stderr).toContain('no profile "nope"');
    },
  );

  it('events tail --json prints each event as one JSON line', { timeout: 120_000 }, async () => {
    const res = await api.post('/raw-data-sources', {
      name: 'cli-events',
      source_type: 'file',
      connection_string: `file://${join(files, 'orders.csv')}`,
      metadata: { format: 'csv' },
    });
    expect(res.status, res.text).toBe(201);
    const id = res.body.id as string;
    const tail = start([
      'events',
      'tail',
      '--source',
      id,
      '--type',
      'source.updated',
      '--count',
      '1',
      '--json',
    ]);
    // The stream starts "from now" once connected: update until the tail has seen one, bounded.
    for (let i = 0; i < 60 && tail.running(); i++) {
      await api.put(`/raw-data-sources/${id}`, { refresh_interval: 600 + i });
      await sleep(500);
    }
    const exit = await exitWithin(tail, 10_000);
    expect(exit?.code, tail.stderr()).toBe(0);
    const event = JSON.parse(tail.stdout().trim()) as Record<string, unknown>;
    expect(event).toMatchObject({
      type: 'source.updated',
      source_id: id,
      id: expect.any(String),
      at: expect.any(String),
    });
  });
});
