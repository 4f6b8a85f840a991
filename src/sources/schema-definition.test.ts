import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { recordCheck } from '../runs/record-check';
import { BoundedCache } from '../cache/bounded-cache';
import {
  compileSchemaDefinition,
  DEFAULT_SCHEMA_LIMITS,
  INLINE_COMPILE_MAX,
  schemaCacheStats,
  schemaDefinitionErrors,
} from './schema-definition';

const pointers = (schema: Record<string, unknown>, limits = DEFAULT_SCHEMA_LIMITS) =>
  schemaDefinitionErrors(schema, limits).map((e) => e.pointer);

/** `n` string properties, each with its own pattern (distinct per call through `tag`). */
const patterned = (n: number, tag: string) => ({
  type: 'object',
  properties: Object.fromEntries(
    Array.from({ length: n }, (_, i) => [`p${i}`, { type: 'string', pattern: `^${tag}[a-z]{1,8}${i}$` }]),
  ),
});

describe('schema_definition patterns run on a linear-time engine', () => {
  it('the ReDoS pattern ^(a+)+$ rejects "a"×31+"!" at once, without blocking the event loop', async () => {
    const check = recordCheck({ type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } })!;
    // 40 characters: a backtracking engine needs about 2^40 steps (hours), so the bounds below tell
    // the engines apart by orders of magnitude, not by how loaded the machine is.
    const records = [{ s: `${'a'.repeat(40)}!` }, { s: `${'a'.repeat(40)}!` }];
    // The engine's first use (module code still cold) is not the attack's cost: warm it up once.
    check({ s: 'a' });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    let results: ReturnType<typeof check>[] = [];
    // The best of three: a busy machine can pause any one of them; a backtracking engine could
    // not finish even one in hours (it doubles with each character).
    let elapsed = Infinity;
    for (let round = 0; round < 3; round++) {
      const started = performance.now();
      results = records.map((r) => check(r));
      elapsed = Math.min(elapsed, performance.now() - started);
    }
    // Let the histogram see a turn of the loop after the work.
    await new Promise((r) => setTimeout(r, 30));
    delay.disable();
    expect(results.map((r) => r?.[0])).toEqual([
      { pointer: '/s', message: 'must match pattern "^(a+)+$"' },
      { pointer: '/s', message: 'must match pattern "^(a+)+$"' },
    ]);
    // A backtracking engine takes hours here; RE2 microseconds. The bounds are a second: far above
    // what a loaded 2-core machine (load 20+) adds by pausing this process, far below hours.
    expect(elapsed).toBeLessThan(1000);
    expect(delay.max / 1e6).toBeLessThan(1000);
    // Linear: a thousandfold longer input is still immediate, and valid input still matches.
    expect(check({ s: `${'a'.repeat(30_000)}!` })).toHaveLength(1);
    expect(check({ s: 'a'.repeat(30_000) })).toBeUndefined();
  });

  it('JavaScript pattern syntax keeps its meaning (escapes, classes, named groups, Unicode)', () => {
    const validate = compileSchemaDefinition({
      type: 'object',
      properties: {
        phone: { type: 'string', pattern: '^\\d{3}-\\d{4}$' },
        word: { type: 'string', pattern: '^\\p{L}+$' },
        cafe: { type: 'string', pattern: 'caf\\u00e9' },
        path: { type: 'string', pattern: '^a\\/b$' },
        year: { type: 'string', pattern: '^(?<year>\\d{4})$' },
      },
      patternProperties: { '^x-[a-z]+$': { type: 'integer' } },
    });
    expect(
      validate({ phone: '555-1234', word: 'héllo', cafe: 'café', path: 'a/b', year: '2024', 'x-a': 1 }),
    ).toBe(true);
    expect(validate({ phone: '5551234' })).toBe(false);
    expect(validate({ word: 'a1' })).toBe(false);
    expect(validate({ 'x-a': 'one' })).toBe(false);
  });

  it('backreferences and lookaround are a 400 naming the exact place, patternProperties keys included', () => {
    const errors = schemaDefinitionErrors({
      type: 'object',
      properties: { a: { type: 'string', pattern: '(a)\\1' } },
    });
    expect(errors).toEqual([
      {
        pointer: '/schema_definition/properties/a/pattern',
        in: 'body',
        message: expect.stringContaining('linear-time engine without backreferences or lookaround'),
      },
    ]);
    expect(pointers({ patternProperties: { '^(?=x)/y': {} } })).toEqual([
      '/schema_definition/patternProperties/^(?=x)~1y',
    ]);
    expect(pointers({ items: [{}, { not: { pattern: '(?<!a)b' } }] })).toEqual([
      '/schema_definition/items/1/not/pattern',
    ]);
    // Not ECMA-262 at all: refused as such, before the engine is asked.
    expect(schemaDefinitionErrors({ pattern: '(' })[0]).toMatchObject({
      pointer: '/schema_definition/pattern',
      message: expect.stringContaining('is not a valid regular expression'),
    });
    // A property merely named "pattern" is not a keyword; a `pattern` inside enum is data.
    expect(pointers({ properties: { pattern: { type: 'string' } }, enum: [{ pattern: '(a)\\1' }] })).toEqual(
      [],
    );
  });

  it('schemas saved before this check still fail their run cleanly (invalid_config), not with a crash', () => {
    expect(() => recordCheck({ pattern: '(a)\\1' })).toThrow(/schema_definition does not compile: pattern/);
  });
});

