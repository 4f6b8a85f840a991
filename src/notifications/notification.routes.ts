import Router from '@koa/router';
import { NotFoundError, ValidationError, type FieldError } from '../http/errors';
import { jsonBody, uuidParam } from '../http/request';
import { bodyValidator, queryValidator } from '../http/validation';
import type { DeliveryRepository } from './delivery.repository';
import {
  deliveryLogQuerySchema,
  subscriptionCreateSchema,
  subscriptionListQuerySchema,
  subscriptionUpdateSchema,
  type SubscriptionCreate,
  type SubscriptionUpdate,
} from './notification.contracts';
import type { SubscriptionRepository } from './subscription.repository';

export const SUBSCRIPTIONS_PATH = '/notification-subscriptions';

/** What a subscription URL must be beyond the schema: http(s), and no credentials in it (it is shown). */
export function urlProblems(text: string | undefined): FieldError[] {
  if (text === undefined) return [];
  const problem = (message: string): FieldError[] => [{ pointer: '/url', in: 'body', message }];
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return problem('must be an absolute http or https URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return problem('must use http or https');
  if (url.username || url.password)
    return problem('must not hold a user or password (the URL is shown back; sign with the secret instead)');
  if (!url.hostname) return problem('must name a host');
  return [];
}

/**
 * Webhook subscriptions and their delivery logs; admin scope (auth/scopes.ts): a subscription
 * makes Sluice send data to a URL of the caller's choosing. Thin: validate → repository → present.
 */
export function notificationRoutes(deps: {
  subscriptions: SubscriptionRepository;
  deliveries: DeliveryRepository;
}): Router {
  const router = new Router({ prefix: SUBSCRIPTIONS_PATH });
  const validateCreate = bodyValidator<SubscriptionCreate>(subscriptionCreateSchema);
  const validateUpdate = bodyValidator<SubscriptionUpdate>(subscriptionUpdateSchema);
  const validatePage = queryValidator<{ limit: number; offset: number }>(subscriptionListQuerySchema);
  const validateLogPage = queryValidator<{ limit: number; offset: number }>(deliveryLogQuerySchema);
  const notFound = () => new NotFoundError('Notification subscription not found.');
  const checkUrl = (url: string | undefined) => {
    const errors = urlProblems(url);
    if (errors.length) throw new ValidationError(errors);
  };

  router.post('/', async (ctx) => {
    const input = validateCreate(jsonBody(ctx));
    checkUrl(input.url);
    const created = await deps.subscriptions.create(input);
    ctx.state.audit = { targetId: created.id, detail: { event_types: created.event_types } };
    ctx.status = 201;
    ctx.set('Location', `${SUBSCRIPTIONS_PATH}/${created.id}`);
    ctx.body = created;
  });

  router.get('/', async (ctx) => {
    const query = validatePage(ctx.query);
    const page = await deps.subscriptions.list(query.limit, query.offset);
    ctx.body = { data: page.data, pagination: { total: page.total, ...query } };
  });

  router.get('/:id', async (ctx) => {
    const found = await deps.subscriptions.get(uuidParam(ctx));
    if (!found) throw notFound();
    ctx.body = found;
  });

  router.put('/:id', async (ctx) => {
    const id = uuidParam(ctx);
    const patch = validateUpdate(jsonBody(ctx));
    checkUrl(patch.url);
    const updated = await deps.subscriptions.update(id, patch);
    if (!updated) throw notFound();
    // Names of what changed, never the secret's value.
    ctx.state.audit = { detail: { changed: Object.keys(patch) } };
    ctx.body = updated;
  });

  router.delete('/:id', async (ctx) => {
    if (!(await deps.subscriptions.delete(uuidParam(ctx)))) throw notFound();
    ctx.status = 204;
  });

  router.get('/:id/deliveries', async (ctx) => {
    const id = uuidParam(ctx);
    const query = validateLogPage(ctx.query);
    if (!(await deps.subscriptions.get(id))) throw notFound();
    const page = await deps.deliveries.log(id, query.limit, query.offset);
    ctx.body = { data: page.data, pagination: { total: page.total, ...query } };
  });

  return router;
}
