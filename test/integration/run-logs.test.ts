import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, TEST_ADMIN_TOKEN, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';
import { RunLogs } from '../../src/runs/run-log';
import { until } from '../helpers/until';

const SECRET = 'RunLog-Secret-Pw-31';
const READ_TOKEN = `slc_test_read_${'r'.repeat(40)}`;
let seq = 0;
const body = (metadata: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name: `runlog-${process.pid}-${++seq}`,
  source_type: 'database',
  connection_string: `postgres://loader:${SECRET}@127.0.0.1:5432/warehouse`,
  metadata,
  ...extra,
});

interface Line {
  at: string;
  level: string;
  event: string;
  attempt: number;
  message: string;
  data?: Record<string, unknown>;
}

describe('run logs', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({
      connectors: [new ScriptedConnector('database')],
      env: { SYNC_ATTEMPTS: '2', API_KEYS: `admin:${TEST_ADMIN_TOKEN},read:${READ_TOKEN}` },
    });
    await api.startWorker();
  });
  afterAll(() => api.close());

  /** Creates a source, syncs it and waits for the run to finish; answers the ids. */
  const syncToEnd = async (metadata: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const created = await api.post('/raw-data-sources', body(metadata, extra));
    expect(created.status, created.text).toBe(201);
    const sourceId: string = created.body.id;
    const queued = await api.post(`/raw-data-sources/${sourceId}/sync`);
    expect(queued.status, queued.text).toBe(202);
    const runId: string = queued.body.run_id;
    const run = await until(
      () => api.knex('sync_runs').where({ id: runId }).first(),
      (r) => r?.status === 'success' || r?.status === 'failed',
    );
    return { sourceId, runId, run };
  };
  const logsOf = async (sourceId: string, runId: string) => {
    // The finish line is flushed right after the run closes: wait for it rather than race it.
    return until(
      () => api.get(`/raw-data-sources/${sourceId}/runs/${runId}/logs`),
      (res) => res.status !== 200 || (res.body.lines as Line[]).some((l) => l.event === 'finished'),
    );
  };

  it('a sync keeps its start, batches with counts and finish with totals, readable with a read key', async () => {
    const { sourceId, runId } = await syncToEnd({ records: 7, batch: 3 });
    // The finish line is written after the run closes: wait for it (with the read key), not race it.
    const res = await until(
      () =>
        api.request('GET', `/raw-data-sources/${sourceId}/runs/${runId}/logs`, {
          token: READ_TOKEN,
        }),
      (r) => r.status !== 200 || (r.body.lines as Line[]).some((l) => l.event === 'finished'),
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ run_id: runId, source_id: sourceId, status: 'success' });
    const lines = res.body.lines as Line[];
    expect(lines.map((l) => l.event)).toEqual(['started', 'reading', 'batch', 'batch', 'batch', 'finished']);
    expect(lines[0]).toMatchObject({ level: 'info', attempt: 1, message: 'attempt 1 started (manual)' });
    expect(lines.filter((l) => l.event === 'batch').map((l) => l.data?.records)).toEqual([3, 3, 1]);
    expect(lines[4]!.data).toMatchObject({ batch: 3, total_records: 7 });
    const finished = lines.at(-1)!;
    expect(finished.message).toMatch(/^sync succeeded: 7 records, \d+ bytes, 0 quarantined in \d+ ms$/);
    expect(finished.data).toMatchObject({ records: 7, invalid: 0 });
    expect(Number(finished.data?.bytes)).toBeGreaterThan(0);
    // Written in chunks, not a row per line.
    const chunks = await api.knex('sync_run_logs').where({ run_id: runId }).count({ n: '*' }).first();
    expect(Number(chunks?.n)).toBeLessThan(lines.length);

    // The worker's own log has a finish line with the counts, duration and status (logged as the
    // job ends, after the run closed: waited for like the rest).
    const finishLine = await until(
      () =>
        api.logs
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => l.msg === 'sync finished' && l.runId === runId),
      (l) => l !== undefined,
    );
    expect(finishLine).toMatchObject({ status: 'success', records: 7, invalid: 0, attempt: 1 });
    expect(typeof finishLine?.duration_ms).toBe('number');
    expect(Number(finishLine?.bytes)).toBeGreaterThan(0);
  });

  it('a retried attempt says why, and a failure says what failed, with no secret anywhere', async () => {
    const retried = await syncToEnd({ records: 2, fail: 'transient-once' });
    expect(retried.run.status).toBe('success');
    const lines = (await logsOf(retried.sourceId, retried.runId)).body.lines as Line[];
    const retry = lines.find((l) => l.event === 'retrying');
    expect(retry).toMatchObject({
      level: 'warn',
      attempt: 1,
      message: 'attempt 1 failed, the job will retry: temporary glitch',
    });
    expect(lines.filter((l) => l.event === 'started').map((l) => l.attempt)).toEqual([1, 2]);
    expect(lines.at(-1)).toMatchObject({ event: 'finished', attempt: 2, level: 'info' });

    // The scripted connector quotes the connection string in its error: the run log must not.
    const failed = await syncToEnd({ fail: 'permanent' });
    expect(failed.run.status).toBe('failed');
    const res = await logsOf(failed.sourceId, failed.runId);
    const last = (res.body.lines as Line[]).at(-1)!;
    expect(last).toMatchObject({ event: 'finished', level: 'error', data: { records: 0 } });
    expect(last.message).toContain('sync failed: bad credentials for ****');
    expect(res.text).not.toContain(SECRET);
    const stored = await api.knex('sync_run_logs').where({ run_id: failed.runId }).select('lines');
    expect(JSON.stringify(stored)).not.toContain(SECRET);
    expect(api.logs.join('')).not.toContain(SECRET);
  });

  it('quarantined records get a summary line with the first violations', async () => {
    const schema = {
      type: 'object',
      required: ['n'],
      properties: { n: { type: 'integer' } },
    };
    const { sourceId, runId, run } = await syncToEnd(
      { records: 6, batch: 6, shape: 'mixed' },
      { schema_definition: schema },
    );
    expect(run.status).toBe('success');
    const lines = (await logsOf(sourceId, runId)).body.lines as Line[];
    const summary = lines.find((l) => l.event === 'quarantine');
    expect(summary).toMatchObject({ level: 'warn', data: { invalid: 2, records: 4 } });
    expect(summary?.message).toMatch(/^2 of 6 records quarantined; first: \/n /);
    expect(lines.find((l) => l.event === 'batch')?.message).toContain('2 quarantined');
  });

  it('a run keeps at most its cap of lines, over all its attempts, and says how many it dropped', async () => {
    const created = await api.post('/raw-data-sources', body({ records: 1 }));
    const sourceId: string = created.body.id;
    const queued = await api.post(`/raw-data-sources/${sourceId}/sync`);
    const runId: string = queued.body.run_id;
    await until(
      () => api.knex('sync_runs').where({ id: runId }).first(),
      (r) => r?.status === 'success',
    );
    await logsOf(sourceId, runId);
    const before = ((await api.get(`/raw-data-sources/${sourceId}/runs/${runId}/logs`)).body.lines as Line[])
      .length;
    const logs = new RunLogs(api.knex, { maxLines: before + 5, maxBytes: 1 << 20, flushMs: 0 });
    const log = await logs.open({ runId, sourceId, attempt: 9 }, api.container.logger);
    for (let i = 0; i < 20; i++) log.line('info', 'batch', `line ${i}`);
    await log.end('info', 'finished', 'the end');
    const lines = (await api.get(`/raw-data-sources/${sourceId}/runs/${runId}/logs`)).body.lines as Line[];
    const mine = lines.filter((l) => l.attempt === 9);
    expect(mine.map((l) => l.message)).toEqual([
      'line 0',
      'line 1',
      'line 2',
      'line 3',
      'line 4',
      'the end',
      `… 15 lines dropped (a run keeps at most ${before + 5} lines / ${1 << 20} bytes)`,
    ]);
    // A later attempt finds the run full already: only its last line and the marker.
    const next = await logs.open({ runId, sourceId, attempt: 10 }, api.container.logger);
    next.line('info', 'batch', 'one more');
    await next.end('info', 'finished', 'the very end');
    const after = (await api.get(`/raw-data-sources/${sourceId}/runs/${runId}/logs`)).body.lines as Line[];
    expect(after.filter((l) => l.attempt === 10).map((l) => l.event)).toEqual(['finished', 'dropped']);
    // The byte cap works the same way.
    const small = new RunLogs(api.knex, { maxLines: 10_000, maxBytes: 1, flushMs: 0 });
    const bytesCapped = await small.open({ runId, sourceId, attempt: 11 }, api.container.logger);
    bytesCapped.line('info', 'batch', 'too big');
    await bytesCapped.end('info', 'finished', 'kept');
    const last = (await api.get(`/raw-data-sources/${sourceId}/runs/${runId}/logs`)).body.lines as Line[];
    expect(last.filter((l) => l.attempt === 11).map((l) => l.message)).toEqual([
      'kept',
      '… 1 lines dropped (a run keeps at most 10000 lines / 1 bytes)',
    ]);
  });

  it('an unknown run, or a run of another source, is a 404 problem; a bad id a 400 naming it', async () => {
    const a = await syncToEnd({ records: 1 });
    const other = await api.post('/raw-data-sources', body({ records: 1 }));
    const wrong = await api.get(`/raw-data-sources/${other.body.id}/runs/${a.runId}/logs`);
    expect(wrong.status).toBe(404);
    expect(wrong.headers.get('content-type')).toContain('application/problem+json');
    expect(wrong.text).not.toContain('lines');
    const unknown = await api.get(`/raw-data-sources/${a.sourceId}/runs/${randomUUID()}/logs`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toContain('application/problem+json');
    const bad = await api.get(`/raw-data-sources/${a.sourceId}/runs/nope/logs`);
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]).toMatchObject({ pointer: 'run_id', in: 'path' });
  });

  it('the lines go with the source: a purge removes them after the delete', async () => {
    const { sourceId, runId } = await syncToEnd({ records: 3, batch: 1 });
    await logsOf(sourceId, runId);
    expect(
      Number((await api.knex('sync_run_logs').where({ source_id: sourceId }).count({ n: '*' }))[0]?.n),
    ).toBeGreaterThan(0);
    const deleted = await api.del(`/raw-data-sources/${sourceId}?purge=true`);
    expect(deleted.status, deleted.text).toBe(204);
    expect((await api.get(`/raw-data-sources/${sourceId}/runs/${runId}/logs`)).status).toBe(404);
    await until(
      async () =>
        Number((await api.knex('sync_run_logs').where({ source_id: sourceId }).count({ n: '*' }))[0]?.n),
      (n) => n === 0,
    );
    const purge = await until(
      () => api.knex('source_purges').where({ source_id: sourceId }).first(),
      (p) => Boolean(p?.finished_at),
    );
    expect(purge).toBeDefined();
  });

  it('is in the API document with its tag, description and problem responses', async () => {
    const doc = (await api.get('/openapi.json')).body;
    const op = doc.paths['/raw-data-sources/{id}/runs/{run_id}/logs'].get;
    expect(op.tags).toEqual(['Sync']);
    expect(op.description).toContain('dropped');
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '400', '404']));
    expect(op.responses['404'].content['application/problem+json']).toBeDefined();
  });
});
