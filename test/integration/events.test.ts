import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';
import { until } from '../helpers/until';

/** Recognisable in any frame, log or error it might leak into. */
const SECRET = 'Ev3nts-Secret-Pw';
const OTHER_SECRET = 'Rotated-Secret-Pw2';
const MAX_LEN = 100;
let seq = 0;
const body = (metadata: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  name: `events-${process.pid}-${++seq}`,
  source_type: 'database',
  connection_string: `postgres://loader:${SECRET}@127.0.0.1:5432/warehouse?password=${SECRET}`,
  metadata,
  ...extra,
});

interface Frame {
  id?: string;
  event?: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- frames carry arbitrary event data
  data: any;
}

/**
 * A minimal EventSource over fetch: parses frames itself (blank-line separated `field: value`
 * lines, `:` comments ignored) so the test sees exactly what a browser would.
 */
class SseClient {
  readonly frames: Frame[] = [];
  raw = '';
  ended = false;
  private wake: () => void = () => undefined;
  private readonly pump: Promise<void>;

  private constructor(
    private readonly controller: AbortController,
    readonly response: Response,
  ) {
    this.pump = this.read();
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const controller = new AbortController();
    const response = await fetch(url, {
      headers: { accept: 'text/event-stream', ...headers },
      signal: controller.signal,
    });
    const client = new SseClient(controller, response);
    open.add(client);
    return client;
  }

