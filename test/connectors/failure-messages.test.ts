import { describe, expect, it } from 'vitest';
import type { Connector, ConnectorSource, TestStep } from '../../src/connectors/connector';
import { ApiConnector } from '../../src/connectors/api/api.connector';
import { DatabaseConnector } from '../../src/connectors/database/database.connector';
import { FileConnector } from '../../src/connectors/file/file.connector';
import { StreamConnector } from '../../src/connectors/stream/stream.connector';
import { toConnectorError, unreachableMessage } from '../../src/connectors/kit/classify-error';
import { connectorContext, drain, freePort, startBlackHole } from './support/stream-peers';

/**
 * Every connector's refused and unanswered connections say host:port and what to check, in the
 * test steps and in the sync error (which becomes the run's error). Real loopback peers only: a
 * port with nothing listening, and a listener that accepts and never answers.
 */
const source = (
  type: string,
  connection_string: string,
  metadata: Record<string, unknown>,
): ConnectorSource => ({
  id: '00000000-0000-4000-8000-0000000000f1',
  name: 'failure messages',
  source_type: type,
  connection_string,
  metadata,
  schema_definition: null,
});

const TIMEOUT_MS = 800;
const CASES: [string, Connector, (port: number) => ConnectorSource][] = [
  [
    'postgres',
    new DatabaseConnector(),
    (p) => source('database', `postgres://u:pw@127.0.0.1:${p}/db`, { table: 't' }),
  ],
  [
    'mysql',
    new DatabaseConnector(),
    (p) => source('database', `mysql://u:pw@127.0.0.1:${p}/db`, { table: 't' }),
  ],
  [
    'api',
    new ApiConnector({ http: { retry: { baseDelayMs: 10 } } }),
    (p) => source('api', `http://127.0.0.1:${p}/items`, {}),
  ],
  [
    'file',
    new FileConnector([], { http: { retry: { baseDelayMs: 10 } } }),
    (p) => source('file', `http://127.0.0.1:${p}/x.csv`, {}),
  ],
  ['redis', new StreamConnector(), (p) => source('stream', `redis://127.0.0.1:${p}/0`, { stream: 's' })],
  ['nats', new StreamConnector(), (p) => source('stream', `nats://127.0.0.1:${p}`, { stream: 's' })],
];

const failedStep = async (connector: Connector, src: ConnectorSource): Promise<TestStep> => {
  const steps = await connector.test(src, connectorContext(TIMEOUT_MS));
  const failed = steps.find((s) => s.status === 'failed');
  expect(failed, JSON.stringify(steps)).toBeDefined();
  return failed!;
};
const syncError = async (connector: Connector, src: ConnectorSource): Promise<Error & { code?: string }> => {
  try {
    await drain(connector.sync(src, undefined, connectorContext(TIMEOUT_MS)));
  } catch (err) {
    return err as Error;
  }
  throw new Error('the sync did not fail');
};

describe('refused and unanswered connections say where and what to check', () => {
  for (const [name, connector, src] of CASES) {
    it(`${name}: a refused port`, async () => {
      const port = await freePort();
      const at = `127.0.0.1:${port}`;
      const step = await failedStep(connector, src(port));
      expect(step.code).toBe('refused');
      // The database steps had their own words already (what the code means at that step).
      if (name === 'postgres' || name === 'mysql')
        expect(step.message).toContain(
          `connection to ${at} refused (is the server running and is the port right?)`,
        );
      else
        expect(step.message).toBe(
          `connection refused by ${at} — is the server running and listening on that port? (ECONNREFUSED)`,
        );
      const err = await syncError(connector, src(port));
      expect(err.code).toBe('refused');
      expect(err.message).toMatch(
        new RegExp(
          `^[^:]+: connection refused by ${at} — is the server running and listening on that port\\? \\(ECONNREFUSED\\)$`,
        ),
      );
    }, 30_000);

    it(`${name}: a listener that never answers`, async () => {
      const hole = await startBlackHole();
      try {
        const at = `127.0.0.1:${hole.port}`;
        const step = await failedStep(connector, src(hole.port));
        expect(step.code).toBe('timeout');
        expect(step.message).toContain(`no answer from ${at}`);
        expect(step.message).toMatch(/firewall/);
        const err = await syncError(connector, src(hole.port));
        expect(err.code).toBe('timeout');
        expect(err.message).toContain(`no answer from ${at} (`);
        expect(err.message).toContain('— is the host and port right, is a firewall dropping the traffic');
      } finally {
        await hole.close();
      }
    }, 30_000);
  }

  it('a reset and an unreachable network get their own advice; a cancellation is left alone', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(unreachableMessage(reset, '127.0.0.1:1')).toBe(
      "connection to 127.0.0.1:1 was reset — is that the server's port, and does it speak this source's protocol? (ECONNRESET)",
    );
    const unreachable = Object.assign(new Error('connect EHOSTUNREACH ::1:5'), {
      code: 'EHOSTUNREACH',
      address: '::1',
      port: 5,
    });
    expect(unreachableMessage(unreachable)).toBe(
      '[::1]:5 is unreachable — is the host address right, and is there a network route to it? (EHOSTUNREACH)',
    );
    const cancelled = Object.assign(new Error('the sync was cancelled'), { name: 'AbortError' });
    expect(unreachableMessage(cancelled, '127.0.0.1:1')).toBeUndefined();
    expect(toConnectorError(cancelled, 'read', [], '127.0.0.1:1').message).toBe(
      'read: the sync was cancelled',
    );
    // Without an address anywhere, the driver's words stand.
    expect(unreachableMessage(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBeUndefined();
  });
});
