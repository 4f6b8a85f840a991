import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, TEST_ADMIN_TOKEN, type TestApi } from '../helpers/api-harness';

const READ_TOKEN = `slc_test_read_${'r'.repeat(40)}`;
const OTHER_READ_TOKEN = `slc_test_read2_${'s'.repeat(40)}`;
const basic = `Basic ${Buffer.from(`admin:${TEST_ADMIN_TOKEN}`).toString('base64')}`;

describe('issue 13 #9, #10, #11: one client cannot take every slot or act across sites', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({
      env: {
        API_KEYS: `admin:${TEST_ADMIN_TOKEN},read:${READ_TOKEN},read:${OTHER_READ_TOKEN}`,
        FILE_ROOTS: '/tmp/sluice-edge-guards',
      },
    });
  });
  afterAll(() => api?.close());

  describe('#9 event stream slots', () => {
    /** Opens GET /events and resolves with its status once the headers are in; open streams stay open. */
    const open = (token: string, held: { destroy(): void }[]) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(
          `${api.baseUrl}/events`,
          { headers: { authorization: `Bearer ${token}` } },
          (res) => {
            if (res.statusCode === 200) {
              held.push(res);
              return resolve({ status: 200, body: '' });
            }
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });

    it('100 streams from one read key: 5 open, the rest 429, and another key (the admin) still gets one', async () => {
      const held: { destroy(): void }[] = [];
      await api.container.redis.ping(); // connected: the stream needs Redis
      try {
        const answers = await Promise.all(Array.from({ length: 100 }, () => open(READ_TOKEN, held)));
        const statuses = answers.map((a) => a.status);
        expect(statuses.filter((s) => s === 200)).toHaveLength(api.container.config.eventsMaxClientsPerKey);
        expect(
          statuses.filter((s) => s === 429),
          JSON.stringify(answers.filter((a) => a.status !== 200 && a.status !== 429)),
        ).toHaveLength(95);
        const refused = JSON.parse(answers.find((a) => a.status === 429)!.body);
        expect(refused.detail).toContain('already holds 5 open event streams');
        expect((await open(TEST_ADMIN_TOKEN, held)).status).toBe(200);
        expect((await open(OTHER_READ_TOKEN, held)).status).toBe(200);
        // A stream closed gives its key's slot back.
        held[0]!.destroy();
        let again = 0;
        for (let i = 0; i < 100 && again !== 200; i++) {
          again = (await open(READ_TOKEN, held)).status;
          if (again !== 200) await new Promise((r) => setTimeout(r, 20));
        }
        expect(again).toBe(200);
      } finally {
        for (const res of held) res.destroy();
      }
    });
  });

  describe('#11 the Bull dashboard refuses cross-site state changes', () => {
    const add = (headers: Record<string, string>, body: string) =>
      fetch(`${api.baseUrl}/admin/queues/api/queues/sync-all/add`, {
        method: 'POST',
        headers: { authorization: basic, ...headers },
        body,
      });
    const jobs = async () => await api.container.queues.syncAll.getJobCounts('waiting', 'delayed', 'active');
    const total = async () => Object.values(await jobs()).reduce((a, b) => a + b, 0);

    it('a form-encoded POST with Basic credentials is 403 and creates no job', async () => {
      const before = await total();
      for (const [type, body] of [
        ['application/x-www-form-urlencoded', 'name=evil&data=%7B%7D'],
        [
          'multipart/form-data; boundary=x',
          '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nevil\r\n--x--\r\n',
        ],
        ['text/plain', '{"name":"evil","data":{}}'],
      ] as const) {
        const res = await add({ 'content-type': type }, body);
        expect(res.status, type).toBe(403);
        expect(((await res.json()) as { detail: string }).detail).toContain('another site');
      }
      // JSON from another site (Origin or Sec-Fetch-Site says so): refused too.
      const json = { 'content-type': 'application/json' };
      const body = JSON.stringify({ name: 'evil', data: {} });
      expect((await add({ ...json, origin: 'https://evil.example' }, body)).status).toBe(403);
      expect((await add({ ...json, 'sec-fetch-site': 'cross-site' }, body)).status).toBe(403);
      expect((await add({ ...json, 'sec-fetch-site': 'same-site' }, body)).status).toBe(403);
      expect((await add({ ...json, origin: 'null' }, body)).status).toBe(403);
      expect(await total()).toBe(before);
    });

    it("the dashboard's own requests (same origin, JSON) still work, and reads stay open", async () => {
      const before = await total();
      const host = new URL(api.baseUrl).host;
      const res = await add(
        { 'content-type': 'application/json', origin: api.baseUrl, 'sec-fetch-site': 'same-origin', host },
        JSON.stringify({ name: 'by-hand', data: {} }),
      );
      expect(res.status, await res.clone().text()).toBe(200);
      // A PUT without a body, as the UI's pause/resume send.
      const pause = await fetch(`${api.baseUrl}/admin/queues/api/queues/sync-all/pause`, {
        method: 'PUT',
        headers: { authorization: basic, origin: api.baseUrl, 'sec-fetch-site': 'same-origin' },
      });
      expect(pause.status).toBe(200);
      await api.container.queues.syncAll.resume();
      expect(await total()).toBe(before + 1);
      const read = await fetch(`${api.baseUrl}/admin/queues/api/queues`, {
        headers: { authorization: basic, 'sec-fetch-site': 'cross-site' },
      });
      expect(read.status).toBe(200);
    });
  });

  describe('#10 PUT re-validates connection_string against the resulting source_type', () => {
    it('changing a webhook source to file without resending connection_string is 400 naming /connection_string', async () => {
      const created = await api.post('/raw-data-sources', {
        name: `edge-hook-${process.pid}`,
        source_type: 'webhook',
        connection_string: '/etc/passwd-is-not-a-secret-but-long-enough',
      });
      expect(created.status, created.text).toBe(201);
      const id = created.body.id as string;
      const res = await api.put(`/raw-data-sources/${id}`, { source_type: 'file' });
      expect(res.status, res.text).toBe(400);
      const entry = res.body.errors.find((e: { pointer: string }) => e.pointer === '/connection_string');
      expect(entry?.message).toContain('send connection_string');
      expect(res.text).not.toContain('/etc/passwd');
      expect((await api.get(`/raw-data-sources/${id}`)).body.source_type).toBe('webhook');
      // Resent, it is checked against the new type's rules: outside FILE_ROOTS is refused...
      const outside = await api.put(`/raw-data-sources/${id}`, {
        source_type: 'file',
        connection_string: 'file:///etc/passwd',
      });
      expect(outside.status).toBe(400);
      expect(outside.body.errors[0].pointer).toBe('/connection_string');
      // ...inside is accepted. Same type without the secret stays fine.
      const inside = await api.put(`/raw-data-sources/${id}`, {
        source_type: 'file',
        connection_string: 'file:///tmp/sluice-edge-guards/data.csv',
      });
      expect(inside.status, inside.text).toBe(200);
      expect(
        (await api.put(`/raw-data-sources/${id}`, { source_type: 'file', name: 'renamed-edge' })).status,
      ).toBe(200);
    });

    it('a source without a stored secret may change type without one', async () => {
      const created = await api.post('/raw-data-sources', {
        name: `edge-nosecret-${process.pid}`,
        source_type: 'webhook',
        connection_string: null,
      });
      expect(created.status, created.text).toBe(201);
      const res = await api.put(`/raw-data-sources/${created.body.id}`, { source_type: 'file' });
      expect(res.status, res.text).toBe(200);
    });
  });
});
