import { PermanentSyncError, type ConnectorSource } from '../connectors/connector';
import { DecryptionError } from '../crypto/secret-box';
import type { CrudRepository } from '../http/crud/crud.repository';
import type { RawDataSource } from '../generated';

/** Loads a source for a connector: the stored settings plus the decrypted secret, for this call only. */
export class SourceReader {
  constructor(private readonly sources: CrudRepository<RawDataSource>) {}

  async load(id: string): Promise<ConnectorSource | undefined> {
    const source = await this.sources.get(id);
    if (!source) return undefined;
    let secret: string | null = null;
    try {
      if (source.has_connection_string) secret = await this.sources.revealSecret(id, 'connection_string');
    } catch (err) {
      // Fails closed, and says why without details an attacker could use.
      if (err instanceof DecryptionError)
        throw new PermanentSyncError(
          'the stored connection string cannot be decrypted (key missing from ENCRYPTION_KEYS, or data altered)',
          'decrypt',
        );
      throw err;
    }
    return {
      id: source.id,
      name: source.name,
      source_type: source.source_type,
      connection_string: secret,
      metadata: source.metadata,
      schema_definition: source.schema_definition,
    };
  }
}
