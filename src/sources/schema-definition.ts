import { createHash } from 'node:crypto';
import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { RE2JS } from 're2js';
import type { FieldError } from '../http/errors';
import { BoundedCache } from '../cache/bounded-cache';
import { DEFAULT_SCHEMA_LIMITS, type SchemaLimits } from '../schema/schema-limits';

export { DEFAULT_SCHEMA_LIMITS, type SchemaLimits };

/**
 * Up to this size a schema is also compiled while the request waits (tens of milliseconds),
 * so a create or update catches everything a compile would. Above it the request path checks it
 * structurally (caps, meta-schema, every regex, local $refs: all linear) and the one compile
 * happens where it is used, in the worker, once per distinct schema: an API request never spends
 * a large compile's CPU, so a stream of big PUTs cannot stall the API.
 */
export const INLINE_COMPILE_MAX = { subschemas: 32, bytes: 8 * 1024 } as const;

const PATTERN_CACHE_SIZE = 2000;
const COMPILED_CACHE_SIZE = 256;

/** Raised for a pattern the linear engine refuses; `pattern` is the user's text. */
export class UnsupportedPatternError extends Error {
  constructor(
    readonly pattern: string,
    reason: string,
  ) {
    super(`pattern ${JSON.stringify(pattern.slice(0, 100))} ${reason}`);
  }
}

const patterns = new BoundedCache<string, RE2JS>(PATTERN_CACHE_SIZE);

/**
 * Why a user pattern is refused, or undefined. JSON Schema patterns are ECMA-262, so the pattern
 * must also be a valid `u`-mode JavaScript regex (building one parses it, it runs nothing).
 */
