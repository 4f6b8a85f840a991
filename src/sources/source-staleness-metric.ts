import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../logger';
import { STALENESS_SERIES_MAX, type SourceFreshness } from './source-freshness';

/**
 * `sluice_source_staleness_seconds{source_id}`: seconds since each watched source (active, with a
 * freshness_target_seconds) last synced successfully, read from Postgres at scrape time, so every
 * process reports the same values. The one metric labelled by an id: its series are bounded by
 * the sources an operator chose to watch (setting a target is the opt-in), and at most
 * STALENESS_SERIES_MAX of them, the stalest, are reported. A scrape the database cannot answer
 * within `timeoutMs` reports no series (never stale values).
 */
export function registerStalenessMetric(
  registry: Registry,
  freshness: Pick<SourceFreshness, 'staleness'>,
  options: { timeoutMs: number; logger?: Logger },
): Gauge<'source_id'> {
  return new Gauge({
    name: 'sluice_source_staleness_seconds',
    help: `Seconds since the last successful sync of each active source that has a freshness_target_seconds (or since it was created, before its first); the ${STALENESS_SERIES_MAX} stalest at most.`,
    labelNames: ['source_id'],
    registers: [registry],
    async collect() {
      this.reset();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), options.timeoutMs);
      });
      try {
        const rows = await Promise.race([freshness.staleness(), timeout]);
        for (const row of rows ?? []) this.set({ source_id: row.sourceId }, row.seconds);
      } catch (err) {
        options.logger?.warn({ err: (err as Error).message }, 'staleness metric not read');
      } finally {
        clearTimeout(timer);
      }
    },
  });
}
