import { readFile } from 'node:fs/promises';
import { Ajv, type ValidateFunction } from 'ajv';
import { FIELD_TYPES, type FieldType } from '../schema/field-types';
import { describeEntity } from './entity-info';

/** The entity format of specs/entities.json: the seed's format plus an optional `api` block. */
export interface FieldSpec {
  name: string;
  type: FieldType;
  primary_key?: boolean;
  required?: boolean;
  max_length?: number;
  min?: number;
  max?: number;
  unique?: boolean;
  default?: string | number | boolean;
  values?: string[];
  sensitive?: boolean;
  auto_now?: boolean;
  auto_now_add?: boolean;
  /**
   * A valid value, for fields whose values the entity's own rules check beyond the schema (a cron
   * expression, a time zone): the generated contract tests send it instead of a generic sample.
   */
  example?: string | number | boolean;
}

export interface IndexSpec {
  fields: string[];
  unique?: boolean;
}

export interface ApiSpec {
  /** URL path of the collection; default: kebab-case plural of the entity name. */
  path?: string;
  /** Fields the server owns: shown in responses, refused in request bodies. */
  read_only?: string[];
  /** Server-set initial values for read-only fields (become column defaults). */
  initial?: Record<string, string | number | boolean>;
  /** List query parameters: parameter name → field (exact match). */
  filters?: Record<string, string>;
  /**
   * List query parameters that match the start of a text field, ignoring case: parameter name →
   * field. Served by `lower(field) LIKE 'prefix%'`: index it with (lower(field) text_pattern_ops),
   * in a hand-written migration (the spec's indexes are plain column lists).
   */
  prefix_filters?: Record<string, string>;
}

export interface EntitySpec {
  name: string;
  layer?: string;
  fields: FieldSpec[];
  indexes?: IndexSpec[];
  api?: ApiSpec;
}

export interface SpecFile {
  entities: EntitySpec[];
}

const identifier = { type: 'string', pattern: '^[a-z][a-z0-9_]{0,62}$' } as const;

/** JSON Schema of the spec file itself, so a typo in the spec fails `make generate` with a clear message. */
const specFileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['entities'],
  properties: {
    entities: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'fields'],
        properties: {
          name: { type: 'string', pattern: '^[A-Z][A-Za-z0-9]{0,40}$' },
          layer: { type: 'string' },
          fields: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name', 'type'],
              properties: {
                name: identifier,
                type: { enum: FIELD_TYPES },
                primary_key: { type: 'boolean' },
                required: { type: 'boolean' },
                max_length: { type: 'integer', minimum: 1, maximum: 10485760 },
                min: { type: 'number' },
                max: { type: 'number' },
                unique: { type: 'boolean' },
                default: { type: ['string', 'number', 'boolean'] },
                values: {
                  type: 'array',
                  minItems: 1,
                  uniqueItems: true,
                  items: { type: 'string', minLength: 1 },
                },
                sensitive: { type: 'boolean' },
                auto_now: { type: 'boolean' },
                auto_now_add: { type: 'boolean' },
                example: { type: ['string', 'number', 'boolean'] },
              },
            },
          },
          indexes: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['fields'],
              properties: {
                fields: { type: 'array', minItems: 1, items: identifier },
                unique: { type: 'boolean' },
              },
            },
          },
          api: {
            type: 'object',
            additionalProperties: false,
            properties: {
              path: { type: 'string', pattern: '^/[a-z0-9-]+$' },
              read_only: { type: 'array', items: identifier },
              initial: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
              filters: {
                type: 'object',
                propertyNames: { pattern: '^[a-z][a-z0-9_]*$' },
                additionalProperties: identifier,
              },
              prefix_filters: {
                type: 'object',
                propertyNames: { pattern: '^[a-z][a-z0-9_]*$' },
                additionalProperties: identifier,
              },
            },
          },
        },
      },
    },
  },
} as const;

