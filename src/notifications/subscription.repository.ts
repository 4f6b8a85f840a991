import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { associatedData } from '../crypto/rewrap';
import type { SecretBox } from '../crypto/secret-box';
import type {
  NotifiableEventType,
  Subscription,
  SubscriptionCreate,
  SubscriptionUpdate,
} from './notification.contracts';

export const SUBSCRIPTIONS_TABLE = 'notification_subscriptions';
/** Never secret_ciphertext: it leaves this module only decrypted, in target(), for the sender. */
const COLUMNS = ['id', 'url', 'event_types', 'description', 'enabled', 'created_at', 'updated_at'] as const;

interface SubscriptionRow {
  id: string;
  url: string;
  event_types: NotifiableEventType[];
  description: string | null;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
}

const toSubscription = (row: SubscriptionRow): Subscription => ({
  id: row.id,
  url: row.url,
  event_types: row.event_types,
  description: row.description,
  enabled: row.enabled,
  has_secret: true,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
});

/** Where and how a delivery is sent: the URL and the decrypted signing secret. */
export interface DeliveryTarget {
  url: string;
  secret: string;
}

/**
 * The notification_subscriptions table. The signing secret is sealed with the SecretBox, bound to
 * its row like a source's connection string (key rotation rewraps it with them), and only
 * `target()` decrypts it, for the worker that signs a delivery.
 */
export class SubscriptionRepository {
  constructor(
    private readonly knex: Knex,
    private readonly secrets: SecretBox,
  ) {}

  private seal(id: string, secret: string): string {
    return this.secrets.encrypt(secret, associatedData(SUBSCRIPTIONS_TABLE, 'secret', id));
  }

  /** `enabled` defaults to true (the request schema fills it in; other callers may omit it). */
  async create(input: Omit<SubscriptionCreate, 'enabled'> & { enabled?: boolean }): Promise<Subscription> {
    const id = randomUUID();
    const [row] = await this.knex(SUBSCRIPTIONS_TABLE)
      .insert({
        id,
        url: input.url,
        event_types: input.event_types,
        secret_ciphertext: this.seal(id, input.secret),
        description: input.description ?? null,
        enabled: input.enabled ?? true,
      })
      .returning<SubscriptionRow[]>([...COLUMNS]);
    return toSubscription(row!);
  }

  async list(limit: number, offset: number): Promise<{ data: Subscription[]; total: number }> {
    const [rows, counted] = await Promise.all([
      this.knex(SUBSCRIPTIONS_TABLE)
        .select<SubscriptionRow[]>([...COLUMNS])
        .orderBy([
          { column: 'created_at', order: 'desc' },
          { column: 'id', order: 'desc' },
        ])
        .limit(limit)
        .offset(offset),
      this.knex(SUBSCRIPTIONS_TABLE).count<{ count: string }[]>({ count: '*' }),
    ]);
    return { data: rows.map(toSubscription), total: Number(counted[0]?.count ?? 0) };
  }

  async get(id: string): Promise<Subscription | undefined> {
    const row = await this.knex(SUBSCRIPTIONS_TABLE)
      .select<SubscriptionRow[]>([...COLUMNS])
      .where({ id })
      .first();
    return row ? toSubscription(row as SubscriptionRow) : undefined;
  }

  async update(id: string, patch: SubscriptionUpdate): Promise<Subscription | undefined> {
    const changes: Record<string, unknown> = { updated_at: this.knex.fn.now() };
    if (patch.url !== undefined) changes.url = patch.url;
    if (patch.event_types !== undefined) changes.event_types = patch.event_types;
    if (patch.description !== undefined) changes.description = patch.description;
    if (patch.enabled !== undefined) changes.enabled = patch.enabled;
    if (patch.secret !== undefined) changes.secret_ciphertext = this.seal(id, patch.secret);
    const [row] = await this.knex(SUBSCRIPTIONS_TABLE)
      .where({ id })
      .update(changes)
      .returning<SubscriptionRow[]>([...COLUMNS]);
    return row ? toSubscription(row) : undefined;
  }

  /** Deletes the subscription and, by cascade, its pending deliveries and its log. */
  async delete(id: string): Promise<boolean> {
    return (await this.knex(SUBSCRIPTIONS_TABLE).where({ id }).delete()) > 0;
  }

  /** Ids of the enabled subscriptions that asked for `type` (the GIN index on event_types). */
  async subscribedTo(type: string): Promise<string[]> {
    const rows = await this.knex(SUBSCRIPTIONS_TABLE)
      .select<{ id: string }[]>('id')
      .where('enabled', true)
      .whereRaw('event_types @> ARRAY[?]::text[]', [type]);
    return rows.map((r) => r.id);
  }

  /** The URL and decrypted secret of an enabled subscription; undefined when gone or disabled. */
  async target(id: string): Promise<DeliveryTarget | undefined> {
    const row = await this.knex(SUBSCRIPTIONS_TABLE)
      .select<{ url: string; secret_ciphertext: string }[]>('url', 'secret_ciphertext')
      .where({ id, enabled: true })
      .first();
    if (!row) return undefined;
    const secret = this.secrets.decrypt(
      row.secret_ciphertext,
      associatedData(SUBSCRIPTIONS_TABLE, 'secret', id),
    );
    return { url: row.url, secret };
  }
}