  private async read(): Promise<void> {
    const body = this.response.body;
    if (!body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        const text = decoder.decode(chunk, { stream: true });
        this.raw += text;
        buffer += text;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const frame = parseFrame(block);
          if (frame) this.frames.push(frame);
        }
        this.wake();
      }
    } catch {
      // aborted by close()
    } finally {
      this.ended = true;
      this.wake();
    }
  }

  /** Waits (bounded) until `done(frames)` holds. */
  async until(done: (frames: Frame[]) => boolean, ms = 15_000): Promise<Frame[]> {
    const deadline = Date.now() + ms;
    while (!done(this.frames)) {
      if (this.ended)
        throw new Error(
          `stream ended before the condition held: ${JSON.stringify(this.frames.map((f) => f.event))}`,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `condition not met within ${ms} ms: ${JSON.stringify(this.frames.map((f) => f.event))}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.frames;
  }

  untilId(id: string, ms?: number): Promise<Frame[]> {
    return this.until((frames) => frames.some((f) => f.id === id), ms);
  }

  async close(): Promise<void> {
    open.delete(this);
    this.controller.abort();
    await this.pump;
  }
}

const open = new Set<SseClient>();

function parseFrame(block: string): Frame | undefined {
  const frame: Frame = { data: undefined };
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') frame.id = value;
    else if (field === 'event') frame.event = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length && !frame.id && !frame.event) return undefined;
  frame.data = JSON.parse(data.join('\n'));
  return frame;
}

const STREAM_ID = /^\d+-\d+$/;

/** Stream ids compare as (ms, seq) pairs. */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}

describe('GET /events (SSE over the capped Redis stream)', () => {
  let api: TestApi;
  let readerName: string;
  beforeAll(async () => {
    api = await startTestApi({
      connectors: [new ScriptedConnector('database')],
      env: { EVENTS_MAXLEN: String(MAX_LEN), SYNC_ATTEMPTS: '1', TEST_WAIT_MS: '5000' },
    });
    readerName = `events-reader:${api.container.events.key}`;
    await api.startWorker();
  });
  afterEach(async () => {
    await Promise.all([...open].map((c) => c.close()));
  });
  afterAll(async () => {
    await Promise.all([...open].map((c) => c.close()));
    await api?.close();
  });

  const events = (query = '', headers: Record<string, string> = {}) =>
    SseClient.open(`${api.baseUrl}/events${query}`, {
      authorization: `Bearer ${api.adminToken}`,
      ...headers,
    });
  /**
   * The source's sync is over and its last event is out. Not its sync_status: the run and the source
   * are closed before sync.succeeded / sync.failed is published (runs/run-lifecycle.ts), and what
   * these tests check is the order of the stream.
   */
  const finished = (id: string) =>
    until(
      () => api.container.redis.xrange(api.container.events.key, '-', '+'),
      (entries) =>
        entries.some(
          ([, f]) => f.includes(id) && (f.includes('sync.succeeded') || f.includes('sync.failed')),
        ),
    );
  /** The stream as Redis holds it, after `after` (exclusive). */
  const entriesAfter = async (after: string) =>
    (await api.container.redis.xrange(api.container.events.key, `(${after}`, '+')).map(([id]) => id);

  it('answers as an event stream', async () => {
    const client = await events();
    expect(client.response.status).toBe(200);
    expect(client.response.headers.get('content-type')).toContain('text/event-stream');
    expect(client.response.headers.get('cache-control')).toContain('no-cache');
  });

  it('delivers an event published the moment the stream has opened', async () => {
    // The client holds the open response before the server's reader has sent its first XREAD;
    // "from now" must mean from when the response started, not from when the reader got going.
    for (let i = 0; i < 5; i++) {
      const client = await events();
      const id = await api.container.events.publish('sync.repaired', { data: { reason: 'race', i } });
      const frames = await client.untilId(id!, 5000);
      expect(frames.map((f) => f.id)).toEqual([id]);
      await client.close();
    }
  });

  it('streams every source change, sync and test with ids, types and the documented shape, and no secret', async () => {
    const client = await events();
    const a = (await api.post('/raw-data-sources', body({ records: 3 }))).body;
    const b = (await api.post('/raw-data-sources', body({ fail: 'permanent' }))).body;
    expect(a.id && b.id).toBeTruthy();
    const put = await api.put(`/raw-data-sources/${a.id}`, {
      connection_string: `postgres://loader:${OTHER_SECRET}@127.0.0.1:5432/warehouse`,
      refresh_interval: 120,
    });
    expect(put.status).toBe(200);
    const syncA = (await api.post(`/raw-data-sources/${a.id}/sync`)).body;
    const syncB = (await api.post(`/raw-data-sources/${b.id}/sync`)).body;
    await finished(a.id);
    await finished(b.id);
    expect((await api.post(`/raw-data-sources/${a.id}/test`)).status).toBe(200);
    // It has landed records: deleting it needs ?purge=true (a plain delete answers 409).
    expect((await api.del(`/raw-data-sources/${a.id}?purge=true`)).status).toBe(204);

    const frames = await client.until((fs) =>
      fs.some((f) => f.event === 'source.deleted' && f.data.source_id === a.id),
    );
    const of = (id: string) => frames.filter((f) => f.data.source_id === id);
    expect(of(a.id).map((f) => f.event)).toEqual([
      'source.created',
      'source.updated',
      'sync.queued',
      'sync.started',
      'sync.succeeded',
      'connection.tested',
      'source.deleted',
    ]);
    expect(of(b.id).map((f) => f.event)).toEqual([
      'source.created',
      'sync.queued',
      'sync.started',
      'sync.failed',
    ]);

    for (const f of frames) {
      expect(f.id).toMatch(STREAM_ID);
      expect(Object.keys(f.data).sort()).toEqual(['at', 'data', 'id', 'run_id', 'source_id', 'type']);
      expect(f.data.id).toBe(f.id);
      expect(f.data.type).toBe(f.event);
      expect(new Date(f.data.at).toISOString()).toBe(f.data.at);
      expect(typeof f.data.data).toBe('object');
      if (f.event!.startsWith('sync.')) expect(f.data.run_id).toMatch(/^[0-9a-f-]{36}$/);
      else expect(f.data.run_id).toBeNull();
    }
    // Ids strictly increase: the order a client sees is the stream's order.
    for (let i = 1; i < frames.length; i++)
      expect(compareIds(frames[i - 1]!.id!, frames[i]!.id!)).toBeLessThan(0);

    expect(
      of(a.id)
        .filter((f) => f.event!.startsWith('sync.'))
        .map((f) => f.data.run_id),
    ).toEqual([syncA.run_id, syncA.run_id, syncA.run_id]);
    expect(of(b.id).find((f) => f.event === 'sync.failed')!.data).toMatchObject({ run_id: syncB.run_id });
    expect(of(b.id).find((f) => f.event === 'sync.failed')!.data.data.error).toContain('bad credentials');
    const updated = of(a.id).find((f) => f.event === 'source.updated')!.data.data;
    expect(updated.changed).toEqual(expect.arrayContaining(['connection_string', 'refresh_interval']));
    expect(of(a.id).find((f) => f.event === 'sync.succeeded')!.data.data).toMatchObject({ records: 3 });
    expect(of(a.id).find((f) => f.event === 'connection.tested')!.data.data).toMatchObject({ ok: true });

    // The secret (old and new, raw or in the query) appears nowhere on the wire or in the stream.
    for (const secret of [SECRET, OTHER_SECRET]) {
      expect(client.raw).not.toContain(secret);
      const stored = await api.container.redis.xrange(api.container.events.key, '-', '+');
      expect(JSON.stringify(stored)).not.toContain(secret);
    }
  });

  it('filters by source, by type family and by a list of types', async () => {
    const all = await events();
    const a = (await api.post('/raw-data-sources', body({ records: 1 }))).body;
    const forA = await events(`?source_id=${a.id}`);
    const syncs = await events('?type=sync.*');
    const lifecycle = await events('?type=source.created,source.deleted');
    const b = (await api.post('/raw-data-sources', body())).body;
    await api.put(`/raw-data-sources/${a.id}`, { metadata: { records: 1, note: 'changed' } });
    await api.post(`/raw-data-sources/${a.id}/sync`);
    await finished(a.id);
    await api.del(`/raw-data-sources/${b.id}`);
    // Sentinels: one the type-family client matches, then one the other two match.
    await api.container.events.publish('sync.repaired', { source_id: a.id, data: { reason: 'sentinel' } });
    await api.del(`/raw-data-sources/${a.id}?purge=true`);

    const reference = await all.until((fs) =>
      fs.some((f) => f.event === 'source.deleted' && f.data.source_id === a.id),
    );
    // The filtered clients connected after a's creation: the oracle is what followed it.
    const afterCreate = reference.slice(
      reference.findIndex((f) => f.event === 'source.created' && f.data.source_id === a.id) + 1,
    );
    const cases: [SseClient, (f: Frame) => boolean, string[]][] = [
      [
        forA,
        (f) => f.data.source_id === a.id,
        [
          'source.updated',
          'sync.queued',
          'sync.started',
          'sync.succeeded',
          'sync.repaired',
          'source.deleted',
        ],
      ],
      [
        syncs,
        (f) => f.event!.startsWith('sync.'),
        ['sync.queued', 'sync.started', 'sync.succeeded', 'sync.repaired'],
      ],
      [
        lifecycle,
        (f) => f.event === 'source.created' || f.event === 'source.deleted',
        ['source.created', 'source.deleted', 'source.deleted'],
      ],
    ];
    for (const [client, matches, types] of cases) {
      const expected = afterCreate.filter(matches);
      expect(expected.map((f) => f.event)).toEqual(types);
      const got = await client.untilId(expected.at(-1)!.id!);
      expect(got.map((f) => f.id)).toEqual(expected.map((f) => f.id));
    }
    expect(lifecycle.frames.map((f) => f.data.source_id)).toEqual([b.id, b.id, a.id]);
  });

  it('resumes after a disconnect with Last-Event-ID (header or query): exactly the missed events, in order', async () => {
    const first = await events();
    const r1 = (await api.post('/raw-data-sources', body())).body;
    const seen = await first.until((fs) => fs.some((f) => f.data.source_id === r1.id));
    const last = seen.at(-1)!.id!;
    await first.close();

    // Missed while disconnected.
    await api.put(`/raw-data-sources/${r1.id}`, { metadata: { note: 'while away' } });
    const r2 = (await api.post('/raw-data-sources', body())).body;
    await api.del(`/raw-data-sources/${r1.id}`);
    const missed = await entriesAfter(last);
    expect(missed.length).toBeGreaterThanOrEqual(3);

    for (const resume of [
      () => events('', { 'last-event-id': last }),
      () => events(`?last_event_id=${last}`),
      // The header wins over the query (it is what a browser sends on reconnect).
      () => events(`?last_event_id=${missed.at(-1)}`, { 'last-event-id': last }),
    ]) {
      const client = await resume();
      expect(client.response.status).toBe(200);
      await client.untilId(missed.at(-1)!);
      // A sentinel published after: had anything extra or out of order arrived, it shows here.
      const sentinel = await api.container.events.publish('sync.repaired', {
        source_id: r2.id,
        data: { reason: 'sentinel' },
      });
      const frames = await client.untilId(sentinel!);
      expect(frames.map((f) => f.id)).toEqual([...missed, sentinel]);
      expect(frames.slice(0, 3).map((f) => [f.event, f.data.source_id])).toEqual([
        ['source.updated', r1.id],
        ['source.created', r2.id],
        ['source.deleted', r1.id],
      ]);
      await client.close();
      missed.push(sentinel!);
    }
  });

  it('rejects bad queries and a bad Last-Event-ID with 400 problem+json', async () => {
    const cases: [string, Record<string, string>, string][] = [
      ['?type=!!', {}, 'type'],
      ['?type=sync.*,', {}, 'type'],
      ['?source_id=nope', {}, 'source_id'],
      ['?colour=blue', {}, 'colour'],
      ['?last_event_id=yesterday', {}, 'last_event_id'],
      ['', { 'last-event-id': 'not-an-id' }, 'Last-Event-ID'],
      ['', { 'last-event-id': '1-2-3' }, 'Last-Event-ID'],
    ];
    for (const [query, headers, pointer] of cases) {
      const res = await api.request('GET', `/events${query}`, { headers });
      expect(res.status, `${query} ${JSON.stringify(headers)}: ${res.text}`).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.body).toMatchObject({ status: 400, title: expect.any(String) });
      expect(JSON.stringify(res.body.errors ?? []), `${query}: ${res.text}`).toContain(pointer);
    }
  });

  it('releases its Redis connection when the client disconnects', async () => {
    const readers = async () =>
      ((await api.container.redis.client('LIST')) as string)
        .split('\n')
        .filter((line) => line.includes(` name=${readerName} `)).length;
    expect(await readers()).toBe(0);
    const one = await events();
    const two = await events('?type=sync.*');
    // The reader connection is opened while the response starts; give it a bounded moment.
    await until(readers, (n) => n === 2, 5000);
    await one.close();
    await until(readers, (n) => n === 1, 5000);
    await two.close();
    await until(readers, (n) => n === 0, 5000);
  });

  it('keeps the stream capped at EVENTS_MAXLEN (approximately)', async () => {
    const bus = api.container.events;
    expect(bus.maxLen).toBe(MAX_LEN);
    for (let i = 0; i < 1000; i++) await bus.publish('sync.repaired', { data: { i } });
    const [, nodeMax] = (await api.container.redis.config('GET', 'stream-node-max-entries')) as [
      string,
      string,
    ];
    const len = await api.container.redis.xlen(bus.key);
    // `MAXLEN ~` trims whole stream nodes, so up to one node's worth above the cap remains.
    expect(len).toBeGreaterThanOrEqual(MAX_LEN);
    expect(len).toBeLessThanOrEqual(MAX_LEN + Number(nodeMax));
    console.log(`events: XLEN after 1000 publishes with EVENTS_MAXLEN=${MAX_LEN}: ${len}`);
  });
});
