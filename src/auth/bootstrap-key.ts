import type { Config } from '../config';
import type { Logger } from '../logger';
import type { ApiKeyRepository } from './api-key.repository';

export const BOOTSTRAP_KEY_NAME = 'dev-bootstrap';

export class NoApiKeyError extends Error {
  constructor(detail: string) {
    super(
      `no API key is configured, so nothing could use the API (${detail}).\n` +
        '  Set API_KEYS=admin:<token> (a token of 32+ characters, e.g. slc_ and 40 random hex digits),\n' +
        '  or create a stored key: npm run keys -- create --name ops --scope admin',
    );
    this.name = 'NoApiKeyError';
  }
}

/** The key made for development: its token exists only here, to be shown once (src/dev-banner.ts). */
export interface BootstrapKey {
  name: string;
  token: string;
}

/**
 * The secure default: an API with no usable key refuses to start in production; in development it
 * makes an admin key (only its hash is stored) and returns it, for the start-up banner to show its
 * token once. Tests pass API_KEYS themselves, so in test nothing is generated.
 */
export async function ensureUsableKey(
  config: Pick<Config, 'env' | 'apiKeys'>,
  keys: ApiKeyRepository,
  logger: Logger,
): Promise<BootstrapKey | undefined> {
  if (config.apiKeys.length) return;
  let usable: number;
  try {
    usable = await keys.countUsable();
  } catch (err) {
    if (config.env !== 'production') {
      logger.warn({ err: (err as Error).message }, 'stored API keys could not be counted (migrations run?)');
      return;
    }
    throw new NoApiKeyError(`stored keys could not be read: ${(err as Error).message}; run npm run migrate`);
  }
  if (usable > 0) return;
  if (config.env === 'production')
    throw new NoApiKeyError('API_KEYS is empty and no stored key is unrevoked');
  if (config.env === 'test') {
    logger.warn('no API key configured: every request but health and docs will answer 401');
    return;
  }
  let name = BOOTSTRAP_KEY_NAME;
  // A revoked dev-bootstrap keeps its name (audit rows refer to it).
  for (let n = 2; (await keys.exists(name)) && n < 100; n += 1) name = `${BOOTSTRAP_KEY_NAME}-${n}`;
  const created = await keys.create(name, 'admin');
  logger.info({ name: created.name, prefix: created.prefix }, 'development admin key created');
  return { name: created.name, token: created.token };
}
