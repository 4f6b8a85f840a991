import { describe, expect, it } from 'vitest';
import { NotImplementedConnectorError, type Connector } from './connector';
import { ConnectorRegistry } from './connector-registry';

const fake = (type: string) => ({ type }) as unknown as Connector;

describe('ConnectorRegistry', () => {
  it('finds a connector by type; later registrations of a type replace earlier ones', () => {
    const replacement = fake('api');
    const registry = new ConnectorRegistry([fake('database'), fake('api'), replacement]);
    expect(registry.get('api')).toBe(replacement);
    expect(registry.all().map((c) => c.type)).toEqual(['database', 'api']);
  });

  it('a type without a connector fails as not implemented (never a fake success)', () => {
    const registry = new ConnectorRegistry([fake('database')]);
    expect(() => registry.get('stream')).toThrow(NotImplementedConnectorError);
    expect(() => registry.get('stream')).toThrow('not implemented');
    expect(() => registry.get(null)).toThrow('no source_type');
  });

  it('fails at start when a source type has no connector', () => {
    const registry = new ConnectorRegistry([fake('database')]);
    expect(() => registry.assertComplete(['database', 'api', 'file'])).toThrow(
      'no connector for source type(s): api, file',
    );
    expect(() => registry.assertComplete(['database'])).not.toThrow();
  });
});
