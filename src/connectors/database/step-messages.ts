import { failureMessage } from '../kit/classify-error';
import type { DatabaseSettings } from './database-settings';
import type { DatabaseUrl } from './database-url';

// The words of the test steps: what each failure code means at the step where it happened.

export function describeSource(url: DatabaseUrl, settings: DatabaseSettings): string {
  const mode = settings.cursorColumn ? `incrementally by ${settings.cursorColumn}` : 'in full each sync';
  return `${dialectLabel(url)} database "${url.database}" at ${hostPort(url.host, url.port)}; reads ${what(settings)} ${mode}`;
}

export function dialectLabel(url: DatabaseUrl): string {
  return url.dialect === 'postgres' ? 'PostgreSQL' : 'MySQL/MariaDB';
}

export function what(settings: DatabaseSettings): string {
  return settings.table ? `table ${settings.table}` : 'the query';
}

export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A step's failure message: what the code means in this step, then the driver's own words. */
export function failure(
  step: string,
  code: string,
  url: DatabaseUrl,
  err: unknown,
  address?: string,
  timeoutMs?: number,
): string {
  const detail = failureMessage(err);
  const target = address ? hostPort(address, url.port) : url.host;
  switch (code) {
    case 'dns':
      return `cannot resolve host ${url.host}: ${detail}`;
    case 'forbidden_address':
      // The policy's reason (Sluice's own database, OUTBOUND_PRIVATE=deny...) says what to change.
      return `${url.host} resolves to an address connectors may not reach (${(err as { reason?: string })?.reason ?? 'outbound policy'})`;
    case 'refused':
      return `connection to ${target} refused (is the server running and is the port right?): ${detail}`;
    case 'timeout':
      return step === 'connect'
        ? `no answer from ${target} within ${timeoutMs} ms (firewall, wrong host, or the server is not a ${dialectLabel(url)} server)`
        : `the server did not answer within ${timeoutMs} ms during ${step.replace('_', ' ')}`;
    case 'tls':
      return `TLS negotiation failed: ${detail}`;
    case 'auth':
      return `authentication failed: ${detail}`;
    case 'not_found':
      return step === 'authenticate' ? `database not found: ${detail}` : `not found: ${detail}`;
    case 'permission':
      return `permission denied: ${detail}`;
    default:
      return `${step.replace('_', ' ')} failed: ${detail}`;
  }
}

export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
