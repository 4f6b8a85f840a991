import { SAFE_TEXT } from '../schema/field-types';
import type { EntityInfo, FieldInfo } from './entity-info';
import { writableFields } from './entity-info';

type Schema = Record<string, unknown>;

export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;

function valueSchema(f: FieldInfo): Schema {
  switch (f.type) {
    case 'uuid':
      return { type: 'string', format: 'uuid' };
    case 'string':
    case 'text':
      return {
        type: 'string',
        ...(f.required ? { minLength: 1 } : {}),
        ...(f.max_length ? { maxLength: f.max_length } : {}),
        pattern: SAFE_TEXT,
      };
    case 'enum':
      return { type: 'string', enum: f.values };
    case 'integer':
      return { type: 'integer', minimum: f.min ?? INT32_MIN, maximum: f.max ?? INT32_MAX };
    case 'number':
      return {
        type: 'number',
        ...(f.min !== undefined ? { minimum: f.min } : {}),
        ...(f.max !== undefined ? { maximum: f.max } : {}),
      };
    case 'boolean':
      return { type: 'boolean' };
    case 'datetime':
      return { type: 'string', format: 'date-time' };
    case 'json':
      // jsonb-safe: no U+0000 or lone surrogate anywhere and bounded depth (checked by the x-jsonb keyword).
      // Free-form said out loud: a bare `type: object` generates `Record<string, never>` in clients.
      return { type: 'object', additionalProperties: true, 'x-jsonb': true };
  }
}

function orNull(schema: Schema): Schema {
  const out: Schema = { ...schema, type: [schema.type, 'null'] };
  if (Array.isArray(schema.enum)) out.enum = [...(schema.enum as unknown[]), null];
  return out;
}

/**
 * A default is said in words, not with the `default` keyword: the server applies it (bodies are
 * validated without useDefaults), while client generators read `default` as "always present" and
 * would make the field required — and on an update, where an omitted field keeps its value, a
 * client filling in defaults would silently reset it. Updates say nothing of defaults at all.
 */
function inputFieldSchema(f: FieldInfo, mode: 'create' | 'update'): Schema {
  const schema = valueSchema(f);
  if (f.default !== undefined && mode === 'create')
    schema.description = `Defaults to ${JSON.stringify(f.default)} when left out.`;
  if (f.sensitive) {
    schema.writeOnly = true;
    schema.description = 'Secret: stored encrypted, returned only in masked form.';
  }
  return f.nullable ? orNull(schema) : schema;
}

export function createSchema(e: EntityInfo): Schema {
  const fields = writableFields(e);
  return {
    $id: `${e.pascal}Create`,
    type: 'object',
    additionalProperties: false,
    required: fields.filter((f) => f.required).map((f) => f.name),
    properties: Object.fromEntries(fields.map((f) => [f.name, inputFieldSchema(f, 'create')])),
  };
}

export function updateSchema(e: EntityInfo): Schema {
  const fields = writableFields(e);
  return {
    $id: `${e.pascal}Update`,
    type: 'object',
    additionalProperties: false,
    description: 'Fields left out keep their value; null clears a nullable field.',
    properties: Object.fromEntries(fields.map((f) => [f.name, inputFieldSchema(f, 'update')])),
  };
}

export function responseSchema(e: EntityInfo): Schema {
  const properties: Record<string, Schema> = {};
  for (const f of e.fields) {
    if (f.sensitive) {
      properties[f.name] = { type: ['string', 'null'], description: 'Masked: secrets replaced by ****.' };
      properties[`has_${f.name}`] = { type: 'boolean' };
      continue;
    }
    const base = f.type === 'json' ? { type: 'object', additionalProperties: true } : valueSchema(f);
    delete base.pattern;
    const schema = f.readOnly ? { ...base, readOnly: true } : base;
    properties[f.name] = f.nullable ? orNull(schema) : schema;
  }
  return {
    $id: e.pascal,
    type: 'object',
    additionalProperties: false,
    required: Object.keys(properties),
    properties,
  };
}

export function listSchema(e: EntityInfo): Schema {
  return {
    $id: `${e.pascal}List`,
    type: 'object',
    additionalProperties: false,
    required: ['data', 'pagination'],
    properties: {
      data: { type: 'array', items: { $ref: e.pascal } },
      pagination: { $ref: 'Pagination' },
    },
  };
}

export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;

export function listQuerySchema(e: EntityInfo): Schema {
  const properties: Record<string, Schema> = {};
  for (const [param, fieldName] of Object.entries(e.filters)) {
    const field = e.fields.find((f) => f.name === fieldName)!;
    properties[param] = { ...valueSchema(field), description: `Only items whose ${fieldName} equals this.` };
  }
  for (const [param, fieldName] of Object.entries(e.prefixFilters)) {
    const field = e.fields.find((f) => f.name === fieldName)!;
    properties[param] = {
      ...valueSchema({ ...field, required: true }),
      description: `Only items whose ${fieldName} starts with this, ignoring case (% and _ match themselves).`,
    };
  }
  properties.limit = { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE };
  properties.offset = { type: 'integer', minimum: 0, maximum: INT32_MAX, default: 0 };
  return { $id: `${e.pascal}ListQuery`, type: 'object', additionalProperties: false, properties };
}
