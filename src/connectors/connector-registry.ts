import type { Connector } from './connector';
import { NotImplementedConnectorError } from './connector';

/** Looks up the connector of a source type; a type without one fails its job with a clear error. */
export class ConnectorRegistry {
  private readonly byType = new Map<string, Connector>();

  constructor(connectors: Connector[] = []) {
    for (const c of connectors) this.byType.set(c.type, c);
  }

  get(type: string | null): Connector {
    const connector = type ? this.byType.get(type) : undefined;
    if (!connector) throw new NotImplementedConnectorError(type);
    return connector;
  }

  has(type: string): boolean {
    return this.byType.has(type);
  }
}
