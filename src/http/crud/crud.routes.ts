import Router from '@koa/router';
import type { Knex } from 'knex';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { jsonBody, uuidParam } from '../request';
import { bodyValidator, queryValidator } from '../validation';
import { CrudRepository, UniqueViolation } from '../../db/crud.repository';
import type { ListFilter, ResourceHooks, Row } from './resource';

/**
 * The five CRUD routes of a generated resource: validate → repository → present. Entity-specific
 * behaviour comes in through `hooks`, never by editing this or the generated code.
 */
export function crudRoutes<T extends object>(
  repository: CrudRepository<T>,
  hooks: ResourceHooks<T> = {},
): Router {
  const resource = repository.resource;
  const validateCreate = bodyValidator<Row>(resource.schemas.create, resource.readOnly);
  const validateUpdate = bodyValidator<Row>(resource.schemas.update, resource.readOnly);
  const listFilters = hooks.listFilters ?? [];
  const validateQuery = queryValidator<Row & { limit: number; offset: number }>(
    withListFilters(resource.schemas.listQuery, listFilters),
  );
  const router = new Router({ prefix: resource.path });
  const notFound = () => new NotFoundError(`${resource.entity} not found.`);

  const checkHooks = async (input: Row, mode: 'create' | 'update', id?: string) => {
    const errors = (await hooks.validate?.(input, mode, id)) ?? [];
    if (errors.length) throw new ValidationError(errors);
  };
  const conflict = (err: unknown): unknown => {
    if (!(err instanceof UniqueViolation)) return err;
    const field = err.field ?? 'unknown';
    return new ConflictError(`Another ${resource.entity} already has this ${field}.`, [
      { pointer: `/${field}`, in: 'body', message: 'is already taken' },
    ]);
  };

  router.get('/', async (ctx) => {
    const query = validateQuery(ctx.query);
    const used = listFilters.filter((f) => query[f.name] !== undefined);
    const narrow = used.length
      ? (builder: Knex.QueryBuilder) => used.forEach((f) => f.apply(builder, query[f.name]))
      : undefined;
    const page = await repository.list(query, narrow ? undefined : hooks.count, narrow);
    ctx.body = {
      data: page.data,
      pagination: { total: page.total, limit: query.limit, offset: query.offset },
    };
  });

  router.get('/:id', async (ctx) => {
    const item = await repository.get(uuidParam(ctx));
    if (!item) throw notFound();
    ctx.body = item;
  });

  router.post('/', async (ctx) => {
    const input = validateCreate(jsonBody(ctx));
    await checkHooks(input, 'create');
    const item = await repository.create(input).catch((err) => Promise.reject(conflict(err)));
    await hooks.afterCreate?.(item);
    ctx.status = 201;
    ctx.set('Location', `${resource.path}/${String((item as Row).id)}`);
    ctx.body = item;
  });

  router.put('/:id', async (ctx) => {
    const id = uuidParam(ctx);
    const patch = validateUpdate(jsonBody(ctx));
    await checkHooks(patch, 'update', id);
    const result = await repository.update(id, patch).catch((err) => Promise.reject(conflict(err)));
    if (!result) throw notFound();
    await hooks.afterUpdate?.(result.after, result.before);
    ctx.body = result.after;
  });

  router.delete('/:id', async (ctx) => {
    const id = uuidParam(ctx);
    const note = await hooks.beforeDelete?.(id, { ...ctx.query });
    if (note?.audit) ctx.state.audit = { detail: note.audit };
    const item = await repository.delete(id);
    if (!item) throw notFound();
    await hooks.afterDelete?.(item);
    ctx.status = 204;
  });

  return router;
}

/** The generated list query with the hooks' filters added (its own $id: the validator caches by id). */
export function withListFilters(
  listQuery: Readonly<Record<string, unknown>>,
  filters: readonly ListFilter[],
): Readonly<Record<string, unknown>> {
  if (!filters.length) return listQuery;
  const { $id, properties } = listQuery as { $id?: string; properties: Record<string, unknown> };
  return {
    ...listQuery,
    $id: `${$id ?? 'ListQuery'}_with_${filters.map((f) => f.name).join('_')}`,
    properties: { ...properties, ...Object.fromEntries(filters.map((f) => [f.name, f.schema])) },
  };
}