function patternReason(pattern: string): string | undefined {
  try {
    new RegExp(pattern, 'u');
  } catch (err) {
    return `is not a valid regular expression: ${(err as Error).message}`;
  }
  try {
    linearRegExp(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The user's pattern on RE2 (re2js, pure JS): matching time is linear in the input, whatever the pattern. */
function linearRegExp(pattern: string): RE2JS {
  const cached = patterns.get(pattern);
  if (cached) return cached;
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (err) {
    const detail = (err as Error).message.replace(/^error parsing regexp: /, '');
    throw new UnsupportedPatternError(
      pattern,
      `is not supported: patterns run on a linear-time engine without backreferences or lookaround (${detail})`,
    );
  }
  patterns.set(pattern, compiled);
  return compiled;
}

// ajv calls the engine with (pattern, 'u'); RE2 is always Unicode-aware. `code` names it in
// generated source, which only standalone code would use.
const regExp = Object.assign((pattern: string) => linearRegExp(pattern), { code: 're2js' });

// Users write draft-07 (most tools) or 2020-12 schemas; each compiles with its own dialect.
// logger: false: an unknown `format` in a user's schema is their business, not our stderr's.
const options = {
  strict: false,
  allErrors: true,
  validateFormats: true,
  logger: false,
  code: { regExp },
} as const;
const draft07 = new Ajv(options);
const draft2020 = new Ajv2020(options);
addFormats.default(draft07);
addFormats.default(draft2020);

/** An Ajv for schemas Sluice writes that check user input: their regexes run on the same linear engine. */
export function linearAjv(): Ajv {
  return new Ajv({ strict: false, allErrors: true, code: { regExp } });
}

type Compiled = { validate: ValidateFunction } | { error: Error };
const compiled = new BoundedCache<string, Compiled>(COMPILED_CACHE_SIZE);
const stats = { compiles: 0, hits: 0 };

/** How the compile cache is doing (for tests and diagnostics). */
export function schemaCacheStats(): { size: number; compiles: number; hits: number } {
  return { size: compiled.size, ...stats };
}

function dialectOf(schema: Record<string, unknown>): Ajv {
  return typeof schema.$schema === 'string' && schema.$schema.includes('2020-12') ? draft2020 : draft07;
}

// $id would register the schema globally and make a second source with the same $id fail.
function anonymous(schema: Record<string, unknown>): Record<string, unknown> {
  const { $id: _id, ...rest } = schema;
  return rest;
}

/**
 * The user's schema_definition compiled, once per distinct schema (keyed by a hash of its
 * canonical JSON, so key order does not matter) and kept in a bounded LRU: a create, its draft
 * test and every run of the same schema share one compile. A schema that does not compile is
 * remembered too and throws the same error again.
 */
export function compileSchemaDefinition(schema: Record<string, unknown>): ValidateFunction {
  const json = canonicalJson(schema, { maxDepth: Infinity, maxChars: Infinity, chars: 0 });
  return compiledFor(schema, json);
}

function compiledFor(schema: Record<string, unknown>, canonical: string): ValidateFunction {
  const key = createHash('sha256').update(canonical).digest('base64url');
  let entry = compiled.get(key);
  if (entry) stats.hits += 1;
  else {
    stats.compiles += 1;
    const dialect = dialectOf(schema);
    const schemaObject = anonymous(schema);
    try {
      entry = { validate: dialect.compile(schemaObject) };
    } catch (err) {
      entry = { error: err as Error };
    } finally {
      // The compiled function does not need Ajv's own cache, which would grow with every schema.
      dialect.removeSchema(schemaObject);
    }
    compiled.set(key, entry);
  }
  if ('error' in entry) throw entry.error;
  return entry.validate;
}

interface Budget {
  maxDepth: number;
  /** Characters of output allowed; a string's characters never outnumber its UTF-8 bytes. */
  maxChars: number;
  chars: number;
}

/**
 * JSON with object keys sorted (the cache key: key order does not change a schema). Throws
 * DepthError past maxDepth levels and SizeError as soon as the output passes maxChars, so an
 * oversized schema costs only the part read before the cap.
 */
function canonicalJson(value: unknown, budget: Budget): string {
  return canonicalPart(value, budget, 0, '');
}

function canonicalPart(value: unknown, budget: Budget, depth: number, pointer: string): string {
  if (value === null || typeof value !== 'object') return count(JSON.stringify(value) ?? 'null', budget);
  if (depth >= budget.maxDepth) throw new DepthError(pointer);
  if (Array.isArray(value)) {
    count('[]', budget);
    const items = value.map((v, i) => canonicalPart(v, budget, depth + 1, `${pointer}/${i}`));
    count(',', budget, Math.max(0, items.length - 1));
    return `[${items.join(',')}]`;
  }
  count('{}', budget);
  const record = value as Record<string, unknown>;
  const members: string[] = [];
  for (const key of Object.keys(record).sort()) {
    if (record[key] === undefined) continue;
    const name = count(`${JSON.stringify(key)}:`, budget);
    members.push(name + canonicalPart(record[key], budget, depth + 1, `${pointer}/${escape(key)}`));
  }
  count(',', budget, Math.max(0, members.length - 1));
  return `{${members.join(',')}}`;
}

function count(text: string, budget: Budget, times = 1): string {
  budget.chars += text.length * times;
  if (budget.chars > budget.maxChars) throw new SizeError();
  return text;
}

/** Whether the value's JSON stays within the budget's characters (a lower bound of its bytes). */
function fitsIn(value: unknown, budget: Budget): boolean {
  if (value === null || typeof value !== 'object') {
    budget.chars += typeof value === 'string' ? value.length + 2 : 5;
    return budget.chars <= budget.maxChars;
  }
  budget.chars += 2;
  if (Array.isArray(value)) {
    for (const item of value) if (!fitsIn(item, budget)) return false;
    return true;
  }
  for (const key in value) {
    budget.chars += key.length + 4;
    if (!fitsIn((value as Record<string, unknown>)[key], budget)) return false;
  }
  return true;
}

class DepthError extends Error {
  constructor(readonly pointer: string) {
    super('too deep');
  }
}

class SizeError extends Error {}

function escape(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

// Keywords whose value is one subschema, a list of them, or a map of name to subschema, in
// draft-07 and 2020-12. Everything else (enum, const, default, examples...) is data.
const ONE = [
  'not',
  'if',
  'then',
  'else',
  'additionalProperties',
  'additionalItems',
  'contains',
  'propertyNames',
  'unevaluatedItems',
  'unevaluatedProperties',
  'contentSchema',
];
const LIST = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];
const MAP = ['properties', 'patternProperties', 'definitions', '$defs', 'dependentSchemas', 'dependencies'];

interface Walk {
  subschemas: number;
  patterns: number;
  errors: FieldError[];
  refs: { ref: string; pointer: string }[];
}

const ROOT = '/schema_definition';

function problem(pointer: string, message: string): FieldError {
  return { pointer: `${ROOT}${pointer}`, in: 'body', message };
}

/** Counts subschemas and checks every regex where the schema can hold one; stops at the first cap it passes. */
function walkSchema(node: unknown, pointer: string, walk: Walk, limits: SchemaLimits): void {
  if (walk.errors.length || node === null || typeof node !== 'object' || Array.isArray(node)) return;
  walk.subschemas += 1;
  if (walk.subschemas > limits.maxSubschemas) {
    walk.errors.push(problem('', `has more than ${limits.maxSubschemas} subschemas`));
    return;
  }
  const schema = node as Record<string, unknown>;
  if (typeof schema.pattern === 'string') checkPattern(schema.pattern, `${pointer}/pattern`, walk, limits);
  if (typeof schema.$ref === 'string') walk.refs.push({ ref: schema.$ref, pointer: `${pointer}/$ref` });
  const patternProperties = schema.patternProperties;
  if (patternProperties && typeof patternProperties === 'object' && !Array.isArray(patternProperties))
    for (const key of Object.keys(patternProperties))
      checkPattern(key, `${pointer}/patternProperties/${escape(key)}`, walk, limits);
  for (const keyword of ONE)
    if (keyword in schema) walkSchema(schema[keyword], `${pointer}/${keyword}`, walk, limits);
  for (const keyword of LIST) {
    const list = schema[keyword];
    if (Array.isArray(list))
      list.forEach((s, i) => walkSchema(s, `${pointer}/${keyword}/${i}`, walk, limits));
  }
  const items = schema.items;
  if (Array.isArray(items)) items.forEach((s, i) => walkSchema(s, `${pointer}/items/${i}`, walk, limits));
  else walkSchema(items, `${pointer}/items`, walk, limits);
  for (const keyword of MAP) {
    const map = schema[keyword];
    if (map && typeof map === 'object' && !Array.isArray(map))
      for (const [name, s] of Object.entries(map))
        walkSchema(s, `${pointer}/${keyword}/${escape(name)}`, walk, limits);
  }
}

function checkPattern(pattern: string, pointer: string, walk: Walk, limits: SchemaLimits): void {
  if (walk.errors.length) return;
  walk.patterns += 1;
  if (walk.patterns > limits.maxPatterns) {
    walk.errors.push(
      problem('', `has more than ${limits.maxPatterns} patterns (pattern and patternProperties keys)`),
    );
    return;
  }
  if (pattern.length > limits.maxPatternLength) {
    walk.errors.push(problem(pointer, `is longer than ${limits.maxPatternLength} characters`));
    return;
  }
  const reason = patternReason(pattern);
  if (reason) walk.errors.push(problem(pointer, reason));
}

/** Whether a local `#/a/b` reference points at something in the schema. */
function resolves(schema: unknown, ref: string): boolean {
  let node = schema;
  for (const raw of ref.slice(2).split('/')) {
    let token: string;
    try {
      token = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    } catch {
      return false;
    }
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, token)) return false;
    node = (node as Record<string, unknown>)[token];
  }
  return true;
}

/**
 * Why a user's schema_definition is refused, each naming its place in the body; empty when it is
 * accepted. Checks, cheapest first: size and depth, subschema and pattern counts, every regex
 * (ECMA-262 syntax and the linear engine), the dialect's meta-schema, local $refs; a small schema
 * is then also compiled (through the cache, so the runs that follow reuse it).
 */
export function schemaDefinitionErrors(
  schema: Record<string, unknown>,
  limits: SchemaLimits = DEFAULT_SCHEMA_LIMITS,
): FieldError[] {
  const tooLarge = [problem('', `must be at most ${limits.maxBytes} bytes of JSON`)];
  // Sizes it without sorting or building anything, and stops at the cap: a 1 MB schema costs
  // the first 128 KiB of walking, not a canonical copy of the whole.
  if (!fitsIn(schema, { maxDepth: Infinity, maxChars: limits.maxBytes, chars: 0 })) return tooLarge;
  let canonical: string;
  try {
    canonical = canonicalJson(schema, { maxDepth: limits.maxDepth, maxChars: limits.maxBytes, chars: 0 });
  } catch (err) {
    if (err instanceof DepthError)
      return [problem(err.pointer, `must not nest deeper than ${limits.maxDepth} levels`)];
    if (err instanceof SizeError) return tooLarge;
    throw err;
  }
  const bytes = Buffer.byteLength(canonical);
  if (bytes > limits.maxBytes) return tooLarge;

  const walk: Walk = { subschemas: 0, patterns: 0, errors: [], refs: [] };
  walkSchema(schema, '', walk, limits);
  if (walk.errors.length) return walk.errors;

  const dialect = dialectOf(schema);
  let valid: boolean;
  try {
    valid = dialect.validateSchema(anonymous(schema)) as boolean;
  } catch (err) {
    return [problem('/$schema', `is not a supported meta-schema: ${(err as Error).message}`.slice(0, 300))];
  }
  if (!valid)
    return (dialect.errors ?? [])
      .slice(0, 20)
      .map((e) => problem(e.instancePath, `is not a valid JSON Schema: ${e.message ?? 'invalid'}`));
  for (const { ref, pointer } of walk.refs)
    if (ref.startsWith('#/') && !resolves(schema, ref))
      return [problem(pointer, `is not a valid JSON Schema: ${ref.slice(0, 200)} points at nothing`)];

  if (walk.subschemas > INLINE_COMPILE_MAX.subschemas || bytes > INLINE_COMPILE_MAX.bytes) return [];
  try {
    compiledFor(schema, canonical);
    return [];
  } catch (err) {
    return [problem('', `is not a valid JSON Schema: ${(err as Error).message}`.slice(0, 300))];
  }
}
