import { describe, expect, it } from 'vitest';
import { Metrics } from './metrics';

describe('Metrics', () => {
  it('keeps each container apart: two instances never share a series', async () => {
    const a = new Metrics({ sourceTypes: ['database'] });
    const b = new Metrics({ sourceTypes: ['database'] });
    a.jobFinished('sync', 'database', 'success', 1);
    expect(await a.render()).toContain(
      'sluice_jobs_total{queue="sync",source_type="database",outcome="success"} 1',
    );
    expect(await b.render()).not.toContain('sluice_jobs_total{');
  });

  it('labels an unknown source type `other` and a missing one `none`: the label set stays fixed', async () => {
    const metrics = new Metrics({ sourceTypes: ['database'] });
    metrics.landed('postgres://user:pw@host/db', { records: 1, bytes: 2, invalid: 0 });
    metrics.jobFinished('sync', undefined, 'stalled');
    const text = await metrics.render();
    expect(text).toContain('sluice_records_landed_total{source_type="other"} 1');
    expect(text).toContain('sluice_jobs_total{queue="sync",source_type="none",outcome="stalled"} 1');
    expect(text).not.toContain('pw@host');
  });

  it('reads queue depth once for scrapes that arrive together, and reports Redis down as 0', async () => {
    let reads = 0;
    let up = true;
    const metrics = new Metrics({
      sourceTypes: [],
      queueDepth: async () => {
        reads += 1;
        await new Promise((r) => setTimeout(r, 20));
        return up ? { queues: { sync: { waiting: 3, active: 1 } }, schedules: 5 } : undefined;
      },
    });
    const texts = await Promise.all(Array.from({ length: 5 }, () => metrics.render()));
    expect(reads).toBe(1);
    expect(texts[4]).toContain('sluice_queue_jobs{queue="sync",state="waiting"} 3');
    expect(texts[4]).toContain('sluice_schedules{queue="sync"} 5');
    expect(texts[4]).toContain('sluice_redis_up 1');
    up = false;
    const down = await metrics.render();
    expect(reads).toBe(2);
    expect(down).toContain('sluice_redis_up 0');
    expect(down).not.toContain('sluice_queue_jobs{');
    expect(down).not.toMatch(/^sluice_schedules\b/m);
  });
});
