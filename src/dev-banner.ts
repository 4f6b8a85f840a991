import type { BootstrapKey } from './auth/bootstrap-key';
import type { Config } from './config';

export interface DevBannerInput {
  config: Pick<Config, 'apiKeys' | 'fileRoots'>;
  /** What the API listens on: the configured host and the port it got. */
  host: string;
  port: number;
  /** API and worker in this process, or the API alone. */
  role: 'api' | 'all';
  /** The admin key made at this start, when there was none: its token is shown here, once. */
  created: BootstrapKey | undefined;
}

/** A host to put in a URL a browser on this machine can open: a wildcard address is reached on loopback. */
function browsable(host: string): string {
  if (host === '0.0.0.0' || host === '' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * What `make dev` ends with: where the docs and the job dashboard are, the key to use (the token
 * when it was made just now, else how to get one) and where file sources may read. Development
 * only; it comes after the start-up log lines so that it is the last thing on the screen.
 */
export function devBanner({ config, host, port, role, created }: DevBannerInput): string {
  const base = `http://${browsable(host)}:${port}`;
  const lines = [
    '',
    `Sluice is running (development: ${role === 'all' ? 'the API and a worker' : 'the API'} in this process). Ctrl-C stops it.`,
    '',
    `  API docs (Swagger UI)  ${base}/docs`,
    `  Job dashboard          ${base}/admin/queues  (browser login: any user name, an admin token as password)`,
  ];
  if (created)
    lines.push(
      `  API key                admin key "${created.name}", made now; its token is shown this once (only its hash is stored):`,
      '',
      `  ${created.token}`,
      '',
      `                         Send it as: Authorization: Bearer <token>. Revoke it: npm run keys -- revoke ${created.name}`,
    );
  else if (config.apiKeys.length)
    lines.push('  API key                a token of API_KEYS (in .env or the environment)');
  else
    lines.push(
      '  API key                a stored key (npm run keys -- list); its token was shown when it was made.',
      '                         Lost it? npm run keys -- create --name me --scope admin',
    );
  lines.push(
    config.fileRoots.length
      ? `  File sources           may read files below ${config.fileRoots.join(', ')} (FILE_ROOTS)`
      : '  File sources           none may read local files: FILE_ROOTS is empty (http(s) URLs work)',
    '',
  );
  return lines.join('\n');
}
