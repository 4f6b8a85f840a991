import type { Connector, ConnectorSource, SyncBatch, TestStep } from '../../src/connectors/connector';

/** Source types the end-to-end benchmark registers the no-op connector for. */
export const NOOP_TYPES = ['database', 'api', 'file', 'stream', 'webhook'];

/**
 * A connector that reaches nothing and yields no records: a sync through it is pure orchestration
 * (queue, run rows, source status, events), which is what the end-to-end benchmark compares.
 */
export class NoopConnector implements Connector {
  constructor(readonly type: string) {}

  async test(): Promise<TestStep[]> {
    return [{ name: 'connect', status: 'passed', message: 'no-op', duration_ms: 0 }];
  }

  // eslint-disable-next-line require-yield
  async *sync(_source: ConnectorSource, _state: unknown): AsyncIterable<SyncBatch> {
    return;
  }
}
