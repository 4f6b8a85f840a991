import { adminPaths } from './admin/admin.openapi';
import { authPaths, authSchemas } from './auth/auth.openapi';
import { isPublicPath } from './auth/scopes';
import { buildOpenApi } from './docs/openapi';
import { rawDataSourceResource, resources } from './generated';
import { healthPaths, healthSchemas } from './health/health.routes';
import type { AnyResource } from './http/crud/resource';
import { metricsPaths } from './metrics/metrics.routes';
import { recordsPaths, recordsSchemas } from './records/records.openapi';
import { notificationPaths, notificationSchemas } from './notifications/notification.openapi';
import { runLogPaths, runLogSchemas } from './runs/run-log.openapi';
import { syncPaths, syncSchemas } from './runs/sync.openapi';
import { staleListFilter } from './sources/source-freshness';
import { sourceDeleteDocs } from './sources/source-delete.hooks';
import { sourceMetadataDocs, type MetadataRule } from './sources/source-metadata.openapi';
import { webhookPaths, webhookSchemas } from './sources/webhook.openapi';

export const VERSION = '0.1.0';

/**
 * The API's OpenAPI document, from code alone: the container serves it at /openapi.json, and
 * scripts/generate.ts builds the very same document offline (no database, no Redis) to generate the
 * TypeScript client's types (clients/typescript). It depends on what is served and on each
 * connector's metadata schema, nothing of the configuration.
 */
export function buildApiDocument(options: {
  served?: readonly AnyResource[];
  connectors: readonly MetadataRule[];
}): object {
  const served = options.served ?? resources;
  const servesSources = served.includes(rawDataSourceResource);
  return buildOpenApi({
    resources: served,
    paths: {
      ...healthPaths,
      ...adminPaths,
      ...authPaths,
      ...metricsPaths,
      ...notificationPaths,
      ...(servesSources ? { ...syncPaths, ...runLogPaths, ...recordsPaths, ...webhookPaths } : {}),
    },
    schemas: {
      ...authSchemas,
      ...healthSchemas,
      ...notificationSchemas,
      ...(servesSources ? { ...syncSchemas, ...runLogSchemas, ...recordsSchemas, ...webhookSchemas } : {}),
    },
    version: VERSION,
    isPublic: isPublicPath,
    crudDocs: {
      [rawDataSourceResource.entity]: {
        ...sourceDeleteDocs,
        ...sourceMetadataDocs(options.connectors),
        list: {
          parameters: [{ name: 'stale', in: 'query', required: false, schema: staleListFilter.schema }],
        },
      },
    },
  });
}
