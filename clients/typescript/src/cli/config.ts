import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from './exit-codes';

export interface Profile {
  url?: string;
  token?: string;
}

/** ~/.config/sluice/config.json: named profiles and the one used when none is named. */
export interface ConfigFile {
  default_profile?: string;
  profiles?: Record<string, Profile>;
}

export interface Connection {
  url: string;
  token: string | undefined;
  /** The profile that was read, if any (for messages). */
  profile: string | undefined;
}

/** SLUICE_CONFIG, else $XDG_CONFIG_HOME/sluice/config.json, else ~/.config/sluice/config.json. */
export function configPath(env: NodeJS.ProcessEnv): string {
  if (env.SLUICE_CONFIG) return env.SLUICE_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'sluice', 'config.json');
}

function readConfigFile(path: string): ConfigFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as ConfigFile;
  } catch (err) {
    throw new UsageError(`${path} is not a valid config file: ${(err as Error).message}`);
  }
}

/**
 * Where to connect and with which token. Each of url and token, first found wins:
 * --url/--token; the profile named by --profile; SLUICE_URL/SLUICE_TOKEN; the profile named by
 * SLUICE_PROFILE, else the file's default_profile, else "default".
 */
export function resolveConnection(
  flags: { url?: string; token?: string; profile?: string },
  env: NodeJS.ProcessEnv,
): Connection {
  const path = configPath(env);
  const file = readConfigFile(path);
  const named = flags.profile ?? env.SLUICE_PROFILE;
  const name = named ?? file?.default_profile ?? 'default';
  const profile = file?.profiles?.[name];
  if (named && !profile) throw new UsageError(`no profile "${named}" in ${path}`);
  const explicit = flags.profile ? profile : undefined;
  const url = flags.url ?? explicit?.url ?? env.SLUICE_URL ?? profile?.url;
  const token = flags.token ?? explicit?.token ?? env.SLUICE_TOKEN ?? profile?.token;
  if (!url)
    throw new UsageError(
      `no API URL: pass --url, set SLUICE_URL, or add a profile to ${path} ` +
        '({"profiles": {"default": {"url": "http://localhost:3000", "token": "slc_..."}}})',
    );
  try {
    new URL(url);
  } catch {
    throw new UsageError(`not a URL: ${url}`);
  }
  return { url, token: token || undefined, profile: profile ? name : undefined };
}
