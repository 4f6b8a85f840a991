import type { ConnectorSource } from '../connector';
import { PermanentSyncError } from '../connector';

/** Metadata keys the stream connector reads; other keys are the user's own. */
export const STREAM_METADATA_SCHEMA = {
  type: 'object',
  required: ['stream'],
  properties: {
    stream: {
      type: 'string',
      minLength: 1,
      maxLength: 1024,
      description: 'Redis stream key, or JetStream stream name',
    },
    subject: {
      type: 'string',
      minLength: 1,
      maxLength: 1024,
      description: 'JetStream subject filter (NATS only)',
    },
    batch: { type: 'integer', minimum: 1, maximum: 10000, description: 'records per batch (default 1000)' },
    start: {
      type: 'string',
      enum: ['earliest', 'latest'],
      description: 'where the first sync starts: the oldest entry (default) or only what arrives after it',
    },
  },
  additionalProperties: true,
} as const;

export const DEFAULT_BATCH = 1000;
/** Records one stream run lands at most (STREAM_MAX_RUN_RECORDS): a flooded stream is read in bounded runs. */
export const DEFAULT_MAX_RUN_RECORDS = 1_000_000;

interface CommonSettings {
  host: string;
  port: number;
  stream: string;
  batch: number;
  start: 'earliest' | 'latest';
  /** Credentials as given, so messages can be checked for them before anyone sees them. */
  secrets: string[];
}

export interface RedisSettings extends CommonSettings {
  kind: 'redis';
  tls: boolean;
  db: number;
  username?: string;
  password?: string;
}

export interface NatsSettings extends CommonSettings {
  kind: 'nats';
  subject?: string;
  user?: string;
  pass?: string;
  token?: string;
}

export type StreamSettings = RedisSettings | NatsSettings;

const SCHEMES: Readonly<Record<string, { kind: 'redis' | 'nats'; port: number; tls: boolean }>> = {
  'redis:': { kind: 'redis', port: 6379, tls: false },
  'rediss:': { kind: 'redis', port: 6379, tls: true },
  'nats:': { kind: 'nats', port: 4222, tls: false },
};

// JetStream stream names: no whitespace, dots, wildcards or path separators (server rule).
const JETSTREAM_NAME = /^[^\s.*>/\\]+$/;

class InvalidStreamConfig extends PermanentSyncError {
  constructor(message: string) {
    super(message, 'invalid_config');
    this.name = 'InvalidStreamConfig';
  }
}

/** Checks the connection string alone; the message never repeats the string (it holds the secret). */
export function checkStreamConnectionString(value: string): string | undefined {
  try {
    parseUrl(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The source's settings, or InvalidStreamConfig (permanent, code invalid_config). */
export function parseStreamSettings(source: ConnectorSource): StreamSettings {
  if (!source.connection_string) throw new InvalidStreamConfig('the source has no connection string');
  const { url, scheme } = parseUrl(source.connection_string);
  const meta = source.metadata ?? {};
  const stream = meta.stream;
  if (typeof stream !== 'string' || stream.length === 0)
    throw new InvalidStreamConfig(
      'metadata.stream is required: the Redis stream key or JetStream stream name',
    );
  const batch = meta.batch ?? DEFAULT_BATCH;
  if (typeof batch !== 'number' || !Number.isInteger(batch) || batch < 1 || batch > 10000)
    throw new InvalidStreamConfig('metadata.batch must be an integer from 1 to 10000');
  const start = meta.start ?? 'earliest';
  if (start !== 'earliest' && start !== 'latest')
    throw new InvalidStreamConfig("metadata.start must be 'earliest' or 'latest'");
  const user = decode(url.username);
  const pass = decode(url.password);
  const common = {
    host: url.hostname,
    port: url.port ? Number(url.port) : scheme.port,
    stream,
    batch,
    start,
    secrets: [pass, url.password, ...(pass ? [] : [user, url.username])].filter(Boolean),
  } as const;

  if (scheme.kind === 'redis') {
    if (meta.subject !== undefined)
      throw new InvalidStreamConfig('metadata.subject applies to NATS sources only');
    const db = url.pathname.replace(/^\//, '') || '0';
    // `user:pass` is an ACL login, `:pass` the default user; a lone `secret@` is the password too.
    return {
      ...common,
      kind: 'redis',
      tls: scheme.tls,
      db: Number(db),
      username: pass ? user || undefined : undefined,
      password: pass || user || undefined,
    };
  }
  if (!JETSTREAM_NAME.test(stream))
    throw new InvalidStreamConfig('metadata.stream is not a valid JetStream stream name');
  const subject = meta.subject;
  if (subject !== undefined && (typeof subject !== 'string' || !subject || /\s/.test(subject)))
    throw new InvalidStreamConfig('metadata.subject must be a subject without whitespace');
  // `user:pass` logs in with a user, a lone `token@` (or `:token@`) with a token.
  return {
    ...common,
    kind: 'nats',
    subject,
    user: user && pass ? user : undefined,
    pass: user && pass ? pass : undefined,
    token: user && pass ? undefined : user || pass || undefined,
  };
}

function parseUrl(value: string): { url: URL; scheme: (typeof SCHEMES)[string] } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidStreamConfig(
      'the connection string is not a valid URL (redis://, rediss:// or nats://)',
    );
  }
  const scheme = SCHEMES[url.protocol];
  if (!scheme)
    throw new InvalidStreamConfig('the connection string must start with redis://, rediss:// or nats://');
  if (!url.hostname) throw new InvalidStreamConfig('the connection string has no host');
  // nats:// is not a special scheme, so the URL parser keeps its host opaque: a server list
  // (h1,h2) or a socket path would otherwise pass as one odd host name.
  if (!/^([A-Za-z0-9_-]+\.)*[A-Za-z0-9_-]+\.?$|^\[[0-9A-Fa-f:.]+\]$/.test(url.hostname))
    throw new InvalidStreamConfig('the connection string must name one host (no lists, no socket paths)');
  // Parameters are allow-listed (none may redirect the connection or name local files) and these
  // clients take none from the URL.
  if (url.search || url.hash) {
    const [name] = [...url.searchParams.keys()];
    throw new InvalidStreamConfig(
      name
        ? `parameter "${name.slice(0, 40)}" is not allowed: the connection string takes no parameters`
        : 'the connection string takes no parameters',
    );
  }
  if (scheme.kind === 'redis' && !/^\/?(\d{1,5})?$/.test(url.pathname))
    throw new InvalidStreamConfig('the path of a redis:// connection string is the database number, e.g. /0');
  if (scheme.kind === 'nats' && url.pathname && url.pathname !== '/')
    throw new InvalidStreamConfig(
      'a nats:// connection string has no path: name the stream in metadata.stream',
    );
  return { url, scheme };
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
