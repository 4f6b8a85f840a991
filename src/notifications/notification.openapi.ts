import { idParam, json, pageOf, problems, queryParams, ref, type PathItem } from '../docs/openapi';
import {
  deliveryAttemptSchema,
  deliveryLogQuerySchema,
  subscriptionCreateSchema,
  subscriptionListQuerySchema,
  subscriptionSchema,
  subscriptionUpdateSchema,
} from './notification.contracts';
import { SUBSCRIPTIONS_PATH } from './notification.routes';

export const notificationSchemas = {
  NotificationSubscriptionCreate: subscriptionCreateSchema,
  NotificationSubscriptionUpdate: subscriptionUpdateSchema,
  NotificationSubscription: subscriptionSchema,
  NotificationSubscriptionList: pageOf('NotificationSubscription'),
  NotificationDeliveryAttempt: deliveryAttemptSchema,
  NotificationDeliveryLog: pageOf('NotificationDeliveryAttempt'),
};

const tags = ['Notifications'];
const SIGNING =
  'Each delivery is a POST of the event (`{id, type, source_id, run_id, at, data}`, as GET /events ' +
  'shows it) with the headers `Sluice-Event`, `Sluice-Delivery` (the same on every attempt) and ' +
  '`Sluice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" under the secret>`. ' +
  'Receivers recompute the HMAC, compare in constant time and refuse a `t` older than a few minutes. ' +
  'A 2xx answer ends a delivery; 5xx, 408, 429 and network failures are retried with exponential ' +
  'backoff (NOTIFY_ATTEMPTS, NOTIFY_BACKOFF_MS); any other answer, a redirect, or an address the ' +
  'outbound policy refuses fails it at once.';

export const notificationPaths: Record<string, PathItem> = {
  [SUBSCRIPTIONS_PATH]: {
    get: {
      tags,
      operationId: 'listNotificationSubscriptions',
      summary: 'List webhook subscriptions, newest first (never a secret); admin',
      description: 'A page of subscriptions. The signing secret is write-only and never shown.',
      parameters: queryParams(subscriptionListQuerySchema),
      responses: {
        '200': { description: 'A page', content: json(ref('NotificationSubscriptionList')) },
        ...problems(400),
      },
    },
    post: {
      tags,
      operationId: 'createNotificationSubscription',
      summary: 'Subscribe a URL to event types; admin',
      description: SIGNING,
      requestBody: { required: true, content: json(ref('NotificationSubscriptionCreate')) },
      responses: {
        '201': {
          description: 'Created',
          headers: { Location: { schema: { type: 'string' } } },
          content: json(ref('NotificationSubscription')),
        },
        ...problems(400, 413, 415),
      },
    },
  },
  [`${SUBSCRIPTIONS_PATH}/{id}`]: {
    get: {
      tags,
      operationId: 'getNotificationSubscription',
      summary: 'One webhook subscription (never its secret); admin',
      description: 'The subscription; `has_secret` is always true, the secret itself is never returned.',
      parameters: [idParam],
      responses: {
        '200': { description: 'The subscription', content: json(ref('NotificationSubscription')) },
        ...problems(400, 404),
      },
    },
    put: {
      tags,
      operationId: 'updateNotificationSubscription',
      summary: 'Change a webhook subscription (omitted fields keep their value); admin',
      description:
        'Send `secret` to replace the signing secret (deliveries from then on are signed with it). ' +
        '`enabled: false` stops new deliveries and skips those still waiting.',
      parameters: [idParam],
      requestBody: { required: true, content: json(ref('NotificationSubscriptionUpdate')) },
      responses: {
        '200': { description: 'The subscription as saved', content: json(ref('NotificationSubscription')) },
        ...problems(400, 404, 413, 415),
      },
    },
    delete: {
      tags,
      operationId: 'deleteNotificationSubscription',
      summary: 'Delete a webhook subscription, its waiting deliveries and its log; admin',
      description: 'Deliveries already queued are skipped when their turn comes.',
      parameters: [idParam],
      responses: { '204': { description: 'Deleted' }, ...problems(400, 404) },
    },
  },
  [`${SUBSCRIPTIONS_PATH}/{id}/deliveries`]: {
    get: {
      tags,
      operationId: 'listNotificationDeliveries',
      summary: "A subscription's delivery log, newest attempt first; admin",
      description:
        'One entry per attempt: status code, attempt number, duration, error and outcome. The log ' +
        'keeps the newest NOTIFY_LOG_MAX attempts per subscription.',
      parameters: [idParam, ...queryParams(deliveryLogQuerySchema)],
      responses: {
        '200': { description: 'A page of attempts', content: json(ref('NotificationDeliveryLog')) },
        ...problems(400, 404),
      },
    },
  },
};
