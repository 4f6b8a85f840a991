import type { Knex } from 'knex';
import type { FieldType } from '../../schema/field-types';
import type { EntityModel } from '../../db/entity-model';
import type { FieldError } from '../errors';

export interface FieldDescriptor {
  name: string;
  type: FieldType;
  nullable: boolean;
  readOnly: boolean;
  sensitive: boolean;
  /** Set to now() on every update. */
  autoNow: boolean;
}

type JsonSchema = Readonly<Record<string, unknown>>;

/** What the generator knows of an entity, in the shape the generic CRUD runtime consumes. */
export interface ResourceDescriptor {
  entity: string;
  table: string;
  path: string;
  fields: readonly FieldDescriptor[];
  readOnly: readonly string[];
  filters: Readonly<Record<string, string>>;
  /** List parameters matching the start of a text field, ignoring case: parameter → field. */
  prefixFilters?: Readonly<Record<string, string>>;
  /** Unique constraint name → the field it guards, to name the field in a 409. */
  uniqueConstraints: Readonly<Record<string, string>>;
  model: typeof EntityModel;
  schemas: {
    create: JsonSchema;
    update: JsonSchema;
    response: JsonSchema;
    list: JsonSchema;
    listQuery: JsonSchema;
  };
}

/** A descriptor carrying its API types, so routes and services built from it are typed. */
export interface Resource<T, C, U, Q> extends ResourceDescriptor {
  readonly __types?: { item: T; create: C; update: U; query: Q };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a list of resources of any entity
export type AnyResource = Resource<any, any, any, any>;

export function defineResource<T, C, U, Q>(descriptor: ResourceDescriptor): Resource<T, C, U, Q> {
  return descriptor;
}

export type Row = Record<string, unknown>;

/**
 * Hand-written behaviour an entity adds to the generated CRUD without patching it: extra
 * validation, and listeners that follow changes (schedules, events).
 */
export interface ResourceHooks<T = Row> {
  /** Extra checks on a create or update body that passed the schema; return the invalid fields. */
  validate?(input: Row, mode: 'create' | 'update', id?: string): FieldError[] | Promise<FieldError[]>;
  /** Counts the filtered set faster than count(*) where the entity keeps its own counters. */
  count?(filters: Row): Promise<number>;
  /**
   * List filters the spec cannot say (a condition over other tables, not a column's value): each
   * is one more query parameter, validated and documented with the generated ones. A list that
   * uses one is counted with count(*), not `count`.
   */
  listFilters?: readonly ListFilter[];
  afterCreate?(item: T): void | Promise<void>;
  afterUpdate?(item: T, before: T): void | Promise<void>;
  /**
   * Runs before a delete with the request's query (already a plain object): may refuse it by
   * throwing an HttpError (nothing is deleted), and may return what the audit row should add.
   */
  beforeDelete?(id: string, query: Readonly<Record<string, unknown>>): Promise<DeleteNote | void>;
  afterDelete?(item: T): void | Promise<void>;
  /** What these hooks add to the operations' OpenAPI (parameters, responses). */
  docs?: CrudDocs;
}

/** One hand-written list filter (ResourceHooks.listFilters). */
export interface ListFilter {
  /** The query parameter. */
  name: string;
  /** Its JSON Schema (query strings are coerced: `{type: 'boolean'}` takes "true"). */
  schema: JsonSchema;
  /** Narrows the list (and its count) to the rows matching `value` (already validated). */
  apply(builder: Knex.QueryBuilder, value: unknown): void;
}

/** What a beforeDelete hook hands back to the route. */
export interface DeleteNote {
  /** Merged into the audit row's detail. */
  audit?: Record<string, unknown>;
}

type OperationExtras = {
  description?: string;
  parameters?: ReadonlyArray<Readonly<Record<string, unknown>>>;
  /** By status; replaces the generic response of that status. */
  responses?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
};

/** OpenAPI additions per CRUD operation. */
export interface CrudDocs {
  delete?: OperationExtras;
  list?: OperationExtras;
  /** Example bodies of a create (and of anything that takes the create body), by name. */
  createExamples?: Readonly<Record<string, { summary: string; value: unknown }>>;
  /**
   * What the document says of a field beyond the generated schema (a json field's keys, which
   * hooks validate), replacing its schema in the entity's components; `null` is added where the
   * field is nullable. Documentation only: validation stays with the generated schema and hooks.
   */
  fields?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Component schemas those field documents refer to. */
  schemas?: Readonly<Record<string, unknown>>;
}
