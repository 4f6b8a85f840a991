import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSpec, SpecError, validateSpec, type EntitySpec, type FieldSpec } from './spec';

const id: FieldSpec = { name: 'id', type: 'uuid', primary_key: true };

function entity(fields: FieldSpec[], extra: Partial<EntitySpec> = {}): EntitySpec {
  return { name: 'Widget', fields: [id, ...fields], ...extra };
}

function problemsOf(input: unknown): string[] {
  try {
    validateSpec(input);
  } catch (err) {
    expect(err).toBeInstanceOf(SpecError);
    return (err as SpecError).problems;
  }
  throw new Error('expected a SpecError');
}

describe('validateSpec', () => {
  it('accepts the project spec', async () => {
    const spec = await loadSpec(new URL('../../specs/entities.json', import.meta.url).pathname);
    expect(spec.entities.map((e) => e.name)).toContain('RawDataSource');
  });

  it('refuses structural mistakes through its JSON Schema', () => {
    expect(problemsOf({})).toEqual(["/ must have required property 'entities'"]);
    expect(problemsOf({ entities: [] })[0]).toMatch(/must NOT have fewer than 1 items/);
    expect(problemsOf({ entities: [entity([{ name: 'x', type: 'varchar' as never }])] })[0]).toMatch(
      /\/entities\/0\/fields\/1\/type must be equal to one of the allowed values/,
    );
    expect(
      problemsOf({ entities: [entity([{ name: 'x', type: 'string', colour: 1 } as FieldSpec])] })[0],
    ).toMatch(/must NOT have additional properties/);
    expect(problemsOf({ entities: [{ ...entity([]), name: 'lowercase' }] })[0]).toMatch(
      /\/entities\/0\/name/,
    );
  });

  it.each<[string, EntitySpec[], RegExp]>([
    ['an entity defined twice', [entity([]), entity([])], /Widget: entity defined twice/],
    [
      'two entities sharing a table',
      [
        { name: 'Box', fields: [id] },
        { name: 'Boxe', fields: [id] },
      ],
      /Boxe: table boxes is also Box's/,
    ],
    [
      'a field defined twice',
      [
        entity([
          { name: 'a', type: 'string' },
          { name: 'a', type: 'text' },
        ]),
      ],
      /Widget.a: field defined twice/,
    ],
    ['an enum without values', [entity([{ name: 'e', type: 'enum' }])], /Widget.e: enum needs values/],
    [
      'values on a non-enum',
      [entity([{ name: 's', type: 'string', values: ['a'] }])],
      /values only apply to enum/,
    ],
    [
      'max_length on a non-string',
      [entity([{ name: 'n', type: 'integer', max_length: 3 }])],
      /max_length only applies to string/,
    ],
    [
      'min on a non-number',
      [entity([{ name: 's', type: 'string', min: 1 }])],
      /min\/max only apply to integer and number/,
    ],
    [
      'min above max',
      [entity([{ name: 'n', type: 'integer', min: 5, max: 1 }])],
      /Widget.n: min is greater than max/,
    ],
    [
      'a sensitive non-string',
      [entity([{ name: 'j', type: 'json', sensitive: true }])],
      /only string fields can be sensitive/,
    ],
    [
      'a sensitive unique field',
      [entity([{ name: 's', type: 'string', sensitive: true, unique: true }])],
      /cannot be unique/,
    ],
    [
      "a field clashing with a sensitive field's columns",
      [
        entity([
          { name: 's', type: 'string', sensitive: true },
          { name: 's_masked', type: 'string' },
        ]),
      ],
      /Widget.s_masked: clashes with sensitive field s/,
    ],
    [
      'an enum default outside its values',
      [entity([{ name: 'e', type: 'enum', values: ['a'], default: 'b' }])],
      /default is not one of the values/,
    ],
    [
      'a default of the wrong type',
      [entity([{ name: 'n', type: 'integer', default: 'ten' }])],
      /Widget.n: default must be an integer/,
    ],
    [
      'a default outside min/max',
      [entity([{ name: 'n', type: 'integer', min: 1, max: 9, default: 10 }])],
      /default is outside min\/max/,
    ],
    [
      'a boolean default that is not boolean',
      [entity([{ name: 'b', type: 'boolean', default: 'yes' }])],
      /default must be a boolean/,
    ],
    [
      'a default longer than max_length',
      [entity([{ name: 's', type: 'string', max_length: 2, default: 'abc' }])],
      /default is longer than max_length/,
    ],
    [
      'no primary key',
      [{ name: 'Widget', fields: [{ name: 'a', type: 'string' }] }],
      /needs exactly one primary key, of type uuid/,
    ],
    [
      'two primary keys',
      [entity([{ name: 'id2', type: 'uuid', primary_key: true }])],
      /needs exactly one primary key/,
    ],
    [
      'a non-uuid primary key',
      [{ name: 'Widget', fields: [{ name: 'id', type: 'integer', primary_key: true }] }],
      /of type uuid/,
    ],
    [
      'an index on an unknown field',
      [entity([], { indexes: [{ fields: ['nope'] }] })],
      /index on unknown field nope/,
    ],
    [
      'an index on a sensitive field',
      [entity([{ name: 's', type: 'string', sensitive: true }], { indexes: [{ fields: ['s'] }] })],
      /index on sensitive field s/,
    ],
    [
      'read_only naming an unknown field',
      [entity([], { api: { read_only: ['nope'] } })],
      /read_only nope unknown/,
    ],
    [
      'an initial value for an unknown field',
      [entity([], { api: { initial: { nope: 1 } } })],
      /initial value for unknown field nope/,
    ],
    [
      'a filter on an unknown field',
      [entity([], { api: { filters: { q: 'nope' } } })],
      /filter q on unknown field nope/,
    ],
    [
      'a filter on a json field',
      [entity([{ name: 'j', type: 'json' }], { api: { filters: { j: 'j' } } })],
      /filter j on a json field is not supported/,
    ],
    [
      'a filter on a sensitive field',
      [entity([{ name: 's', type: 'string', sensitive: true }], { api: { filters: { s: 's' } } })],
      /filter s on a string field is not supported/,
    ],
    [
      'a filter named limit',
      [entity([{ name: 'n', type: 'integer' }], { api: { filters: { limit: 'n' } } })],
      /filter name limit is reserved/,
    ],
    [
      'a prefix filter on an integer field',
      [entity([{ name: 'n', type: 'integer' }], { api: { prefix_filters: { q: 'n' } } })],
      /prefix filter q on a integer field is not supported/,
    ],
    [
      'a prefix filter named like an exact filter',
      [entity([{ name: 's', type: 'string' }], { api: { filters: { q: 's' }, prefix_filters: { q: 's' } } })],
      /prefix filter name q is reserved or already a filter/,
    ],
  ])('refuses %s', (_what, entities, problem) => {
    expect(problemsOf({ entities })).toEqual(expect.arrayContaining([expect.stringMatching(problem)]));
  });

  it('lists every cross-reference problem at once', () => {
    const problems = problemsOf({
      entities: [
        entity(
          [
            { name: 'e', type: 'enum' },
            { name: 's', type: 'string', sensitive: true, unique: true },
          ],
          { indexes: [{ fields: ['nope'] }], api: { read_only: ['gone'] } },
        ),
      ],
    });
    expect(problems).toHaveLength(4);
  });
});

describe('loadSpec', () => {
  it('turns unreadable files and bad JSON into a SpecError naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-spec-'));
    try {
      const file = join(dir, 'entities.json');
      await writeFile(file, '{"entities": [');
      await expect(loadSpec(file)).rejects.toThrow(SpecError);
      await expect(loadSpec(join(dir, 'missing.json'))).rejects.toThrow(/missing\.json/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
