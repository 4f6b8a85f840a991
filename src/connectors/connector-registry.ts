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

  all(): Connector[] {
    return [...this.byType.values()];
  }

  /** Fails at start when a source type the spec allows has no connector. */
  assertComplete(types: readonly string[]): void {
    const missing = types.filter((t) => !this.byType.has(t));
    if (missing.length) throw new Error(`no connector for source type(s): ${missing.join(', ')}`);
  }
}
