import type { EntitySpec, FieldSpec } from './spec';

/** Everything the templates derive from one entity spec, computed once. */
export interface EntityInfo {
  spec: EntitySpec;
  pascal: string;
  camel: string;
  kebab: string;
  table: string;
  path: string;
  fields: FieldInfo[];
  filters: Record<string, string>;
  /** Case-insensitive prefix filters: parameter → text field. */
  prefixFilters: Record<string, string>;
}

export interface FieldInfo extends FieldSpec {
  readOnly: boolean;
  nullable: boolean;
  /** Value the database fills in when an insert leaves the column out. */
  dbDefault?: string | number | boolean;
  /** Columns that hold this field: a sensitive field is stored as ciphertext plus its masked form. */
  columns: string[];
}

const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

function plural(word: string): string {
  if (/(s|x|z|ch|sh)$/.test(word)) return `${word}es`;
  if (/[^aeiou]y$/.test(word)) return `${word.slice(0, -1)}ies`;
  return `${word}s`;
}

export function describeEntity(spec: EntitySpec): EntityInfo {
  const base = snake(spec.name);
  const readOnlyByApi = new Set(spec.api?.read_only ?? []);
  const initial = spec.api?.initial ?? {};
  const fields = spec.fields.map((f): FieldInfo => {
    const readOnly = Boolean(f.primary_key || f.auto_now || f.auto_now_add || readOnlyByApi.has(f.name));
    const dbDefault = f.default ?? initial[f.name];
    const nullable = !(
      f.required ||
      f.primary_key ||
      f.auto_now ||
      f.auto_now_add ||
      dbDefault !== undefined
    );
    const columns = f.sensitive ? [`${f.name}_ciphertext`, `${f.name}_masked`] : [f.name];
    return { ...f, readOnly, nullable, dbDefault, columns };
  });
  return {
    spec,
    pascal: spec.name,
    camel: spec.name[0]!.toLowerCase() + spec.name.slice(1),
    kebab: base.replace(/_/g, '-'),
    table: plural(base),
    path: spec.api?.path ?? `/${plural(base).replace(/_/g, '-')}`,
    fields,
    filters: spec.api?.filters ?? {},
    prefixFilters: spec.api?.prefix_filters ?? {},
  };
}

export const writableFields = (e: EntityInfo) => e.fields.filter((f) => !f.readOnly);
export const readOnlyFields = (e: EntityInfo) => e.fields.filter((f) => f.readOnly);
export const uniqueFields = (e: EntityInfo) => e.fields.filter((f) => f.unique && !f.primary_key);
export const uniqueConstraintName = (e: EntityInfo, fields: string[]) =>
  `${e.table}_${fields.join('_')}_unique`;
export const indexName = (e: EntityInfo, fields: string[]) => `${e.table}_${fields.join('_')}_index`;