describe('schema_definition costs bounded CPU', () => {
  it('each cap is a 400 naming the field', () => {
    const limits = {
      ...DEFAULT_SCHEMA_LIMITS,
      maxBytes: 2000,
      maxSubschemas: 10,
      maxPatterns: 3,
      maxPatternLength: 20,
    };
    expect(schemaDefinitionErrors({ description: 'x'.repeat(3000) }, limits)[0]).toMatchObject({
      pointer: '/schema_definition',
      message: 'must be at most 2000 bytes of JSON',
    });
    const props = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`p${i}`, {}]));
    expect(schemaDefinitionErrors({ properties: props }, limits)[0]!.message).toBe(
      'has more than 10 subschemas',
    );
    expect(schemaDefinitionErrors(patterned(4, 'a'), limits)[0]!.message).toMatch(/more than 3 patterns/);
    expect(pointers({ properties: { a: { pattern: 'a'.repeat(21) } } }, limits)).toEqual([
      '/schema_definition/properties/a/pattern',
    ]);
    let deep: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 40; i++) deep = { items: deep };
    const [tooDeep] = schemaDefinitionErrors(deep);
    expect(tooDeep!.message).toBe('must not nest deeper than 32 levels');
    expect(tooDeep!.pointer).toMatch(/^\/schema_definition(\/items){32}$/);
  });

  it('the 1 MB schema with 15,000 patterns is refused before anything is compiled', () => {
    const before = schemaCacheStats().compiles;
    const huge = patterned(15_000, 'huge');
    expect(Buffer.byteLength(JSON.stringify(huge))).toBeGreaterThan(800_000);
    // Counts the property values read, to see where the reading stops (not a clock: on a loaded
    // machine a few ms of work can take hundreds).
    let reads = 0;
    const properties = new Proxy(huge.properties, {
      get(target, key, receiver) {
        reads += 1;
        return Reflect.get(target, key, receiver);
      },
    });
    expect(pointers({ ...huge, properties })).toEqual(['/schema_definition']);
    // It stops reading at the cap (128 KiB: a small share of the 15,000 properties), and compiles
    // nothing (compiling it took 4.3 s).
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThan(15_000 / 2);
    expect(schemaCacheStats().compiles).toBe(before);
  });

  it('one compile per distinct schema: key order does not matter, runs reuse the create-time compile', () => {
    const schema = {
      type: 'object',
      required: ['id'],
      properties: { id: { type: 'integer' }, tag: { pattern: '^t' } },
    };
    const reordered = {
      properties: { tag: { pattern: '^t' }, id: { type: 'integer' } },
      required: ['id'],
      type: 'object',
    };
    const before = schemaCacheStats();
    expect(schemaDefinitionErrors(schema)).toEqual([]);
    const afterCreate = schemaCacheStats();
    expect(afterCreate.compiles).toBe(before.compiles + 1);
    const first = compileSchemaDefinition(reordered);
    const second = compileSchemaDefinition(schema);
    expect(second).toBe(first);
    expect(schemaDefinitionErrors(schema)).toEqual([]);
    const after = schemaCacheStats();
    expect(after.compiles).toBe(afterCreate.compiles);
    expect(after.hits).toBe(afterCreate.hits + 3);
  });

  it('a schema that does not compile is remembered too: the same error, no second compile', () => {
    const broken = { properties: { a: { $ref: 'other.json#/x' } } };
    const before = schemaCacheStats().compiles;
    expect(() => compileSchemaDefinition(broken)).toThrow(/resolve reference/);
    expect(() => compileSchemaDefinition(broken)).toThrow(/resolve reference/);
    expect(schemaCacheStats().compiles).toBe(before + 1);
    expect(pointers(broken)).toEqual(['/schema_definition']);
  });

  it('above the inline size the request path checks structurally and leaves the compile to the run', () => {
    const large = patterned(INLINE_COMPILE_MAX.subschemas + 20, 'large');
    const before = schemaCacheStats().compiles;
    expect(schemaDefinitionErrors(large)).toEqual([]);
    expect(schemaCacheStats().compiles).toBe(before);
    // Structural checks still catch what a compile would: meta-schema, regexes, local $refs.
    expect(pointers({ ...large, minProperties: -1 })).toEqual(['/schema_definition/minProperties']);
    expect(pointers({ ...large, properties: { ...large.properties, bad: { pattern: '\\1(a)' } } })).toEqual([
      '/schema_definition/properties/bad/pattern',
    ]);
    expect(pointers({ ...large, properties: { ...large.properties, r: { $ref: '#/$defs/none' } } })).toEqual([
      '/schema_definition/properties/r/$ref',
    ]);
    compileSchemaDefinition(large);
    expect(schemaCacheStats().compiles).toBe(before + 1);
  });

  it('the meta-schema names the bad keyword', () => {
    expect(pointers({ type: 'object', properties: { a: { minimum: 'ten' } } })).toContain(
      '/schema_definition/properties/a/minimum',
    );
    expect(pointers({ $schema: 'https://json-schema.org/draft/2020-12/schema', prefixItems: 'x' })).toContain(
      '/schema_definition/prefixItems',
    );
    expect(pointers({ $schema: 'http://json-schema.org/draft-04/schema#' })).toEqual([
      '/schema_definition/$schema',
    ]);
  });
});

describe('BoundedCache', () => {
  it('keeps the most recently used entries', () => {
    const cache = new BoundedCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1);
    cache.set('c', 3);
    expect([cache.get('a'), cache.get('b'), cache.get('c'), cache.size]).toEqual([1, undefined, 3, 2]);
  });
});
