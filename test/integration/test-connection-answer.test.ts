import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testBudgetMs } from '../../src/runs/test-budget';
import { startTestApi, type TestApi } from '../helpers/api-harness';

/**
 * Whether POST …/test answers 200 or 202 is decided, not chance: the worker cuts a test at the
 * budget the API gave it (TEST_WAIT_MS less a pickup margin), so a peer that never answers still
 * gets a 200 with a `timeout` step every time — even with a per-step bound (CONNECT_TIMEOUT_MS)
 * far longer than the wait, where the answer used to depend on which outran the other.
 */
describe('test-connection answer', () => {
  let api: TestApi;
  let peer: Server;
  const sockets = new Set<Socket>();
  let url: string;

  beforeAll(async () => {
    // Accepts connections and never says a word: a hanging API.
    peer = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(peer.address() as AddressInfo).port}/items`;
    api = await startTestApi({
      env: { OUTBOUND_ALLOW: '127.0.0.0/8', CONNECT_TIMEOUT_MS: '60000', TEST_WAIT_MS: '4000' },
    });
    await api.startWorker();
  });
  afterAll(async () => {
    await api?.close();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => peer?.close(resolve));
  });

  it('budgets the whole test inside the wait, with a margin for pickup', () => {
    expect(testBudgetMs(10_000)).toBe(8_000);
    expect(testBudgetMs(60_000)).toBe(58_000);
    expect(testBudgetMs(3_000)).toBe(2_250);
    // No wait: every test answers 202 at once, and the worker keeps only the per-step bounds.
    expect(testBudgetMs(0)).toBeUndefined();
  });

  it(
    'answers a hanging peer with 200 and a timeout step, every time, saved or unsaved',
    { timeout: 90_000 },
    async () => {
      const body = { name: 'hanging-api', source_type: 'api', connection_string: url };
      const created = await api.post('/raw-data-sources', body);
      expect(created.status, created.text).toBe(201);
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await api.post(`/raw-data-sources/${created.body.id}/test`));
      answers.push(await api.post('/raw-data-sources/test', { ...body, name: 'hanging-api-draft' }));
      for (const res of answers) {
        expect(res.status, res.text).toBe(200);
        expect(res.body.ok).toBe(false);
        const failed = res.body.steps.filter((s: { status: string }) => s.status === 'failed');
        expect(failed).toHaveLength(1);
        expect(failed[0]).toMatchObject({ code: 'timeout' });
        expect(failed[0].message).toContain("test's time");
        // Every step after the one cut is listed as skipped, so the answer shows where it stopped.
        const after = res.body.steps.slice(res.body.steps.indexOf(failed[0]) + 1);
        expect(after.every((s: { status: string }) => s.status === 'skipped')).toBe(true);
      }
    },
  );
});
