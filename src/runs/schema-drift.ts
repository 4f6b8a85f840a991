/** JSON types a value has, as JSON Schema names them. */
export function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value === 'bigint' ? 'integer' : typeof value;
}

/** The observed shape of records: each top-level key → the JSON types seen for it. */
export class ShapeSampler {
  readonly fields = new Map<string, Set<string>>();
  private seen = 0;

  constructor(private readonly limit = 1000) {}

  add(records: unknown[]): void {
    for (const record of records) {
      if (this.seen >= this.limit) return;
      this.seen += 1;
      if (!record || typeof record !== 'object' || Array.isArray(record)) continue;
      for (const [key, value] of Object.entries(record)) {
        const types = this.fields.get(key) ?? new Set<string>();
        types.add(jsonType(value));
        this.fields.set(key, types);
      }
    }
  }

  get empty(): boolean {
    return this.seen === 0;
  }
}

export interface SchemaDrift {
  added: string[];
  removed: string[];
  changed: { field: string; expected: string[]; observed: string[] }[];
}

function declaredTypes(schema: unknown): string[] | undefined {
  const type = (schema as { type?: unknown } | undefined)?.type;
  if (typeof type === 'string') return [type];
  if (Array.isArray(type)) return type.map(String);
  return undefined;
}

/**
 * Compares the observed shape with schema_definition's top-level `properties`: fields the source
 * has that the schema does not declare, declared fields the source no longer has, and fields
 * whose observed types the declaration does not allow (an integer fits `number`; null fits when
 * declared). Undefined when there is no difference or nothing to compare.
 */
export function diffSchema(
  schemaDefinition: Record<string, unknown> | null,
  observed: ShapeSampler,
): SchemaDrift | undefined {
  const properties = schemaDefinition?.properties as Record<string, unknown> | undefined;
  if (!properties || typeof properties !== 'object' || observed.empty) return undefined;
  const declared = new Set(Object.keys(properties));
  const added = [...observed.fields.keys()].filter((k) => !declared.has(k)).sort();
  const removed = [...declared].filter((k) => !observed.fields.has(k)).sort();
  const changed: SchemaDrift['changed'] = [];
  for (const [field, types] of observed.fields) {
    const expected = declaredTypes(properties[field]);
    if (!expected) continue;
    const fits = (t: string) => expected.includes(t) || (t === 'integer' && expected.includes('number'));
    const misfits = [...types].filter((t) => !fits(t));
    if (misfits.length) changed.push({ field, expected, observed: [...types].sort() });
  }
  return added.length || removed.length || changed.length ? { added, removed, changed } : undefined;
}
