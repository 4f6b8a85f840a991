import { randomUUID } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectInvalid, startTestApi, type TestApi } from '../helpers/api-harness';
import { until } from '../helpers/until';

let seq = 0;
const name = () => `records-${process.pid}-${++seq}`;

describe('reading landed and quarantined records', () => {
  let api: TestApi;
  let source: string;
  let other: string;
  let run1: string;
  let run2: string;
  let big: string;
  const BIG_ROWS = 200_000;

  const newSource = async () =>
    (
      await api
        .knex('raw_data_sources')
        .insert({ name: name(), source_type: 'webhook', metadata: {} }, ['id'])
    )[0]!.id as string;
  const newRun = async (sourceId: string) => {
    const id = randomUUID();
    await api.knex('sync_runs').insert({ id, source_id: sourceId, trigger: 'manual', status: 'success' });
    return id;
  };
  /** `n` records {n: i, tag} landed by `run`, one statement. */
  const land = (sourceId: string, runId: string, n: number, tag: string) =>
    api.knex.raw(
      `INSERT INTO raw_records (source_id, run_id, payload)
       SELECT ?, ?, jsonb_build_object('n', g, 'tag', ?::text, 'text', 'a "quoted", back\\slashed' || E'\\n' || 'line')
         FROM generate_series(1, ?) g`,
      [sourceId, runId, tag, n],
    );
  const exportCopies = async () =>
    Number(
      (
        await api.knex.raw(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'COPY (select%' AND state = 'active'`,
        )
      ).rows[0].n,
    );

  beforeAll(async () => {
    api = await startTestApi();
    source = await newSource();
    other = await newSource();
    run1 = await newRun(source);
    run2 = await newRun(source);
    await land(source, run1, 150, 'one');
    await land(source, run2, 100, 'two');
    await land(other, await newRun(other), 10, 'other');
    big = await newSource();
    await land(big, await newRun(big), BIG_ROWS, 'big');
  });
  afterAll(() => api?.close());

  it('pages every record of the source once, oldest first, by cursor', async () => {
    const seen: { id: number; run_id: string; payload: { n: number; tag: string } }[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const res = await api.get(
        `/raw-data-sources/${source}/records?limit=100${after ? `&after=${after}` : ''}`,
      );
      expect(res.status).toBe(200);
      expect(res.body.pagination.limit).toBe(100);
      seen.push(...res.body.data);
      after = res.body.pagination.next_cursor;
      pages++;
    } while (after);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(250);
    expect(seen.map((r) => r.id)).toEqual([...seen.map((r) => r.id)].sort((a, b) => a - b));
    expect(new Set(seen.map((r) => r.id)).size).toBe(250);
    expect(seen.filter((r) => r.payload.tag === 'one')).toHaveLength(150);
    expect(seen.every((r) => r.payload.tag !== 'other')).toBe(true);
    const first = seen[0]! as unknown as Record<string, unknown>;
    expect(Object.keys(first).sort()).toEqual(['id', 'ingested_at', 'payload', 'run_id']);
    expect(Date.parse(first.ingested_at as string)).toBeGreaterThan(0);
  });

  it('filters by run and by landing time', async () => {
    const byRun = await api.get(`/raw-data-sources/${source}/records?run_id=${run2}&limit=1000`);
    expect(byRun.body.data).toHaveLength(100);
    expect(byRun.body.data.every((r: { run_id: string }) => r.run_id === run2)).toBe(true);
    expect(byRun.body.pagination.next_cursor).toBeNull();

    const later = new Date(Date.now() + 60_000).toISOString();
    expect((await api.get(`/raw-data-sources/${source}/records?since=${later}`)).body.data).toEqual([]);
    const earlier = new Date(Date.now() - 3_600_000).toISOString();
    const since = await api.get(`/raw-data-sources/${source}/records?since=${earlier}&limit=1000`);
    expect(since.body.data).toHaveLength(250);
  });

  it('answers 404 for an unknown source and 400 naming the parameter for bad input', async () => {
    expect((await api.get(`/raw-data-sources/${randomUUID()}/records`)).status).toBe(404);
    expect((await api.get(`/raw-data-sources/${randomUUID()}/quarantine`)).status).toBe(404);
    expectInvalid(await api.get('/raw-data-sources/nope/records'), 'id');
    expectInvalid(await api.get(`/raw-data-sources/${source}/records?after=%21%21`), 'after');
    expectInvalid(await api.get(`/raw-data-sources/${source}/records?after=bm9wZQ`), 'after');
    expectInvalid(await api.get(`/raw-data-sources/${source}/records?limit=0`), 'limit');
    expectInvalid(await api.get(`/raw-data-sources/${source}/records?limit=1001`), 'limit');
    expectInvalid(await api.get(`/raw-data-sources/${source}/records?run_id=x`), 'run_id');
    expectInvalid(await api.get(`/raw-data-sources/${source}/records?since=yesterday`), 'since');
    expectInvalid(await api.get(`/raw-data-sources/${source}/records?view=latest`), 'view');
    expectInvalid(await api.get(`/raw-data-sources/${source}/records?colour=red`), 'colour');
    expectInvalid(await api.get(`/raw-data-sources/${source}/quarantine?view=all`), 'view');
  });

  it('view=all is the default; view=current is refused for an append source (no current view)', async () => {
    expect((await api.get(`/raw-data-sources/${source}/records?view=all&limit=1`)).body.data).toHaveLength(1);
    const current = await api.get(`/raw-data-sources/${source}/records?view=current`);
    expectInvalid(current, 'view', "current is not available for this source's sync mode");
  });

  it('answers 406 when Accept names nothing it serves', async () => {
    const res = await api.request('GET', `/raw-data-sources/${source}/records`, {
      headers: { accept: 'text/html' },
    });
    expect(res.status).toBe(406);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });

  it('lists quarantined records with their validation errors', async () => {
    const runId = await newRun(source);
    await api.knex('quarantined_records').insert(
      [1, 2, 3].map((n) => ({
        source_id: source,
        run_id: runId,
        payload: JSON.stringify({ n: String(n) }),
        errors: JSON.stringify([{ pointer: '/n', message: 'must be integer' }]),
      })),
    );
    const page = await api.get(`/raw-data-sources/${source}/quarantine?limit=2`);
    expect(page.status).toBe(200);
    expect(page.body.data).toHaveLength(2);
    expect(page.body.data[0]).toMatchObject({
      run_id: runId,
      payload: { n: '1' },
      errors: [{ pointer: '/n', message: 'must be integer' }],
    });
    expect(Date.parse(page.body.data[0].quarantined_at)).toBeGreaterThan(0);
    const rest = await api.get(
      `/raw-data-sources/${source}/quarantine?after=${page.body.pagination.next_cursor}`,
    );
    expect(rest.body.data.map((r: { payload: { n: string } }) => r.payload.n)).toEqual(['3']);
    expect(rest.body.pagination.next_cursor).toBeNull();
    const ndjson = await api.request('GET', `/raw-data-sources/${source}/quarantine`, {
      headers: { accept: 'application/x-ndjson' },
    });
    const lines = ndjson.text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.errors[0].pointer)).toEqual(['/n', '/n', '/n']);
  });

  it('exports every matching record as NDJSON, streamed with backpressure, and frees the connection', async () => {
    const rows = BIG_ROWS;
    const res = await fetch(`${api.baseUrl}/raw-data-sources/${big}/records`, {
      headers: { authorization: `Bearer ${api.adminToken}`, accept: 'application/x-ndjson' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(res.headers.get('content-length')).toBeNull();
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value, { stream: true });
    // Not read further: the COPY waits on the client instead of buffering the rest in the API.
    await new Promise((r) => setTimeout(r, 300));
    expect(await exportCopies()).toBe(1);
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      text += decoder.decode(chunk.value, { stream: true });
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(rows);
    const first = JSON.parse(lines[0]!);
    expect(Object.keys(first).sort()).toEqual(['id', 'ingested_at', 'payload', 'run_id']);
    expect(first.payload).toEqual({ n: 1, tag: 'big', text: 'a "quoted", back\\slashed\nline' });
    expect(first.run_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(first.ingested_at)).toBeGreaterThan(0);
    const last = JSON.parse(lines.at(-1)!);
    expect(last.payload.n).toBe(rows);
    expect(last.id - first.id).toBe(rows - 1);
    await until(exportCopies, (n) => n === 0);
  });

  it('an export the client abandons ends its COPY', async () => {
    const controller = new AbortController();
    const res = await fetch(`${api.baseUrl}/raw-data-sources/${big}/records`, {
      headers: { authorization: `Bearer ${api.adminToken}`, accept: 'application/x-ndjson' },
      signal: controller.signal,
    });
    await res.body!.getReader().read();
    await new Promise((r) => setTimeout(r, 200));
    expect(await exportCopies()).toBe(1);
    controller.abort();
    await until(exportCopies, (n) => n === 0);
    // The export pool still serves.
    const again = await api.request('GET', `/raw-data-sources/${other}/records`, {
      headers: { accept: 'application/x-ndjson' },
    });
    expect(again.text.trimEnd().split('\n')).toHaveLength(10);
  });

  it('exports CSV with a header and JSON payloads, filters applied', async () => {
    const res = await api.request('GET', `/raw-data-sources/${source}/records?run_id=${run1}`, {
      headers: { accept: 'text/csv' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const rows = parse(res.text, { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(150);
    expect(Object.keys(rows[0]!)).toEqual(['id', 'run_id', 'ingested_at', 'payload']);
    expect(JSON.parse(rows[0]!.payload!)).toEqual({
      n: 1,
      tag: 'one',
      text: 'a "quoted", back\\slashed\nline',
    });
    expect(rows.every((r) => r.run_id === run1)).toBe(true);
    expect(Date.parse(rows[0]!.ingested_at!)).toBeGreaterThan(0);
  });

  it('needs the read scope', async () => {
    const res = await api.request('GET', `/raw-data-sources/${source}/records`, { token: null });
    expect(res.status).toBe(401);
  });
});
