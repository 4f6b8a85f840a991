import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PermanentSyncError, type ConnectorSource } from '../connector';
import { splitCredentials, type UrlCredentials } from '../kit/http/url-credentials';

export type FileFormat = 'csv' | 'json' | 'ndjson';

export interface CsvOptions {
  delimiter?: string;
  quote?: string;
  escape?: string;
  /** True: the first row names the columns (renamed by `columns` when given). */
  header: boolean;
  columns?: string[];
}

export type FileLocation = { kind: 'local'; path: string } | { kind: 'url'; creds: UrlCredentials };

export interface FileSettings {
  location: FileLocation;
  /** Set by metadata; otherwise decided from the name (or Content-Type) once the file is open. */
  format?: FileFormat;
  csv: CsvOptions;
  /** JSON only: dot path of the array of records inside the document (default: the document). */
  recordsPath?: string;
}

const SHORT = { type: 'string', minLength: 1, maxLength: 10 } as const;

/** JSON Schema of the metadata keys the file connector reads; other keys are the user's. */
export const fileMetadataSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    format: { type: 'string', enum: ['csv', 'json', 'ndjson'] },
    delimiter: SHORT,
    quote: { type: 'string', maxLength: 1 },
    escape: { type: 'string', minLength: 1, maxLength: 1 },
    header: { type: 'boolean' },
    columns: {
      type: 'array',
      minItems: 1,
      maxItems: 10_000,
      uniqueItems: true,
      items: { type: 'string', minLength: 1, maxLength: 200 },
    },
    records_path: { type: 'string', minLength: 1, maxLength: 200 },
  },
} as const;

/** The file a connection string names: `file:///abs/path` (this machine only) or an http(s) URL. */
export function readLocation(connectionString: string | null): FileLocation {
  const value = connectionString ?? '';
  if (/^https?:/i.test(value)) return { kind: 'url', creds: splitCredentials(value) };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid('connection_string must be a file:///absolute/path or an http(s) URL');
  }
  if (url.protocol !== 'file:')
    throw invalid('connection_string must be a file:///absolute/path or an http(s) URL');
  if (url.hostname && url.hostname !== 'localhost')
    throw invalid('a file:// URL must name a local path (file:///...)');
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch {
    throw invalid('the file:// URL does not name a valid path');
  }
  if (!isAbsolute(path) || path.includes('\0')) throw invalid('the file path must be absolute');
  return { kind: 'local', path };
}

export function readFileSettings(source: ConnectorSource): FileSettings {
  const meta = source.metadata ?? {};
  const format = meta.format;
  if (format !== undefined && format !== 'csv' && format !== 'json' && format !== 'ndjson')
    throw invalid('format must be csv, json or ndjson');
  const columns = meta.columns;
  if (
    columns !== undefined &&
    (!Array.isArray(columns) || !columns.length || columns.some((c) => typeof c !== 'string' || !c))
  )
    throw invalid('columns must be a list of column names');
  if (columns && new Set(columns).size !== columns.length) throw invalid('columns must not repeat a name');
  if (meta.header !== undefined && typeof meta.header !== 'boolean')
    throw invalid('header must be true or false');
  const settings: FileSettings = {
    location: readLocation(source.connection_string),
    csv: {
      delimiter: optionalString(meta, 'delimiter', 1, 10),
      quote: optionalString(meta, 'quote', 0, 1),
      escape: optionalString(meta, 'escape', 1, 1),
      header: meta.header !== false,
      columns: columns as string[] | undefined,
    },
    recordsPath: optionalString(meta, 'records_path', 1, 200),
  };
  if (format) settings.format = format;
  return settings;
}

const BY_EXTENSION: Record<string, FileFormat> = {
  csv: 'csv',
  tsv: 'csv',
  json: 'json',
  ndjson: 'ndjson',
  jsonl: 'ndjson',
};

/**
 * The format: metadata first, then the name's extension (a trailing .gz stripped), then the
 * Content-Type of a downloaded file. Undefined when none of them tells.
 */
export function detectFormat(
  settings: FileSettings,
  name: string,
  contentType?: string,
): FileFormat | undefined {
  if (settings.format) return settings.format;
  const base = name.toLowerCase().replace(/\.gz$/, '');
  const ext = /\.([a-z0-9]+)$/.exec(base)?.[1];
  if (ext && BY_EXTENSION[ext]) return BY_EXTENSION[ext];
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (/ndjson|jsonl|json-seq|jsonlines/.test(type)) return 'ndjson';
  if (/json/.test(type)) return 'json';
  if (/csv|tab-separated-values/.test(type)) return 'csv';
  return undefined;
}

/** A .tsv file without a delimiter setting is tab-separated. */
export function csvDelimiter(settings: FileSettings, name: string): string {
  if (settings.csv.delimiter) return settings.csv.delimiter;
  return /\.tsv(\.gz)?$/i.test(name) ? '\t' : ',';
}

function optionalString(
  meta: Record<string, unknown>,
  key: string,
  min: number,
  max: number,
): string | undefined {
  const value = meta[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length < min || value.length > max)
    throw invalid(`${key} must be a string of ${min} to ${max} characters`);
  return value;
}

function invalid(message: string): PermanentSyncError {
  return new PermanentSyncError(`invalid file source: ${message}`, 'invalid_config');
}
