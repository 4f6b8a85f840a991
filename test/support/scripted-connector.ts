import type { Connector, ConnectorSource, SyncBatch, TestStep } from '../../src/connectors/connector';
import { PermanentSyncError } from '../../src/connectors/connector';

/**
 * A connector double for orchestration tests (real connectors are tested against real peers in
 * their own suites). Behaviour comes from the source's metadata, so one registry serves every
 * case: `records` (count), `batch` (size), `fail` ('permanent' | 'transient-once' | 'always'),
 * `delay_ms` (per batch, honouring the abort signal unless `ignore_abort`), `crash: 'exit' | 'abort'`
 * (after `crash_after` batches, default 1, the whole worker process dies: a poison source),
 * `rows` (the records themselves, instead of `records` generated ones), `full_refresh: true` (every
 * sync reads everything again and keeps no state, as a file does), `shape: 'strings'` (every n is a
 * string). Each batch carries provenance: `{script: name}` and each record's `{index}`.
 */
export class ScriptedConnector implements Connector {
  private readonly transientSeen = new Set<string>();
  syncCalls = 0;

  constructor(readonly type: string) {}

  fullRefresh(metadata: Record<string, unknown> | null): boolean {
    return metadata?.full_refresh === true;
  }

  async test(source: ConnectorSource): Promise<TestStep[]> {
    const fail = source.metadata?.fail === 'permanent';
    return [
      { name: 'configuration', status: 'passed', message: 'metadata read', duration_ms: 0 },
      fail
        ? { name: 'connect', status: 'failed', message: 'refused', code: 'refused', duration_ms: 1 }
        : { name: 'connect', status: 'passed', message: 'connected', duration_ms: 1 },
    ];
  }

  async *sync(
    source: ConnectorSource,
    state: unknown,
    ctx: { signal: AbortSignal },
  ): AsyncIterable<SyncBatch> {
    this.syncCalls += 1;
    const meta = source.metadata ?? {};
    const rows = Array.isArray(meta.rows) ? (meta.rows as unknown[]) : undefined;
    const total = rows ? rows.length : Number(meta.records ?? 3);
    const fullRefresh = meta.full_refresh === true;
    const size = Number(meta.batch ?? 2);
    const delay = Number(meta.delay_ms ?? 0);
    if (meta.fail === 'permanent')
      throw new PermanentSyncError(`bad credentials for ${source.connection_string}`);
    if (meta.fail === 'always') throw new Error(`upstream unavailable at ${source.connection_string}`);
    if (meta.fail === 'transient-once' && !this.transientSeen.has(source.id)) {
      this.transientSeen.add(source.id);
      throw new Error('temporary glitch');
    }
    let offset = fullRefresh ? 0 : ((state as { offset?: number } | undefined)?.offset ?? 0);
    while (offset < total) {
      if (delay) await new Promise((r) => setTimeout(r, delay));
      // `ignore_abort`: a connector stuck where it cannot see the signal (a blocking read).
      if (ctx.signal.aborted && !meta.ignore_abort) throw new Error('aborted');
      // `shape: 'mixed'` makes every third record a string-valued n, for schema checks and drift.
      const records = Array.from({ length: Math.min(size, total - offset) }, (_, i) => {
        const n = offset + i;
        if (rows) return rows[n];
        if (meta.shape === 'strings') return { n: `#${n}` };
        return meta.shape === 'mixed' && n % 3 === 2 ? { n: `#${n}`, extra: true } : { n };
      });
      const first = offset;
      offset += records.length;
      yield {
        records,
        ...(fullRefresh ? {} : { state: { offset } }),
        provenance: { script: source.name },
        recordProvenance: { index: records.map((_, i) => first + i) },
      };
      // A poison source (native crash, OOM, a bug that exits): the process dies under every job it holds.
      if (meta.crash && offset >= size * Number(meta.crash_after ?? 1)) {
        if (meta.crash === 'abort') process.abort();
        process.exit(70);
      }
    }
  }
}
