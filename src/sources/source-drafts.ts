import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { ConnectorSource } from '../connectors/connector';
import type { SecretBox } from '../crypto/secret-box';
import type { RawDataSource } from '../generated';
import type { ResourceHooks, Row } from '../http/crud/resource';
import { ValidationError } from '../http/errors';

const TABLE = 'source_drafts';
export const DRAFT_TTL_MS = 10 * 60 * 1000;

export interface DraftInput {
  name: string;
  source_type?: string | null;
  connection_string?: string | null;
  schema_definition?: Record<string, unknown> | null;
  metadata?: Record<string, unknown> | null;
}

/** Unsaved configurations to test: sealed at rest, read once by the worker, expired after minutes. */
export class SourceDrafts {
  constructor(
    private readonly knex: Knex,
    private readonly secrets: SecretBox,
  ) {}

  private aad(id: string): string {
    return `${TABLE}.connection_string:${id}`;
  }

  async save(input: DraftInput): Promise<string> {
    const id = randomUUID();
    const secret = input.connection_string ?? null;
    await this.knex(TABLE).insert({
      id,
      name: input.name,
      source_type: input.source_type ?? null,
      connection_string_ciphertext: secret === null ? null : this.secrets.encrypt(secret, this.aad(id)),
      schema_definition: input.schema_definition ? JSON.stringify(input.schema_definition) : null,
      metadata: input.metadata ? JSON.stringify(input.metadata) : null,
      expires_at: new Date(Date.now() + DRAFT_TTL_MS),
    });
    return id;
  }

  /** The draft as a connector sees it, deleted as it is read: a draft is tested once. */
  async take(id: string): Promise<ConnectorSource | undefined> {
    const [row] = await this.knex(TABLE)
      .where({ id })
      .where('expires_at', '>', new Date())
      .delete()
      .returning('*');
    if (!row) return undefined;
    return {
      id,
      name: row.name,
      source_type: row.source_type,
      connection_string: row.connection_string_ciphertext
        ? this.secrets.decrypt(row.connection_string_ciphertext, this.aad(id))
        : null,
      metadata: row.metadata,
      schema_definition: row.schema_definition,
    };
  }

  async purgeExpired(): Promise<number> {
    return this.knex(TABLE).where('expires_at', '<=', new Date()).delete();
  }
}

/**
 * Validates an unsaved configuration exactly as a create would be (the generated create schema,
 * then the source hooks' rules), so a test of a draft and a later save agree on what is valid.
 */
export function draftValidator(
  validateCreate: (body: unknown) => Row,
  hooks: Pick<ResourceHooks<RawDataSource>, 'validate'>,
): (body: unknown) => Promise<DraftInput> {
  return async (body) => {
    const input = validateCreate(body);
    const errors = (await hooks.validate?.(input, 'create')) ?? [];
    if (errors.length) throw new ValidationError(errors);
    return input as unknown as DraftInput;
  };
}
