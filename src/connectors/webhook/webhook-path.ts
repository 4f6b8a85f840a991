/**
 * Where webhook receipts arrive. Requests under it keep their body unread for the route: the
 * signature covers the bytes as sent, so the app's JSON parser skips them (see createApp).
 */
export const WEBHOOK_PATH_PREFIX = '/webhooks/';

/** Matches as the router does (case-insensitively), so no receipt reaches the route pre-parsed. */
export function isWebhookPath(path: string): boolean {
  return path.slice(0, WEBHOOK_PATH_PREFIX.length).toLowerCase() === WEBHOOK_PATH_PREFIX;
}
