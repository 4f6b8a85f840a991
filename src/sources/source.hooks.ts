import type { ValidateFunction } from 'ajv';
import type { FieldError } from '../http/errors';
import type { ResourceHooks, Row } from '../http/crud/resource';
import type { RawDataSource } from '../generated';
import {
  DEFAULT_SCHEMA_LIMITS,
  linearAjv,
  schemaDefinitionErrors,
  type SchemaLimits,
} from './schema-definition';
import type { SourceCounts } from './source-counts';
import { SCHEDULE_FIELDS, scheduleProblems, type ScheduleSettings } from './source-schedule';
import { syncModeProblems } from './sync-mode';

/** What a source type's connector says about valid settings (from the connector registry). */
export interface TypeRules {
  metadataSchema?: Readonly<Record<string, unknown>>;
  checkConnectionString?(value: string): string | undefined;
  /** Whether a sync with this metadata reads the whole source (see Connector.fullRefresh). */
  fullRefresh?(metadata: Record<string, unknown> | null): boolean;
}

/** What an update is checked against besides its body: the source as stored. */
export interface StoredSettings extends Partial<ScheduleSettings> {
  source_type: string | null;
  metadata: Record<string, unknown> | null;
  sync_mode: string | null;
  has_connection_string: boolean;
}

export interface SourceHooksDeps {
  counts: SourceCounts;
  /** Rules per source_type; a type without rules accepts any metadata. */
  rules?: ReadonlyMap<string, TypeRules>;
  /**
   * What is stored of a source, for updates that do not send every field: its settings, and whether
   * it holds a connection string (never the value).
   */
  stored?(id: string): Promise<StoredSettings | undefined>;
  /** Caps on schema_definition (size, depth, subschemas, patterns). */
  schemaLimits?: SchemaLimits;
}

// The metadata a user sends is matched against the connectors' patterns: on the linear engine too.
const ajv = linearAjv();

/**
 * RawDataSource behaviour the spec cannot say: schema_definition must be a JSON Schema within the
 * caps whose regexes the linear engine takes (schema-definition.ts); the metadata keys and
 * connection string a type's connector reads are checked at create and update (so a bad setting
 * is a 400, not a failed sync later); list totals come from the counts ledger instead of count(*);
 * sync_mode must suit the type and settings (sync-mode.ts).
 */
export function sourceHooks({
  counts,
  rules = new Map(),
  stored,
  schemaLimits = DEFAULT_SCHEMA_LIMITS,
}: SourceHooksDeps): ResourceHooks<RawDataSource> {
  const metadataValidators = new Map<string, ValidateFunction>();
  for (const [type, rule] of rules)
    if (rule.metadataSchema) metadataValidators.set(type, ajv.compile(rule.metadataSchema));

  return {
    count: (filters) => counts.count(filters),
    async validate(input: Row, _mode, id?: string): Promise<FieldError[]> {
      const errors: FieldError[] = [];
      const schema = input.schema_definition;
      if (Array.isArray(schema))
        errors.push({ pointer: '/schema_definition', in: 'body', message: 'must be a JSON Schema object' });
      else if (schema && typeof schema === 'object')
        errors.push(...schemaDefinitionErrors(schema as Record<string, unknown>, schemaLimits));
      const touchesTypeRules =
        'metadata' in input || 'connection_string' in input || 'source_type' in input || 'sync_mode' in input;
      const touchesSchedule = SCHEDULE_FIELDS.some((f) => f in input);
      if (!touchesTypeRules && !touchesSchedule) return errors;
      const before = id ? await stored?.(id) : undefined;
      // refresh_interval or schedule_cron, never both (source-schedule.ts).
      if (touchesSchedule) errors.push(...scheduleProblems(input, before));
      if (!touchesTypeRules) return errors;
      const type =
        'source_type' in input ? (input.source_type as string | null) : (before?.source_type ?? null);
      // A type change keeps the stored connection string, which was checked against the old type's
      // rules only (a webhook secret is no FILE_ROOTS path). Rather than decrypting it to check it
      // again, the change must resend it: the stored secret is never read back for a request.
      if (
        type &&
        before?.has_connection_string &&
        before.source_type !== type &&
        !('connection_string' in input)
      )
        errors.push({
          pointer: '/connection_string',
          in: 'body',
          message: `send connection_string again when changing source_type from ${before.source_type} to ${type}: the stored one was checked against ${before.source_type} rules only`,
        });
      const metadata = input.metadata as Record<string, unknown> | null | undefined;
      const rule = type ? rules.get(type) : undefined;
      // The source as it will be saved: an omitted field keeps its stored value.
      const saved = {
        source_type: type,
        sync_mode: 'sync_mode' in input ? input.sync_mode : (before?.sync_mode ?? 'append'),
        metadata: 'metadata' in input ? metadata : before?.metadata,
      };
      // Like the metadata rules, the mode's rules are a type's: a source without one cannot sync yet.
      if (!type) return errors;
      errors.push(...syncModeProblems(saved, rule?.fullRefresh?.(saved.metadata ?? null)));
      const validateMetadata = metadataValidators.get(type);
      // Metadata that configures the connector (has a key it reads) must be complete and valid;
      // metadata holding only the user's own keys is theirs, and the test step reports what is missing.
      const known = Object.keys((rule?.metadataSchema?.properties as object | undefined) ?? {});
      const configures = metadata && Object.keys(metadata).some((k) => known.includes(k));
      if (validateMetadata && 'metadata' in input && configures && !validateMetadata(metadata)) {
        for (const e of validateMetadata.errors ?? []) {
          const missing = e.keyword === 'required' ? `/${String(e.params.missingProperty)}` : '';
          errors.push({
            pointer: `/metadata${e.instancePath}${missing}`,
            in: 'body',
            message: e.message ?? 'is invalid',
          });
        }
      }
      const secret = input.connection_string;
      const problem =
        typeof secret === 'string' ? rules.get(type)?.checkConnectionString?.(secret) : undefined;
      if (problem) errors.push({ pointer: '/connection_string', in: 'body', message: problem });
      return errors;
    },
  };
}
