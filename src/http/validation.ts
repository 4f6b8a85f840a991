import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FieldError } from './errors';
import { ValidationError } from './errors';
import { SAFE_TEXT } from '../schema/field-types';

/** Deepest nesting accepted in a json field: Postgres and our own walkers stay far from their stack limits. */
export const MAX_JSON_DEPTH = 32;

// With the u flag a surrogate pair is one code point, so only unpaired halves match.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Why Postgres would refuse `text` as text or jsonb: U+0000, or a lone UTF-16 surrogate (jsonb rejects
 * the `\ud800` escape outright; text would silently store U+FFFD instead of what was sent).
 */
export function textProblem(text: string): string | undefined {
  if (text.includes('\u0000')) return 'must not contain U+0000';
  if (LONE_SURROGATE.test(text)) return 'must not contain unpaired UTF-16 surrogates';
  return undefined;
}

function jsonbProblem(value: unknown, depth: number): string | undefined {
  if (depth > MAX_JSON_DEPTH) return `must not nest deeper than ${MAX_JSON_DEPTH} levels`;
  if (typeof value === 'string') return textProblem(value);
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (const item of value) {
      const p = jsonbProblem(item, depth + 1);
      if (p) return p;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    const p = textProblem(k) ?? jsonbProblem(v, depth + 1);
    if (p) return p;
  }
  return undefined;
}

function createAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: true,
    strictRequired: false,
    coerceTypes: coerce,
    useDefaults: coerce,
    allowUnionTypes: true,
  });
  addFormats.default(ajv, ['uuid', 'date-time']);
  ajv.addKeyword({
    keyword: 'x-jsonb',
    schemaType: 'boolean',
    errors: true,
    validate: function check(this: unknown, _schema: boolean, data: unknown) {
      const problem = jsonbProblem(data, 0);
      if (problem) {
        (check as unknown as { errors: Partial<ErrorObject>[] }).errors = [
          { keyword: 'x-jsonb', message: problem, params: {} },
        ];
        return false;
      }
      return true;
    },
  });
  return ajv;
}

/** Bodies are typed strictly ("90" is not an integer); query strings are parsed into their types. */
export const bodyAjv = createAjv(false);
export const queryAjv = createAjv(true);

function describe(error: ErrorObject, readOnly: ReadonlySet<string>): { path: string; message: string } {
  const path = error.instancePath;
  switch (error.keyword) {
    case 'additionalProperties': {
      const name = String(error.params.additionalProperty);
      return {
        path: `${path}/${name}`,
        message: readOnly.has(name) ? 'is read-only' : 'is not a known field',
      };
    }
    case 'required':
      return { path: `${path}/${String(error.params.missingProperty)}`, message: 'is required' };
    case 'enum':
      return {
        path,
        message: `must be one of: ${(error.params.allowedValues as unknown[]).filter((v) => v !== null).join(', ')}`,
      };
    case 'pattern':
      // Generated text fields carry SAFE_TEXT only; hand-written schemas get ajv's own message.
      return error.params.pattern === SAFE_TEXT
        ? { path, message: 'must not contain U+0000 or unpaired UTF-16 surrogates' }
        : { path, message: error.message ?? 'is invalid' };
    case 'type':
      return { path, message: `must be ${String(error.params.type).replace(',', ' or ')}` };
    default:
      return { path, message: error.message ?? 'is invalid' };
  }
}

/** One entry per invalid field: the first message for each pointer, in document order. */
export function toFieldErrors(
  errors: ErrorObject[] | null | undefined,
  location: 'body' | 'query',
  readOnly: ReadonlySet<string> = new Set(),
): FieldError[] {
  const seen = new Map<string, FieldError>();
  for (const error of errors ?? []) {
    // A nullable enum reports both "type" and "enum"; the enum message says more.
    const { path, message } = describe(error, readOnly);
    const pointer =
      location === 'query' ? path.replace(/^\//, '').replace(/~1/g, '/').replace(/~0/g, '~') : path;
    const existing = seen.get(pointer);
    if (!existing || (error.keyword === 'enum' && existing.message.startsWith('must be '))) {
      seen.set(pointer, { pointer, message, in: location });
    }
  }
  return [...seen.values()];
}

export interface Validator<T> {
  (value: unknown): T;
}

/** Compiles `schema` once; the returned function returns the value or throws a ValidationError. */
export function bodyValidator<T>(schema: object, readOnly: readonly string[] = []): Validator<T> {
  const validate = compileFresh(bodyAjv, schema);
  const readOnlySet = new Set(readOnly);
  return (value) => {
    if (!validate(value)) throw new ValidationError(toFieldErrors(validate.errors, 'body', readOnlySet));
    return value as T;
  };
}

export function queryValidator<T>(schema: object): Validator<T> {
  const validate = compileFresh(queryAjv, schema);
  return (value) => {
    // Copy: coercion and defaults write into the object, and Koa's query object is shared.
    const copy = { ...(value as object) };
    if (!validate(copy)) throw new ValidationError(toFieldErrors(validate.errors, 'query'));
    return copy as T;
  };
}

function compileFresh(ajv: Ajv, schema: object): ValidateFunction {
  const id = (schema as { $id?: string }).$id;
  const existing = id ? ajv.getSchema(id) : undefined;
  return existing ?? ajv.compile(schema);
}
