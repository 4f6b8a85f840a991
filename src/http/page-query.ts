/**
 * `limit` and `offset` as every hand-written list endpoint takes them, the same bounds as the
 * generated resource lists (limit 1..100, default 20): one definition for validation and OpenAPI.
 */
export const PAGE_QUERY_PROPERTIES = {
  limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
  offset: { type: 'integer', minimum: 0, maximum: 2147483647, default: 0 },
} as const;
