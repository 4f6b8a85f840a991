import type { Knex } from 'knex';

const TABLE = 'audit_log';

import { auditRecordSchema, type AuditEntry, type AuditOutcome, type AuditRecord } from './auth.contracts';

export type { AuditEntry, AuditOutcome, AuditRecord };

/** An audit row as read back: GET /audit selects these and its OpenAPI record requires them. */
export const AUDIT_COLUMNS = auditRecordSchema.required;

export interface AuditQuery {
  limit: number;
  offset: number;
  actor?: string;
  action?: string;
  target_id?: string;
}

export const outcomeOf = (status: number): AuditOutcome =>
  status < 400 ? 'success' : status === 401 || status === 403 || status === 429 ? 'denied' : 'failed';

/** The append-only audit table (the database refuses UPDATE, DELETE and TRUNCATE on it). */
export class AuditLog {
  constructor(private readonly knex: Knex) {}

  async record(entry: AuditEntry): Promise<void> {
    await this.knex(TABLE).insert({ ...entry, detail: JSON.stringify(entry.detail) });
  }

  /** Newest first; every filter is served by an index ending in id. */
  async list(query: AuditQuery): Promise<{ data: AuditRecord[]; total: number }> {
    const filtered = () => {
      const q = this.knex(TABLE);
      if (query.actor !== undefined) q.where('actor', query.actor);
      if (query.action !== undefined) q.where('action', query.action);
      if (query.target_id !== undefined) q.where('target_id', query.target_id);
      return q;
    };
    const [rows, counted] = await Promise.all([
      filtered().select(AUDIT_COLUMNS).orderBy('id', 'desc').limit(query.limit).offset(query.offset),
      filtered().count<{ count: string }[]>({ count: '*' }),
    ]);
    return {
      data: rows.map((r: AuditRecord & { id: string | number; at: Date }) => ({
        ...r,
        id: String(r.id),
        at: r.at.toISOString(),
      })),
      total: Number(counted[0]?.count ?? 0),
    };
  }
}
