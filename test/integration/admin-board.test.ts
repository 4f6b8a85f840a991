import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JOBS_PER_PAGE, MAX_LISTED_SCHEDULERS } from '../../src/admin/admin-board';
import { startTestApi, type TestApi } from '../helpers/api-harness';

/**
 * The Bull dashboard at /admin/queues. 100k schedulers is the target; this file builds 5,000
 * (each one scheduler hash plus one delayed job) and 5,000 plain delayed jobs, which exercises the
 * same code paths (counts are ZCARDs, lists are pages) at a size that fits a shared test Redis.
 */
const SCHEDULERS = 5000;
const DELAYED = 5000;

interface BoardQueue {
  name: string;
  counts: Record<string, number>;
  jobs: { id: string; name: string; delay?: number }[];
  pagination: { pageCount: number; range: { start: number; end: number } };
  jobSchedulerCount: number;
}

describe('Bull dashboard', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(() => api?.close());

  /** What the board's UI calls every few seconds (see @bull-board/ui's Api.getQueues). */
  const queues = async (query = '') => {
    const started = performance.now();
    const res = await api.get(`/admin/queues/api/queues${query}`);
    const ms = Math.round(performance.now() - started);
    expect(res.status, res.text.slice(0, 500)).toBe(200);
    return { queues: res.body.queues as BoardQueue[], ms, bytes: res.text.length };
  };
  const byName = (list: BoardQueue[]) => Object.fromEntries(list.map((q) => [q.name, q]));

  it('serves the UI as HTML, with its assets from this server', async () => {
    for (const path of ['/admin/queues', '/admin/queues/', '/admin/queues/queue/sync']) {
      const res = await api.get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/html');
      expect(res.text).toContain('Sluice jobs');
    }
    const html = (await api.get('/admin/queues')).text;
    const base = new URL(html.match(/<base href="([^"]+)"/)?.[1] ?? '/admin/queues/', api.baseUrl);
    const scripts = [...html.matchAll(/<script[^>]+src="([^"]+)"/g)].map((m) => new URL(m[1]!, base));
    expect(scripts.length).toBeGreaterThan(0);
    for (const src of scripts) {
      // Loaded from the board's own static route on this server, never from a CDN.
      expect(src.origin).toBe(api.baseUrl);
      expect(src.pathname.startsWith('/admin/queues/static/'), src.pathname).toBe(true);
      expect((await api.get(src.pathname)).status, src.pathname).toBe(200);
    }
  });

  it('lists the queues with their counts', async () => {
    await api.container.queues.test.add(
      'test',
      { sourceId: '00000000-0000-4000-8000-000000000001' },
      { delay: 60_000 },
    );
    const { queues: list } = await queues();
    const named = byName(list);
    expect(Object.keys(named).sort()).toEqual(['notify', 'source-purge', 'sync', 'sync-all', 'test']);
    for (const q of list)
      expect(q.counts).toMatchObject({
        active: expect.any(Number),
        completed: expect.any(Number),
        delayed: expect.any(Number),
        failed: expect.any(Number),
        waiting: expect.any(Number),
      });
    expect(named.test!.counts.delayed).toBe(1);
    expect(named.sync!.counts.delayed).toBe(0);
    // A source's scheduler shows up in the sync queue's counts.
    await api.post('/raw-data-sources', { name: `board-${process.pid}`, source_type: 'api' });
    const after = byName((await queues()).queues);
    expect(after.sync!).toMatchObject({ jobSchedulerCount: 1, counts: { delayed: 1 } });
    // Under the listing limit the schedulers view answers in full.
    const listed = await api.get('/admin/queues/api/job-schedulers');
    expect(listed.status).toBe(200);
    // The scheduler id stays source-<id>; its jobs are named after the source.
    expect(listed.body.schedulers).toMatchObject([
      { queueName: 'sync', name: `sync: board-${process.pid}`, every: 3_600_000 },
    ]);
  });

  it(`stays usable with ${SCHEDULERS} schedulers and ${DELAYED} more delayed jobs`, async () => {
    const sync = api.container.queues.sync;
    const startDate = Date.now() + 3_600_000;
    for (let i = 0; i < SCHEDULERS; i += 500)
      await Promise.all(
        Array.from({ length: Math.min(500, SCHEDULERS - i) }, (_, k) =>
          sync.upsertJobScheduler(
            `source-bench-${i + k}`,
            { every: 86_400_000, offset: 1 + i + k, startDate: startDate + i + k },
            { name: 'sync', data: { sourceId: `bench-${i + k}`, trigger: 'schedule' } },
          ),
        ),
      );
    for (let i = 0; i < DELAYED; i += 1000)
      await sync.addBulk(
        Array.from({ length: 1000 }, (_, k) => ({
          name: 'sync',
          data: { sourceId: `delayed-${i + k}`, trigger: 'manual' },
          opts: { jobId: `bench-delayed-${i + k}`, delay: 3_600_000 + i + k },
        })),
      );
    const expectedDelayed = SCHEDULERS + DELAYED + 1;

    const overview = await queues();
    const sched = byName(overview.queues).sync!;
    expect(sched.counts.delayed).toBe(expectedDelayed);
    expect(sched.jobSchedulerCount).toBe(SCHEDULERS + 1);

    // The sync queue opened on its delayed tab, first and last page: one page of jobs each.
    const first = byName(
      (await queues('?activeQueue=sync&status=delayed&page=1&jobsPerPage=10')).queues,
    ).sync!;
    expect(first.jobs).toHaveLength(10);
    expect(first.pagination.pageCount).toBe(Math.ceil(expectedDelayed / 10));
    const lastPage = first.pagination.pageCount;
    const last = await queues(`?activeQueue=sync&status=delayed&page=${lastPage}&jobsPerPage=10`);
    expect(byName(last.queues).sync!.jobs.length).toBe(expectedDelayed % 10 || 10);
    const latest = await queues('?activeQueue=sync&status=latest&page=1&jobsPerPage=10');
    expect(byName(latest.queues).sync!.jobs.length).toBeLessThanOrEqual(10 * 8);

    // A hand-made page size is clamped rather than loading every delayed job.
    const huge = await queues('?activeQueue=sync&status=delayed&page=1&jobsPerPage=1000000');
    expect(byName(huge.queues).sync!.jobs).toHaveLength(MAX_JOBS_PER_PAGE);

    // The schedulers view would read every scheduler (and a job each) in one response: what that
    // costs, measured on bull-board's own adapter, and the board refusing it beyond the limit.
    let started = performance.now();
    const everything = await new BullMQAdapter(sync).getJobSchedulers();
    const listAllMs = Math.round(performance.now() - started);
    expect(everything).toHaveLength(SCHEDULERS + 1);
    const listAllBytes = JSON.stringify({ schedulers: everything }).length;
    started = performance.now();
    const refused = await api.get('/admin/queues/api/job-schedulers?queueName=sync');
    const refusedMs = Math.round(performance.now() - started);
    expect(refused.status).toBe(403);
    expect(refused.body.message).toContain(`${SCHEDULERS + 1} job schedulers`);
    // The other queues' schedulers (none) still list.
    const testQueue = await api.get('/admin/queues/api/job-schedulers?queueName=test');
    expect(testQueue.status).toBe(200);
    expect(testQueue.body.schedulers).toEqual([]);

    console.log(
      [
        `admin board with ${SCHEDULERS} schedulers + ${DELAYED} delayed jobs (${expectedDelayed} delayed in sync):`,
        `  GET api/queues (overview, polled every 5 s): ${overview.ms} ms, ${overview.bytes} bytes`,
        `  GET api/queues delayed page 1: ${(await queues('?activeQueue=sync&status=delayed&page=1&jobsPerPage=10')).ms} ms`,
        `  GET api/queues delayed page ${lastPage}: ${last.ms} ms`,
        `  GET api/queues latest: ${latest.ms} ms`,
        `  GET api/queues jobsPerPage=1000000 (clamped to ${MAX_JOBS_PER_PAGE}): ${huge.ms} ms, ${huge.bytes} bytes`,
        `  listing all schedulers (unbounded, bull-board adapter): ${listAllMs} ms, ${listAllBytes} bytes`,
        `  GET api/job-schedulers?queueName=sync (refused above ${MAX_LISTED_SCHEDULERS}): ${refusedMs} ms`,
      ].join('\n'),
    );
  }, 60_000);
});
