import { PermanentSyncError, type ConnectorSource } from '../connector';
import type { AuthSetting } from '../kit/http/url-credentials';

export type Pagination =
  | { type: 'none' }
  | { type: 'next_url'; path: string }
  | { type: 'cursor'; param: string; path: string }
  | { type: 'page'; param: string; start: number; size_param?: string; size?: number };

export interface Incremental {
  /** Query parameter that carries the watermark ("since"). */
  param: string;
  /** Dot path, inside each record, of the ever-growing value (updated_at, id). */
  field: string;
  /** How far before the watermark each sync asks from: seconds for dates, units for numbers. */
  lookback?: number;
}

export interface ApiSettings {
  recordsPath?: string;
  auth?: AuthSetting;
  pagination: Pagination;
  maxPages: number;
  incremental?: Incremental;
}

export const DEFAULT_MAX_PAGES = 1000;

const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$";
const FORBIDDEN_HEADERS =
  /^(host|content-length|transfer-encoding|connection|upgrade|te|trailer|keep-alive|proxy-.*)$/i;
const DOT_PATH = { type: 'string', minLength: 1, maxLength: 200 } as const;
const PARAM = { type: 'string', minLength: 1, maxLength: 100 } as const;

/** JSON Schema of the metadata keys the api connector reads; other keys are the user's. */
export const apiMetadataSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    records_path: DOT_PATH,
    auth: {
      type: 'object',
      additionalProperties: false,
      required: ['type'],
      properties: {
        type: { type: 'string', enum: ['none', 'basic', 'bearer', 'header'] },
        name: { type: 'string', pattern: HEADER_NAME },
      },
      if: { properties: { type: { const: 'header' } } },
      then: { required: ['name'] },
    },
    pagination: {
      type: 'object',
      additionalProperties: false,
      required: ['type'],
      properties: {
        type: { type: 'string', enum: ['none', 'next_url', 'cursor', 'page'] },
        path: DOT_PATH,
        param: PARAM,
        start: { type: 'integer', minimum: 0, maximum: 1_000_000 },
        size_param: PARAM,
        size: { type: 'integer', minimum: 1, maximum: 100_000 },
      },
      allOf: [
        { if: { properties: { type: { const: 'next_url' } } }, then: { required: ['path'] } },
        { if: { properties: { type: { const: 'cursor' } } }, then: { required: ['param', 'path'] } },
        { if: { properties: { type: { const: 'page' } } }, then: { required: ['param'] } },
      ],
    },
    max_pages: { type: 'integer', minimum: 1, maximum: 100_000 },
    incremental: {
      type: 'object',
      additionalProperties: false,
      required: ['param', 'field'],
      properties: {
        param: PARAM,
        field: DOT_PATH,
        lookback: {
          type: 'number',
          minimum: 0,
          maximum: 31_536_000,
          description:
            'How far before the largest landed value each sync asks from, so records that appear late with an earlier value still land (once): seconds for date values (default 300), units for numeric ones (default 0).',
        },
      },
    },
  },
} as const;

/**
 * Reads the api metadata, checking again what the schema checks at create (rows written before a
 * rule existed, direct calls): a bad setting fails as invalid_config, never as a crash mid-sync.
 */
export function readApiSettings(source: ConnectorSource): ApiSettings {
  const meta = source.metadata ?? {};
  const settings: ApiSettings = {
    recordsPath: optionalString(meta, 'records_path'),
    pagination: readPagination(meta.pagination),
    maxPages: meta.max_pages === undefined ? DEFAULT_MAX_PAGES : positiveInt(meta.max_pages, 'max_pages'),
  };
  if (meta.auth !== undefined) settings.auth = readAuth(meta.auth);
  if (meta.incremental !== undefined) {
    const inc = object(meta.incremental, 'incremental');
    settings.incremental = {
      param: requiredString(inc, 'param', 'incremental'),
      field: requiredString(inc, 'field', 'incremental'),
    };
    if (inc.lookback !== undefined) {
      const lookback = inc.lookback;
      if (typeof lookback !== 'number' || !Number.isFinite(lookback) || lookback < 0 || lookback > 31_536_000)
        throw new PermanentSyncError(
          'metadata "incremental.lookback" must be a number from 0 to 31536000',
          'invalid_config',
        );
      settings.incremental.lookback = lookback;
    }
  }
  return settings;
}

function readAuth(value: unknown): AuthSetting {
  const auth = object(value, 'auth');
  const type = auth.type;
  if (type === 'none' || type === 'basic' || type === 'bearer') return { type };
  if (type === 'header') {
    const name = requiredString(auth, 'name', 'auth');
    if (!new RegExp(HEADER_NAME).test(name) || FORBIDDEN_HEADERS.test(name))
      throw invalid(`auth.name "${name}" is not a header that can carry a credential`);
    return { type, name };
  }
  throw invalid('auth.type must be none, basic, bearer or header');
}

function readPagination(value: unknown): Pagination {
  if (value === undefined || value === null) return { type: 'none' };
  const p = object(value, 'pagination');
  switch (p.type) {
    case 'none':
      return { type: 'none' };
    case 'next_url':
      return { type: 'next_url', path: requiredString(p, 'path', 'pagination') };
    case 'cursor':
      return {
        type: 'cursor',
        param: requiredString(p, 'param', 'pagination'),
        path: requiredString(p, 'path', 'pagination'),
      };
    case 'page': {
      const page: Pagination = {
        type: 'page',
        param: requiredString(p, 'param', 'pagination'),
        start: p.start === undefined ? 1 : nonNegativeInt(p.start, 'pagination.start'),
      };
      if (p.size_param !== undefined) page.size_param = requiredString(p, 'size_param', 'pagination');
      if (p.size !== undefined) page.size = positiveInt(p.size, 'pagination.size');
      return page;
    }
    default:
      throw invalid('pagination.type must be none, next_url, cursor or page');
  }
}

function object(value: unknown, name: string): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw invalid(`${name} must be an object`);
  return value as Record<string, unknown>;
}

function optionalString(obj: Record<string, unknown>, key: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw invalid(`${key} must be a string`);
  return value;
}

function requiredString(obj: Record<string, unknown>, key: string, parent: string): string {
  const value = obj[key];
  if (typeof value !== 'string' || !value) throw invalid(`${parent}.${key} must be a non-empty string`);
  return value;
}

function positiveInt(value: unknown, name: string): number {
  if (!Number.isInteger(value) || (value as number) < 1) throw invalid(`${name} must be a positive integer`);
  return value as number;
}

function nonNegativeInt(value: unknown, name: string): number {
  if (!Number.isInteger(value) || (value as number) < 0)
    throw invalid(`${name} must be an integer of 0 or more`);
  return value as number;
}

function invalid(message: string): PermanentSyncError {
  return new PermanentSyncError(`invalid metadata: ${message}`, 'invalid_config');
}