export class SpecError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid entity spec:\n  - ${problems.join('\n  - ')}`);
    this.name = 'SpecError';
  }
}

let validateStructure: ValidateFunction | undefined;

/** Checks the structure with JSON Schema, then the cross-references a schema cannot express. */
export function validateSpec(input: unknown): SpecFile {
  validateStructure ??= new Ajv({ allErrors: true, allowUnionTypes: true }).compile(specFileSchema);
  const validate = validateStructure;
  if (!validate(input)) {
    throw new SpecError((validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`));
  }
  const spec = input as SpecFile;
  const problems: string[] = [];
  const entityNames = new Set<string>();
  const tables = new Map<string, string>();
  const paths = new Map<string, string>();
  for (const entity of spec.entities) {
    const where = entity.name;
    if (entityNames.has(entity.name)) problems.push(`${where}: entity defined twice`);
    entityNames.add(entity.name);
    // Names are pluralised (Box and Boxe both become "boxes"): two entities must not share a table or path.
    const { table, path } = describeEntity(entity);
    const otherTable = tables.get(table);
    if (otherTable && otherTable !== entity.name)
      problems.push(`${where}: table ${table} is also ${otherTable}'s`);
    tables.set(table, entity.name);
    const otherPath = paths.get(path);
    if (otherPath && otherPath !== entity.name)
      problems.push(`${where}: path ${path} is also ${otherPath}'s`);
    paths.set(path, entity.name);
    const names = new Set<string>();
    for (const field of entity.fields) {
      if (names.has(field.name)) problems.push(`${where}.${field.name}: field defined twice`);
      names.add(field.name);
      if (field.type === 'enum' && !field.values) problems.push(`${where}.${field.name}: enum needs values`);
      if (field.type !== 'enum' && field.values)
        problems.push(`${where}.${field.name}: values only apply to enum`);
      if (field.max_length !== undefined && field.type !== 'string')
        problems.push(`${where}.${field.name}: max_length only applies to string`);
      if ((field.min !== undefined || field.max !== undefined) && !['integer', 'number'].includes(field.type))
        problems.push(`${where}.${field.name}: min/max only apply to integer and number`);
      if (field.sensitive && field.type !== 'string')
        problems.push(`${where}.${field.name}: only string fields can be sensitive`);
      if (field.sensitive && field.unique)
        problems.push(`${where}.${field.name}: a sensitive field cannot be unique`);
      if (
        field.default !== undefined &&
        field.type === 'enum' &&
        !field.values?.includes(String(field.default))
      )
        problems.push(`${where}.${field.name}: default is not one of the values`);
      const defaultProblem = field.default === undefined ? undefined : badDefault(field);
      if (defaultProblem) problems.push(`${where}.${field.name}: default ${defaultProblem}`);
      if (field.min !== undefined && field.max !== undefined && field.min > field.max)
        problems.push(`${where}.${field.name}: min is greater than max`);
    }
    // A sensitive field owns <name>_ciphertext, <name>_masked and has_<name>; nothing else may.
    for (const field of entity.fields.filter((f) => f.sensitive))
      for (const derived of [`${field.name}_ciphertext`, `${field.name}_masked`, `has_${field.name}`])
        if (names.has(derived))
          problems.push(`${where}.${derived}: clashes with sensitive field ${field.name}`);
    const pks = entity.fields.filter((f) => f.primary_key);
    if (pks.length !== 1 || pks[0]?.type !== 'uuid')
      problems.push(`${where}: needs exactly one primary key, of type uuid`);
    for (const index of entity.indexes ?? []) {
      for (const f of index.fields) if (!names.has(f)) problems.push(`${where}: index on unknown field ${f}`);
      const sensitive = index.fields.filter((f) => entity.fields.find((x) => x.name === f)?.sensitive);
      if (sensitive.length) problems.push(`${where}: index on sensitive field ${sensitive.join(', ')}`);
    }
    for (const f of entity.api?.read_only ?? [])
      if (!names.has(f)) problems.push(`${where}: read_only ${f} unknown`);
    for (const f of Object.keys(entity.api?.initial ?? {}))
      if (!names.has(f)) problems.push(`${where}: initial value for unknown field ${f}`);
    for (const [param, f] of Object.entries(entity.api?.filters ?? {})) {
      const field = entity.fields.find((x) => x.name === f);
      if (!field) problems.push(`${where}: filter ${param} on unknown field ${f}`);
      else if (!['enum', 'boolean', 'string', 'uuid', 'integer'].includes(field.type) || field.sensitive)
        problems.push(`${where}: filter ${param} on a ${field.type} field is not supported`);
      if (['limit', 'offset'].includes(param)) problems.push(`${where}: filter name ${param} is reserved`);
    }
    for (const [param, f] of Object.entries(entity.api?.prefix_filters ?? {})) {
      const field = entity.fields.find((x) => x.name === f);
      if (!field) problems.push(`${where}: prefix filter ${param} on unknown field ${f}`);
      else if (!['string', 'text'].includes(field.type) || field.sensitive)
        problems.push(`${where}: prefix filter ${param} on a ${field.type} field is not supported`);
      if (['limit', 'offset'].includes(param) || param in (entity.api?.filters ?? {}))
        problems.push(`${where}: prefix filter name ${param} is reserved or already a filter`);
    }
  }
  if (problems.length) throw new SpecError(problems);
  return spec;
}

/** Why a field's default does not fit its type and bounds (it becomes a column default and a schema default). */
function badDefault(field: FieldSpec): string | undefined {
  const value = field.default;
  switch (field.type) {
    case 'integer':
    case 'number':
      if (typeof value !== 'number' || (field.type === 'integer' && !Number.isInteger(value)))
        return `must be ${field.type === 'integer' ? 'an integer' : 'a number'}`;
      if ((field.min !== undefined && value < field.min) || (field.max !== undefined && value > field.max))
        return 'is outside min/max';
      return undefined;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be a boolean';
    case 'string':
    case 'text':
      if (typeof value !== 'string') return 'must be a string';
      return field.max_length !== undefined && [...value].length > field.max_length
        ? 'is longer than max_length'
        : undefined;
    case 'enum':
      return typeof value === 'string' ? undefined : 'must be a string';
    default:
      return `is not supported on ${field.type} fields`;
  }
}

export async function loadSpec(file: string): Promise<SpecFile> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new SpecError([`${file}: ${(err as Error).message}`]);
  }
  return validateSpec(raw);
}
